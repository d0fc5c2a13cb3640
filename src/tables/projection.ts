import type { GraphQLError } from 'graphql';
import {
  getDirectiveValues,
  getNamedType,
  getNullableType,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  isAbstractType,
  isCompositeType,
  isEnumType,
  isInterfaceType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  TypeNameMetaFieldDef,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLLeafType,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionNode,
  type SelectionSetNode,
} from 'graphql';
import { gatewayError } from '../errors.ts';
import { LISTING_BY_FIELD } from '../spec/data-types.ts';

/** How a column's cells are typed in Arrow and Parquet (and written in the text formats). */
export type ColumnKind = 'int' | 'float' | 'boolean' | 'string' | 'timestamp' | 'json';

export interface Column {
  /** The field's response path from the root, `edges`, `node` and list positions dropped, joined by `.`. */
  name: string;
  kind: ColumnKind;
  /** False only when the schema says every row has a value. */
  nullable: boolean;
}

/** A cell as the GraphQL answer has it: a leaf's serialized value, a JSON value, or a list below the row. */
export type Cell = unknown;

/** How an object's fields fill a row's cells. */
export type Fill = { key: string; column: number } | { key: string; object: readonly Fill[]; columns: readonly number[] };

/** An object of the row path: its fields' cells, and the step toward the rows (none at the row itself). */
export interface Level {
  fills: readonly Fill[];
  next: { key: string; list: boolean; level: Level } | null;
}

/** The row list read as pages of a listing (src/loaders/planner.ts stream()) rather than resolved in one answer. */
export interface Streamed {
  /** The connection's field nodes: its resolver records each parent's request instead of reading it. */
  fields: ReadonlySet<FieldNode>;
  /** The edge's type name and its `node`'s response key: each record stands in an edge `{ __typename, [nodeKey]: record }`. */
  edgeType: string;
  nodeKey: string;
  /** The record type and what the operation selects on it (executed on each page's records). */
  nodeType: GraphQLCompositeType;
  selections: readonly SelectionNode[];
  /**
   * The record's selected fields when each is a scalar or enum leaf its node reads as a property (no
   * resolver, no arguments) or `__typename`: then a page's cells are read straight from its records,
   * serialized as the executor would, instead of executing the page. Null when any is not.
   */
  leaves: readonly Leaf[] | null;
  /** The response keys of the edge's `cursor`: each record's position in its parent's listing. */
  cursorKeys: readonly string[];
  /** The response keys of the edge's `__typename` (the edge type's name). */
  typenameKeys: readonly string[];
  /**
   * What the connection selects besides its edges, by response key: `totalCount`, and `pageInfo` with
   * its fields' keys. A streamed row list reads every record, so these follow from each parent's total.
   */
  header: readonly HeaderField[];
  /** Whether the header needs each parent's total (totalCount, a start or end cursor). */
  totals: boolean;
}

/** A leaf of a streamed record read as its node's property and serialized by its type. */
export interface Leaf {
  key: string;
  /** The property read (`__typename`: the node type's name). */
  name: string;
  type: GraphQLLeafType;
  nonNull: boolean;
}

/** A field of a streamed row list's connection besides its edges (see Streamed.header). */
export type HeaderField =
  { key: string; name: 'totalCount' } | { key: string; name: 'pageInfo'; fields: readonly { key: string; name: string }[] };

/** What a streamed row list's connection may select besides its edges: its header follows from each parent's total. */
const PAGE_INFO = new Set(['hasNextPage', 'hasPreviousPage', 'startCursor', 'endCursor', '__typename']);

/** What the table of an operation is: its columns, how the answer fills them, and how its rows are read. */
export interface Projection {
  columns: readonly Column[];
  root: Level;
  /** The connections on the row path: in a table, they read every record when given no window. */
  path: ReadonlySet<FieldNode>;
  /** The row list's connection when its pages can be streamed; null when the rows come from the answer itself. */
  streamed: Streamed | null;
  /** Why the rows of a list are made from the whole answer in memory rather than streamed (null: streamed, or no list). */
  inMemory: string | null;
  /**
   * The row list's field nodes when it is a data listing of an experiment, room or participant: made
   * in memory, its rows are ordered by their records in the listing's order across the whole table.
   */
  listing: ReadonlySet<FieldNode> | null;
  /** The row list's name (its columns' prefix), for messages. */
  rowList: string;
}

/** A field an operation selects on an object, its selections merged by response key. */
interface Selected {
  key: string;
  name: string;
  field: GraphQLField<unknown, unknown>;
  parent: GraphQLCompositeType;
  nodes: FieldNode[];
  /** Null for a leaf. */
  children: Selected[] | null;
  /** A connection's `edges`, an edge's `node`: no segment of a column name. */
  silent: boolean;
}

const badTable = (message: string, extensions: Record<string, unknown> = {}): GraphQLError =>
  gatewayError('BAD_USER_INPUT', message, { extensions, status: 400 });

const fieldsOf = (type: GraphQLCompositeType) => (isObjectType(type) || isInterfaceType(type) ? type.getFields() : {});

const isConnectionType = (type: GraphQLNamedType): boolean =>
  isObjectType(type) && 'edges' in type.getFields() && 'pageInfo' in type.getFields();

const isEdgeType = (type: GraphQLCompositeType): boolean =>
  isObjectType(type) && 'node' in type.getFields() && 'cursor' in type.getFields();

const marked = (s: Selected): boolean => s.nodes.some((n) => n.directives?.some((d) => d.name.value === 'table'));

function kindOf(type: GraphQLNamedType): ColumnKind {
  if (isEnumType(type)) return 'string';
  switch (type.name) {
    case 'Int':
      return 'int';
    case 'Float':
      return 'float';
    case 'Boolean':
      return 'boolean';
    case 'DateTime':
      return 'timestamp';
    case 'JSON':
      return 'json';
    default:
      return 'string';
  }
}

/** Reads an operation's selections with their types: fragments merged in, @skip/@include applied. */
class Reader {
  constructor(
    private readonly schema: GraphQLSchema,
    private readonly fragments: ReadonlyMap<string, FragmentDefinitionNode>,
    private readonly variables: Record<string, unknown>,
  ) {}

  #included(node: SelectionNode): boolean {
    if (getDirectiveValues(GraphQLSkipDirective, node, this.variables)?.if === true) return false;
    return getDirectiveValues(GraphQLIncludeDirective, node, this.variables)?.if !== false;
  }

  select(type: GraphQLCompositeType, sets: readonly SelectionSetNode[]): Selected[] {
    const byKey = new Map<string, Selected>();
    const visit = (on: GraphQLCompositeType, set: SelectionSetNode, seen: ReadonlySet<string>): void => {
      for (const node of set.selections) {
        if (!this.#included(node)) continue;
        if (node.kind === Kind.FIELD) {
          const name = node.name.value;
          const field = name === '__typename' ? TypeNameMetaFieldDef : fieldsOf(on)[name];
          if (!field) continue;
          const key = node.alias?.value ?? name;
          const known = byKey.get(key);
          if (known) known.nodes.push(node);
          else
            byKey.set(key, {
              key,
              name,
              field,
              parent: on,
              nodes: [node],
              children: null,
              silent: (name === 'edges' && isConnectionType(on)) || (name === 'node' && isEdgeType(on)),
            });
          continue;
        }
        const fragment = node.kind === Kind.INLINE_FRAGMENT ? node : this.fragments.get(node.name.value);
        if (!fragment || (node.kind === Kind.FRAGMENT_SPREAD && seen.has(node.name.value))) continue;
        const condition = fragment.typeCondition ? this.schema.getType(fragment.typeCondition.name.value) : on;
        if (!condition || !isCompositeType(condition)) continue;
        visit(condition, fragment.selectionSet, node.kind === Kind.FRAGMENT_SPREAD ? new Set([...seen, node.name.value]) : seen);
      }
    };
    for (const set of sets) visit(type, set, new Set());
    const selected = [...byKey.values()];
    for (const s of selected) {
      const named = getNamedType(s.field.type);
      if (isCompositeType(named))
        s.children = this.select(
          named,
          s.nodes.flatMap((n) => (n.selectionSet ? [n.selectionSet] : [])),
        );
    }
    return selected;
  }
}

const isList = (s: Selected): boolean => isListType(getNullableType(s.field.type));
const edgesOf = (s: Selected): Selected[] => (s.children ?? []).filter((c) => c.name === 'edges' && c.silent);

/** A list of records the rows could be: a connection that selects its edges, or a list of objects. */
function rowListOf(s: Selected): Selected | null {
  const named = getNamedType(s.field.type);
  if (!isList(s) && isConnectionType(named)) {
    const edges = edgesOf(s);
    if (edges.length > 1) throw badTable(`'${s.key}' selects its edges under ${edges.length} names: a table reads one`);
    return edges[0] ?? null;
  }
  if (isList(s) && isCompositeType(named) && !(s.silent && s.name === 'edges')) return s;
  return null;
}

/** The path from the root to a field, by the parents of each selected field. */
function pathTo(target: Selected, parents: ReadonlyMap<Selected, Selected | null>): Selected[] {
  const path: Selected[] = [];
  for (let at: Selected | null | undefined = target; at; at = parents.get(at)) path.unshift(at);
  return path;
}

/** A column name: the response keys of a path, silent segments left out. */
const nameOf = (path: readonly Selected[]): string =>
  path
    .filter((s) => !s.silent)
    .map((s) => s.key)
    .join('.');

/**
 * Works out an operation's table: which list's records are the rows (the one marked `@table`, else
 * the only innermost list), the columns (every scalar leaf selected on the row and on each object
 * above it, named by its response path in selection order; objects below the row flattened, lists
 * below it one JSON cell), and whether the rows can be streamed page by page. A request the table
 * cannot be made of is a BAD_USER_INPUT error (HTTP 400).
 */
export function project(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
): Projection {
  if (operation.operation !== 'query') throw badTable(`A table is read from a query; this operation is a ${operation.operation}`);
  const root = schema.getQueryType();
  if (!root) throw badTable('The schema has no query type');
  const fragments = new Map(
    document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]),
  );
  const top = new Reader(schema, fragments, variables).select(root, [operation.selectionSet]);

  // Every selected field, its parent, the lists the rows could be, and the ones marked @table.
  const parents = new Map<Selected, Selected | null>();
  const lists: Selected[] = [];
  const marks: Selected[] = [];
  const walk = (selected: readonly Selected[], parent: Selected | null): void => {
    for (const s of selected) {
      parents.set(s, parent);
      if (marked(s)) marks.push(s);
      if (rowListOf(s)) lists.push(s);
      if (s.children) walk(s.children, s);
    }
  };
  walk(top, null);

  let chosen: Selected | null;
  if (marks.length > 1) {
    throw badTable(
      `@table marks one list; this operation marks ${marks.length}: ${marks.map((m) => nameOf(pathTo(m, parents))).join(', ')}`,
    );
  } else if (marks.length === 1) {
    let mark = marks[0] as Selected;
    // @table on a connection's edges marks the connection.
    if (mark.silent && mark.name === 'edges') mark = parents.get(mark) ?? mark;
    if (!rowListOf(mark)) {
      const named = getNamedType(mark.field.type);
      throw badTable(
        isConnectionType(named)
          ? `@table marks '${nameOf(pathTo(mark, parents))}', a connection that selects no edges: select edges { node { … } }`
          : `@table marks a list of records or a connection; '${nameOf(pathTo(mark, parents)) || mark.key}' is ${String(mark.field.type)}`,
      );
    }
    chosen = mark;
  } else {
    const isBelow = (inner: Selected, outer: Selected): boolean => {
      for (let at = parents.get(inner); at; at = parents.get(at)) if (at === outer) return true;
      return false;
    };
    const innermost = lists.filter((l) => !lists.some((other) => other !== l && isBelow(other, l)));
    if (innermost.length > 1) {
      throw badTable(
        `This operation selects ${innermost.length} lists (${innermost.map((l) => nameOf(pathTo(l, parents))).join(', ')}): mark the one whose records are the rows with @table`,
        { lists: innermost.map((l) => nameOf(pathTo(l, parents))) },
      );
    }
    chosen = innermost[0] ?? null;
  }

  const rowList = chosen ? rowListOf(chosen) : null;
  const path = rowList ? pathTo(rowList, parents) : [];
  const columns: Column[] = [];

  const fillOf = (s: Selected, prefix: readonly Selected[], nullable: boolean): Fill => {
    const at = [...prefix, s];
    const maybe = nullable || !isNonNullType(s.field.type);
    const named = getNamedType(s.field.type);
    if (isList(s) || !s.children) {
      columns.push({ name: nameOf(at), kind: isList(s) ? 'json' : kindOf(named), nullable: maybe });
      return { key: s.key, column: columns.length - 1 };
    }
    const first = columns.length;
    const object = s.children.map((c) => fillOf(c, at, maybe));
    return { key: s.key, object, columns: Array.from({ length: columns.length - first }, (_, i) => first + i) };
  };

  const levelOf = (selected: readonly Selected[], prefix: readonly Selected[], rest: readonly Selected[]): Level => {
    const fills: Fill[] = [];
    let next: Level['next'] = null;
    const [step, ...after] = rest;
    for (const s of selected) {
      if (s === step) next = { key: s.key, list: isList(s), level: levelOf(s.children ?? [], [...prefix, s], after) };
      else fills.push(fillOf(s, prefix, false));
    }
    return { fills, next };
  };
  const level = levelOf(top, [], path);
  if (columns.length === 0) throw nothingToTable(operation, chosen ? nameOf(pathTo(chosen, parents)) || chosen.key : null);

  const names = new Map<string, number>();
  for (const c of columns) names.set(c.name, (names.get(c.name) ?? 0) + 1);
  const twice = [...names].filter(([, n]) => n > 1).map(([name]) => name);
  if (twice.length > 0) throw badTable(`Two columns would be named ${twice.map((n) => `'${n}'`).join(', ')}: give one of them an alias`);

  const connections = path.filter((s) => !isList(s) && isConnectionType(getNamedType(s.field.type)));
  const streamed = chosen && rowList && rowList !== chosen ? streamedOf(chosen, rowList) : null;
  const name = chosen ? nameOf(pathTo(chosen, parents)) || chosen.key : '';
  return {
    columns,
    root: level,
    path: new Set(connections.flatMap((s) => s.nodes)),
    streamed,
    inMemory: chosen && rowList && !streamed ? whyInMemory(chosen, rowList, name) : null,
    listing: chosen && rowList && rowList !== chosen && isDataListing(chosen) ? new Set(chosen.nodes) : null,
    rowList: chosen ? nameOf(pathTo(chosen, parents)) : '',
  };
}

/**
 * A table of nothing (no column: a query of introspection only, or whose fields are all skipped) is
 * refused rather than answered with an empty body, which a reader takes for an empty table.
 */
function nothingToTable(operation: OperationDefinitionNode, rowList: string | null): GraphQLError {
  if (rowList !== null)
    return badTable(
      `This operation selects no field to make a column of: select the scalar fields of '${rowList}' (and of the objects above it)`,
    );
  const introspection = operation.selectionSet.selections.some(
    (s) => s.kind === Kind.FIELD && (s.name.value === '__schema' || s.name.value === '__type'),
  );
  return badTable(
    'This operation has no list to make rows of: a table’s rows are the records of a list or connection (the one marked @table, ' +
      'or the only innermost one) and its columns the scalar fields selected on them and above them' +
      (introspection ? '; introspection (__schema, __type) is answered as JSON only' : ''),
  );
}

/** Whether a connection is a data listing of an experiment, room or participant (the upstream's listings, in their order). */
const isDataListing = (s: Selected): boolean =>
  LISTING_BY_FIELD.has(s.name) && ['Experiment', 'Room', 'Participant'].includes(s.parent.name);

/** Why a row list is not streamed (see streamedOf), as the caller can act on it. */
function whyInMemory(list: Selected, edges: Selected, name: string): string {
  if (list === edges || !isDataListing(list)) return `'${name}' is not a data listing of an experiment, room or participant`;
  const besides = [
    ...(list.children ?? []).filter((c) => c !== edges && !headerField(c)).map((c) => c.key),
    ...(edges.children ?? []).filter((c) => !['node', 'cursor', '__typename'].includes(c.name)).map((c) => `edges.${c.key}`),
  ];
  if (besides.length > 0)
    return `'${name}' selects ${besides.join(', ')}: only totalCount, pageInfo and edges { cursor node { ... } } let its records be streamed`;
  return `'${name}' selects its records under an interface or several names`;
}

/** A field of a row list's connection whose value follows from the parent's total (or __typename). */
function headerField(s: Selected): boolean {
  if (s.name === '__typename' || s.name === 'totalCount') return true;
  return s.name === 'pageInfo' && (s.children ?? []).every((c) => PAGE_INFO.has(c.name));
}

/**
 * Whether the row list can be read page by page: a data listing of an experiment, room or participant
 * whose connection selects its edges' nodes and cursors, and besides them only its totalCount and
 * pageInfo (every record is read, so they follow from the parent's total). Anything else the
 * connection says (processing, warnings, runs) is known only from the whole listing as the planner
 * reads it: with it the table is made from the whole answer.
 */
function streamedOf(connection: Selected, edges: Selected): Streamed | null {
  if (!isDataListing(connection)) return null;
  if ((connection.children ?? []).some((c) => c !== edges && !headerField(c))) return null;
  const nodes = (edges.children ?? []).filter((c) => c.name === 'node');
  const node = nodes[0];
  if (!node || nodes.length > 1 || (edges.children ?? []).some((c) => c !== node && c.name !== 'cursor' && c.name !== '__typename'))
    return null;
  const nodeType = getNamedType(node.field.type);
  const edgeType = getNamedType(edges.field.type);
  if (!isCompositeType(nodeType) || isAbstractType(nodeType)) return null;
  const header: HeaderField[] = [];
  for (const c of connection.children ?? []) {
    if (c.name === 'totalCount') header.push({ key: c.key, name: 'totalCount' });
    if (c.name === 'pageInfo')
      header.push({ key: c.key, name: 'pageInfo', fields: (c.children ?? []).map((f) => ({ key: f.key, name: f.name })) });
  }
  return {
    fields: new Set(connection.nodes),
    edgeType: edgeType.name,
    nodeKey: node.key,
    nodeType,
    selections: node.nodes.flatMap((n) => n.selectionSet?.selections ?? []),
    leaves: leavesOf(node.children ?? [], nodeType),
    cursorKeys: (edges.children ?? []).filter((c) => c.name === 'cursor').map((c) => c.key),
    typenameKeys: (edges.children ?? []).filter((c) => c.name === '__typename').map((c) => c.key),
    header,
    totals: header.some((h) => h.name === 'totalCount' || h.fields.some((f) => f.name === 'startCursor' || f.name === 'endCursor')),
  };
}

/** The leaves of a streamed record's selection, when every selected field is one read as a property (see Streamed.leaves). */
function leavesOf(children: readonly Selected[], nodeType: GraphQLCompositeType): Leaf[] | null {
  const leaves: Leaf[] = [];
  for (const c of children) {
    const type = getNullableType(c.field.type);
    if (c.parent !== nodeType) return null;
    if (c.field === TypeNameMetaFieldDef) {
      leaves.push({ key: c.key, name: '__typename', type: getNamedType(c.field.type) as GraphQLLeafType, nonNull: true });
      continue;
    }
    if (!isLeafType(type) || c.field.resolve !== undefined || c.field.args.length > 0) return null;
    leaves.push({ key: c.key, name: c.name, type, nonNull: isNonNullType(c.field.type) });
  }
  return leaves;
}

/** Fills a row's cells from an object of the answer (null: every cell of it is null). */
export function fill(value: unknown, fills: readonly Fill[], cells: Cell[]): void {
  const object = value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : null;
  for (const f of fills) {
    const v = object === null ? null : object[f.key];
    if ('column' in f) cells[f.column] = v ?? null;
    else if (v === null || v === undefined) for (const c of f.columns) cells[c] = null;
    else fill(v, f.object, cells);
  }
}
