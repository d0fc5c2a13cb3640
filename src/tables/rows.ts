import type { GraphQLError } from 'graphql';
import {
  execute,
  GraphQLList,
  GraphQLObjectType,
  GraphQLSchema,
  Kind,
  type DocumentNode,
  type ExecutionResult,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type OperationDefinitionNode,
} from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';
import { groupOf, type DataRequest } from '../loaders/listings.ts';
import type { StreamedPage, StreamPlan } from '../loaders/planner.ts';
import { listingOrder } from '../spec/order.ts';
import type { GatewayContext, TableHooks } from '../schema/builder.ts';
import type { Rec } from '../upstream/values.ts';
import { gatewayError } from '../errors.ts';
import { setImmediate } from 'node:timers/promises';
import { encodeCursor } from '../schema/connection.ts';
import { fill, type Cell, type Fill, type Leaf, type Level, type Projection, type Streamed } from './projection.ts';

/** The GraphQL errors an answer had: a table is never made of an answer with errors. */
export class TableErrors extends Error {
  override name = 'TableErrors';
  constructor(
    readonly errors: readonly GraphQLError[],
    readonly data: unknown,
  ) {
    super(errors.map((e) => e.message).join('; '));
  }
}

/** Rows handed out at once when they come from the answer itself (a streamed table hands out a page's). */
const CHUNK_ROWS = 1000;

/** A parent of the streamed row list: the cells its own path fills, and its listing request. */
interface Parent {
  cells: Cell[];
  req: DataRequest;
  view: (record: Rec) => unknown;
  /** The row list's connection as the answer has it (empty), and how it fills the cells: its header is filled again once the parent's total is known. */
  connection: unknown;
  fills: readonly Fill[];
}

/**
 * Schemas whose query type lists one record type (`{ rows: [Event] }`): a streamed table's pages are
 * executed on them, so that each row's cells are exactly what the operation's selection resolves to
 * on that record (its back-links and JSON values included). One per record type, made once.
 */
export class RowSchemas {
  readonly #schemas = new Map<string, GraphQLSchema>();

  constructor(private readonly schema: GraphQLSchema) {}

  /**
   * How a page of records is executed on a selection: compiled by graphql-jit once per table (as the
   * gateway runs operations), or by graphql-js where graphql-jit cannot compile it.
   */
  executor(
    type: GraphQLCompositeType,
    document: DocumentNode,
  ): (
    records: unknown[],
    ctx: GatewayContext,
    variables: Record<string, unknown> | undefined,
  ) => ExecutionResult | Promise<ExecutionResult> {
    const schema = this.of(type);
    let compiled: CompiledQuery | null = null;
    try {
      const result = compileQuery(schema, document, undefined, { disablingCapturingStackErrors: true });
      if (isCompiledQuery(result)) compiled = result;
    } catch {
      compiled = null;
    }
    if (compiled) {
      const query = compiled;
      return (records, ctx, variables) => query.query(records, ctx, variables ?? {}) as ExecutionResult | Promise<ExecutionResult>;
    }
    return (records, ctx, variables) => execute({ schema, document, rootValue: records, contextValue: ctx, variableValues: variables });
  }

  of(type: GraphQLCompositeType): GraphQLSchema {
    let rows = this.#schemas.get(type.name);
    if (!rows) {
      rows = new GraphQLSchema({
        query: new GraphQLObjectType({
          name: 'TableRows',
          fields: { rows: { type: new GraphQLList(type), resolve: (records: unknown[]) => records } },
        }),
        types: Object.values(this.schema.getTypeMap()).filter((t) => !t.name.startsWith('__')),
        directives: this.schema.getDirectives(),
      });
      this.#schemas.set(type.name, rows);
    }
    return rows;
  }
}

export interface TableArgs {
  schema: GraphQLSchema;
  rowSchemas: RowSchemas;
  document: DocumentNode;
  operation: OperationDefinitionNode;
  variables: Record<string, unknown> | undefined;
  ctx: GatewayContext;
  /** Pages of the row list read ahead of the one being written. */
  ahead: number;
  /**
   * What reading the rows will take, before the first of them is read (a table whose rows are all in
   * the answer has nothing left to read: an empty plan); may throw to refuse the table.
   */
  onPlan(plan: StreamPlan, inMemory: string | null): void | Promise<void>;
  /** Pages of the row list not to read nor hand out (an export job's, already on disk): by read and offset. */
  skip?: (read: number, offset: number) => boolean;
  /** Rows the table may have (TABLE_MAX_ROWS): past it, the table is refused before its first row. */
  maxRows?: number;
  /** Records the answer above the row list may read (TABLE_MAX_ANSWER_RECORDS), counted as it is read. */
  maxAnswerRecords?: number;
  /** Records of the row list to make rows of (an incremental export's: those not delivered before); all when absent. */
  keep?: (record: Rec) => boolean;
  /**
   * Where a resumed export job goes on (the last of its pages on disk): each merge's place by its first
   * read (RowChunk.page.taken), and each parent's next cursor position (RowChunk.cursors).
   */
  resume?: { from?: (read: number) => readonly number[] | undefined; cursors?: readonly number[] };
}

const REPEATED =
  'records repeated through a back-link (events → experiment → events) multiply them; select less, or give the lists a window (first:)';

/** A table past TABLE_MAX_ROWS (before its first row) or TABLE_MAX_ANSWER_RECORDS (while its answer is read). */
export function tooMany(limit: 'TABLE_MAX_ROWS' | 'TABLE_MAX_ANSWER_RECORDS', found: number, max: number): GraphQLError {
  const n = found.toLocaleString('en-US');
  const what = limit === 'TABLE_MAX_ROWS' ? `${n} rows` : `${n} or more records in the answer above its row list`;
  return gatewayError(
    'OPERATION_LIMIT_EXCEEDED',
    `This table has ${what}, past the ${max.toLocaleString('en-US')} one table may have (${limit}): ${REPEATED}`,
    { extensions: { limit, max, found }, status: 400 },
  );
}

/**
 * Rows and where they came from: a page of the plan's reads (its read, offset and raw records; `merged`:
 * a page of the merge of a group's reads, whose records are no listing's own page), or the answer itself.
 */
export interface RowChunk {
  rows: Cell[][];
  page: { read: number; offset: number; merged: boolean; records: readonly Rec[]; taken?: readonly number[] } | null;
  /** When the rows select cursors: each parent's next cursor position once these rows are written. */
  cursors?: readonly number[];
}

const hasWindow = (args: object): boolean => {
  const a = args as Record<string, unknown>;
  return ['first', 'last', 'after', 'before'].some((k) => a[k] !== null && a[k] !== undefined);
};

/** A response path as `info.path` gives it and the walk of the answer rebuilds it. */
const pathKey = (path: readonly (string | number)[]): string => path.join('\u0000');

function responsePath(path: { prev: unknown; key: string | number } | undefined): (string | number)[] {
  const keys: (string | number)[] = [];
  for (let at = path; at; at = at.prev as typeof path) keys.unshift(at.key);
  return keys;
}

/**
 * The rows of an operation's table, a chunk at a time. The operation runs once as usual (its
 * connections on the row path reading every record when given no window), which answers everything
 * above the rows; when the row list can be streamed, its resolvers only record each parent's request,
 * and its records then come page by page from the planner (src/loaders/planner.ts stream()), each page
 * executed on the operation's selection of the record and joined with its parent's cells. Throws
 * TableErrors when an answer has errors.
 */
export async function* tableRows(args: TableArgs, projection: Projection): AsyncGenerator<Cell[][]> {
  for await (const chunk of tableChunks(args, projection)) if (chunk.rows.length > 0) yield chunk.rows;
}

/** tableRows, each chunk with where its rows came from (an export job checkpoints them page by page). */
export async function* tableChunks(args: TableArgs, projection: Projection): AsyncGenerator<RowChunk> {
  const { ctx, schema, document, operation } = args;
  const streamed = projection.streamed;
  const deferred = new Map<string, { req: DataRequest; view: (record: Rec) => unknown }>();
  // A row list made in the answer: each parent's request and records (in its edges' order), by the connection's path.
  const listed = new Map<string, Listed>();
  let windowed = false;
  let answerRecords = 0;
  const hooks: TableHooks = {
    records: (count) => {
      answerRecords += count;
      const max = args.maxAnswerRecords;
      if (max !== undefined && answerRecords > max) throw tooMany('TABLE_MAX_ANSWER_RECORDS', answerRecords, max);
    },
    all: (node: FieldNode) => projection.path.has(node),
    defer: (info, req, fieldArgs, view) => {
      const node = info.fieldNodes[0];
      if (!streamed || !node || !streamed.fields.has(node)) return false;
      if (hasWindow(fieldArgs)) return !(windowed = true);
      deferred.set(pathKey(responsePath(info.path)), { req, view });
      return true;
    },
    listing: (info, req) => {
      const node = info.fieldNodes[0];
      if (!node || !projection.listing?.has(node)) return null;
      const records: Rec[] = [];
      listed.set(pathKey(responsePath(info.path)), { req, records });
      return (record) => void records.push(record);
    },
  };
  ctx.table = hooks;
  const answer = await execute({
    schema,
    document,
    operationName: operation.name?.value,
    contextValue: ctx,
    variableValues: args.variables,
  });
  if (answer.errors?.length) throw new TableErrors(answer.errors, answer.data);

  const parents: Parent[] = [];
  // The rows in the answer itself (all of them, unless the row list is streamed): known before the first byte.
  const inAnswer: Cell[][] = [];
  // Beside each row of a data listing made in the answer: its record and its parent's listing.
  const sources: { record: Rec; from: Listed }[] = [];
  const cells: Cell[] = new Array<Cell>(projection.columns.length).fill(null);
  const walk = (value: unknown, level: Level, path: (string | number)[], from: Listed | null, at: number): void => {
    fill(value, level.fills, cells);
    const next = level.next;
    if (next === null) {
      if (from) sources.push({ record: from.records[at] as Rec, from });
      return void inAnswer.push(cells.slice());
    }
    let listing: Listed | null = null;
    if (next.level.next === null) {
      // The connection of a streamed row list: its parent's request was recorded at this path.
      const known = deferred.get(pathKey(path));
      if (known) return void parents.push({ cells: cells.slice(), ...known, connection: value, fills: level.fills });
      listing = listed.get(pathKey(path)) ?? null;
    }
    const child = (value as Record<string, unknown> | null)?.[next.key];
    if (child === null || child === undefined) return;
    if (!next.list) return walk(child, next.level, [...path, next.key], null, 0);
    if (Array.isArray(child)) child.forEach((item, i) => walk(item, next.level, [...path, next.key, i], listing, i));
  };
  walk(answer.data, projection.root, [], null, 0);
  if (sources.length > 0 && sources.length === inAnswer.length) inOrder(inAnswer, sources);

  const plan =
    parents.length === 0 || !streamed
      ? { reads: [], requests: 0, rows: 0, endpoints: [], totals: null }
      : await ctx.loaders.planner.plan(
          parents.map((p) => p.req),
          { totals: streamed.totals },
        );
  const inMemory =
    projection.inMemory ??
    (windowed ? `'${projection.rowList}' is given a window (first, last, after or before): its records are read in the answer` : null);
  const rows = plan.rows + inAnswer.length;
  if (args.maxRows !== undefined && rows > args.maxRows) throw tooMany('TABLE_MAX_ROWS', rows, args.maxRows);
  await args.onPlan({ ...plan, rows }, inMemory);
  if (streamed && streamed.header.length > 0 && parents.length > 0) {
    const totals = streamed.totals ? await ctx.loaders.planner.totals(plan, args.ahead) : null;
    parents.forEach((p, i) => fill(headerOf(p.connection, streamed, totals?.[i] ?? 0), p.fills, p.cells));
  }
  for (let i = 0; i < inAnswer.length; i += CHUNK_ROWS) yield { rows: inAnswer.slice(i, i + CHUNK_ROWS), page: null };
  if (streamed && plan.reads.length > 0) yield* streamRows(args, streamed, parents, rowLevel(projection.root), plan);
}

/** A parent's listing of a row list made in the answer: its request, and the records its edges hold. */
interface Listed {
  req: DataRequest;
  records: Rec[];
}

/**
 * Orders the rows of a data listing made in the answer as a streamed table's are (the planner's
 * stream): listings of one data type, filters and experiment together, in the order they first come,
 * and within them by the listing's sort and order across every parent (src/spec/order.ts, the merge's
 * comparator). Stable: rows equal in it keep the answer's order (the parents' order).
 */
function inOrder(rows: Cell[][], sources: readonly { record: Rec; from: Listed }[]): void {
  const groups = new Map<string, { index: number; order: (a: Rec, b: Rec) => number }>();
  const keyed = sources.map(({ record, from }, i) => {
    const key = groupOf(from.req);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { index: groups.size, order: listingOrder(from.req.type, from.req.params) }));
    return { cells: rows[i] as Cell[], record, group };
  });
  keyed.sort((a, b) => a.group.index - b.group.index || a.group.order(a.record, b.record));
  keyed.forEach((row, i) => (rows[i] = row.cells));
}

/**
 * A streamed row list's connection as a parent's whole listing answers it: every record (so no page
 * before or after), its cursors from the first record's position to the last's.
 */
function headerOf(connection: unknown, streamed: Streamed, total: number): Record<string, unknown> {
  const header: Record<string, unknown> = { ...(connection as Record<string, unknown>) };
  const pageInfo: Record<string, unknown> = {
    __typename: 'PageInfo',
    hasNextPage: false,
    hasPreviousPage: false,
    startCursor: total > 0 ? encodeCursor(0) : null,
    endCursor: total > 0 ? encodeCursor(total - 1) : null,
  };
  for (const field of streamed.header) {
    if (field.name === 'totalCount') header[field.key] = total;
    else header[field.key] = Object.fromEntries(field.fields.map((f) => [f.key, pageInfo[f.name] ?? null]));
  }
  return header;
}

/** The level of the row itself (an edge of the row list). */
function rowLevel(root: Level): Level {
  let level = root;
  while (level.next) level = level.next.level;
  return level;
}

/** A streamed row list's records, page by page, each executed on the operation's selection and joined with its parents' cells. */
async function* streamRows(
  args: TableArgs,
  streamed: Streamed,
  parents: readonly Parent[],
  row: Level,
  plan: StreamPlan,
): AsyncGenerator<RowChunk> {
  const { ctx, document, operation } = args;
  const rowDocument: DocumentNode = {
    kind: Kind.DOCUMENT,
    definitions: [
      {
        kind: Kind.OPERATION_DEFINITION,
        operation: operation.operation,
        variableDefinitions: operation.variableDefinitions,
        selectionSet: {
          kind: Kind.SELECTION_SET,
          selections: [
            {
              kind: Kind.FIELD,
              name: { kind: Kind.NAME, value: 'rows' },
              selectionSet: { kind: Kind.SELECTION_SET, selections: streamed.selections },
            },
          ],
        },
      },
      ...document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION),
    ],
  };
  const run = args.rowSchemas.executor(streamed.nodeType, rowDocument);
  // Read straight from the records when the row is leaves only (never with cursors: see directRows).
  const direct = directRows(streamed, row);
  // Each parent's records come in its listing's order: the next one's position is its cursor.
  const resumed = args.resume?.cursors;
  const offsets =
    streamed.cursorKeys.length > 0 ? (resumed?.length === parents.length ? [...resumed] : new Array<number>(parents.length).fill(0)) : null;
  for await (const raw of ctx.loaders.planner.stream(plan, args.ahead, args.skip, args.resume?.from)) {
    // Pages read ahead are in hand at once: let other requests in between them.
    await setImmediate();
    const from = { read: raw.read, offset: raw.offset, merged: raw.merged, records: raw.records, taken: raw.taken };
    const page = args.keep ? kept(raw, args.keep) : raw;
    const read = direct?.(page, parents);
    if (read) {
      // Even empty: an export job checkpoints every page.
      yield { rows: read, page: from };
      continue;
    }
    const records: unknown[] = [];
    const at: number[] = [];
    page.records.forEach((record, i) => {
      const owners = page.owners[i] ?? [];
      const first = owners[0];
      if (first === undefined) return;
      at[i] = records.length;
      records.push((parents[first] as Parent).view(record));
    });
    if (records.length === 0) {
      yield { rows: [], page: from, ...(offsets && { cursors: [...offsets] }) };
      continue;
    }
    const result = (await run(records, ctx, args.variables)) as ExecutionResult<{ rows: unknown[] }>;
    if (result.errors?.length) throw new TableErrors(result.errors, null);
    const nodes = result.data?.rows ?? [];
    const rows: Cell[][] = [];
    page.records.forEach((_, i) => {
      const index = at[i];
      if (index === undefined) return;
      const edge: Record<string, unknown> = { __typename: streamed.edgeType, [streamed.nodeKey]: nodes[index] };
      for (const key of streamed.typenameKeys) edge[key] = streamed.edgeType;
      for (const owner of page.owners[i] ?? []) {
        const cells = (parents[owner] as Parent).cells.slice();
        if (offsets) {
          const cursor = encodeCursor((offsets[owner] as number)++);
          for (const key of streamed.cursorKeys) edge[key] = cursor;
        }
        fill(edge, row.fills, cells);
        rows.push(cells);
      }
    });
    yield { rows, page: from, ...(offsets && { cursors: [...offsets] }) };
  }
}

/** A page with only the records `keep` keeps (and their owners). */
function kept(page: StreamedPage, keep: (record: Rec) => boolean): StreamedPage {
  const records: Rec[] = [];
  const owners: number[][] = [];
  page.records.forEach((record, i) => {
    if (!keep(record)) return;
    records.push(record);
    owners.push(page.owners[i] ?? []);
  });
  return records.length === page.records.length ? page : { ...page, records, owners };
}

/**
 * How a page's rows are read straight from its records when the record's selection is leaves read as
 * properties (Streamed.leaves): the same cells the executor gives, each value serialized by its type,
 * without executing the page (a tenth of a table's CPU). Null when the row has cells of another kind.
 * A page it cannot read so (a value its type refuses, a null the schema rules out) reads as null and
 * is executed, so that the executor reports it as it would.
 */
function directRows(streamed: Streamed, row: Level): ((page: StreamedPage, parents: readonly Parent[]) => Cell[][] | null) | null {
  const leaves = streamed.leaves;
  if (!leaves) return null;
  // Each cell the row fills beyond its parents': the column, and the leaf it comes from (-1: the edge's __typename).
  const columns: number[] = [];
  const sources: number[] = [];
  for (const f of row.fills) {
    if ('column' in f) {
      if (f.key !== '__typename') return null;
      columns.push(f.column);
      sources.push(-1);
      continue;
    }
    if (f.key !== streamed.nodeKey) return null;
    for (const g of f.object) {
      const at = leaves.findIndex((l) => l.key === g.key);
      if (!('column' in g) || at === -1) return null;
      columns.push(g.column);
      sources.push(at);
    }
  }
  const values = new Array<Cell>(leaves.length);
  return (page, parents) => {
    const rows: Cell[][] = [];
    for (let i = 0; i < page.records.length; i++) {
      const owners = page.owners[i];
      const first = owners?.[0];
      if (owners === undefined || first === undefined) continue;
      const node = (parents[first] as Parent).view(page.records[i] as Rec) as Record<string, unknown>;
      for (let j = 0; j < leaves.length; j++) {
        const leaf = leaves[j] as Leaf;
        const raw = leaf.name === '__typename' ? streamed.nodeType.name : node[leaf.name];
        let value: unknown = null;
        if (raw !== null && raw !== undefined) {
          if (typeof raw === 'function') return null;
          try {
            value = leaf.type.serialize(raw);
          } catch {
            return null;
          }
          if (value === null || value === undefined) return null;
        } else if (leaf.nonNull) return null;
        values[j] = value;
      }
      for (const owner of owners) {
        const cells = (parents[owner] as Parent).cells.slice();
        for (let k = 0; k < columns.length; k++) {
          const source = sources[k] as number;
          cells[columns[k] as number] = source === -1 ? streamed.edgeType : values[source];
        }
        rows.push(cells);
      }
    }
    return rows;
  };
}
