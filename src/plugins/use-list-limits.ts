import {
  getNamedType,
  getOperationAST,
  type GraphQLError,
  isInputObjectType,
  isInputType,
  isInterfaceType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  typeFromAST,
  type DocumentNode,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLSchema,
  type ValueNode,
  type VariableDefinitionNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { fragmentsOf, selectionWalk } from '../document.ts';
import { gatewayError } from '../errors.ts';
import type { GatewayContext } from '../schema/builder.ts';

/** How many list items an operation's arguments may hold, summed over the operation. */
export interface ListLimits {
  /** Items of every list argument, nested lists in input objects included (MAX_LIST_ITEMS). */
  listItems: number;
  /** Ids of `nodes(ids:)` and representations of `_entities`: each is one upstream lookup (MAX_LOOKUPS). */
  lookups: number;
}

interface Count {
  items: number;
  lookups: number;
}

/** Root query fields whose list items are each one upstream lookup. */
const LOOKUP_FIELDS: ReadonlySet<string> = new Set(['nodes', '_entities']);

const NONE: Count = { items: 0, lookups: 0 };

const add = (a: Count, b: Count): Count => ({ items: a.items + b.items, lookups: a.lookups + b.lookups });

/**
 * Counts the list items an operation's arguments hold — literals, variables (their raw JSON, before
 * graphql-js coerces it), variables' defaults — once per use (a fragment spread twice counts twice,
 * worked out once per fragment). Only what the schema types as a list counts, and only fields of the
 * input types are visited (not whatever keys a value carries), so the walk is bounded by the schema
 * and the request's size. Expects a validated document.
 */
export function countListItems(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Readonly<Record<string, unknown>> | null | undefined,
): Count {
  const operation = getOperationAST(document, operationName ?? undefined);
  const root = operation ? schema.getRootType(operation.operation) : null;
  if (!operation || !root) return NONE;
  const queryType = schema.getQueryType();
  const definitions = new Map<string, VariableDefinitionNode>(operation.variableDefinitions?.map((d) => [d.variable.name.value, d]));
  const nesting = new Map<GraphQLNamedType, boolean>();

  /** Whether values of a type can hold lists at all (else its items need no visit). */
  const nests = (type: GraphQLInputType): boolean => {
    if (isNonNullType(type)) return nests(type.ofType);
    if (isListType(type)) return true;
    if (!isInputObjectType(type)) return false;
    const known = nesting.get(type);
    if (known !== undefined) return known;
    // Reachability through input fields, each type seen once (input types may refer to themselves).
    const seen = new Set<GraphQLNamedType>([type]);
    const queue = [type];
    let found = false;
    while (!found && queue.length > 0) {
      const next = queue.pop();
      for (const field of Object.values(next?.getFields() ?? {})) {
        let t = field.type;
        if (isNonNullType(t)) t = t.ofType;
        if (isListType(t)) found = true;
        else if (isInputObjectType(t) && !seen.has(t)) {
          seen.add(t);
          queue.push(t);
        }
      }
    }
    nesting.set(type, found);
    return found;
  };

  const raw = (value: unknown, type: GraphQLInputType): number => {
    if (isNonNullType(type)) return raw(value, type.ofType);
    if (value === null || value === undefined) return 0;
    if (isListType(type)) {
      const item = type.ofType as GraphQLInputType;
      // A single value where a list is expected is coerced as a list of one.
      if (!Array.isArray(value)) return 1 + raw(value, item);
      let n = value.length;
      if (nests(item)) for (const v of value as unknown[]) n += raw(v, item);
      return n;
    }
    if (!isInputObjectType(type) || typeof value !== 'object' || !nests(type)) return 0;
    let n = 0;
    for (const [name, field] of Object.entries(type.getFields())) n += raw((value as Record<string, unknown>)[name], field.type);
    return n;
  };

  const literal = (node: ValueNode, type: GraphQLInputType): number => {
    if (isNonNullType(type)) return literal(node, type.ofType);
    if (node.kind === Kind.VARIABLE) {
      const name = node.name.value;
      if (variables && Object.hasOwn(variables, name)) return raw(variables[name], type);
      const fallback = definitions.get(name)?.defaultValue;
      return fallback ? literal(fallback, type) : 0;
    }
    if (isListType(type)) {
      const item = type.ofType as GraphQLInputType;
      if (node.kind !== Kind.LIST) return node.kind === Kind.NULL ? 0 : 1 + literal(node, item);
      return node.values.reduce((n, v) => n + literal(v, item), node.values.length);
    }
    if (!isInputObjectType(type) || node.kind !== Kind.OBJECT) return 0;
    const fields = type.getFields();
    return node.fields.reduce((n, f) => {
      const field = fields[f.name.value];
      return field ? n + literal(f.value, field.type) : n;
    }, 0);
  };

  const selection = selectionWalk<Count>(
    {
      none: NONE,
      add,
      field: (s, parent, walk) => {
        if (s.name.value.startsWith('__') || !(isObjectType(parent) || isInterfaceType(parent))) return NONE;
        const field = parent.getFields()[s.name.value];
        if (!field) return NONE;
        const count: Count = { items: 0, lookups: 0 };
        for (const argument of s.arguments ?? []) {
          const definition = field.args.find((a) => a.name === argument.name.value);
          if (!definition) continue;
          const n = literal(argument.value, definition.type);
          count.items += n;
          if (parent === queryType && LOOKUP_FIELDS.has(field.name) && isListType(getNullableOf(definition.type))) count.lookups += n;
        }
        return s.selectionSet ? add(count, walk(s.selectionSet, getNamedType(field.type))) : count;
      },
    },
    fragmentsOf(document),
    schema,
  );
  return selection(operation.selectionSet, root);
}

/** An input object value in the variables with more keys than its type has fields. */
export interface WideObject {
  variable: string;
  /** Where: the variable and the path in it, as graphql-js prints it (`p.guardrails`, `e[3]`). */
  at: string;
  type: string;
  fields: number;
  /** The first key the type does not define (there is one: the value holds more keys than its fields). */
  unknown: string;
}

/**
 * The first input object in the variables that holds more keys than its type defines fields, if any.
 * Coercion would refuse it anyway, but graphql-tools' executor prints the whole object into the message
 * of each unknown key (up to 50 errors): an object of 200,000 keys took 25 s. Each variable is walked
 * once against its declared type, items of lists of input objects included (a key count per object,
 * stopped as soon as it exceeds the type's fields).
 */
export function wideInputObject(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Readonly<Record<string, unknown>> | null | undefined,
): WideObject | null {
  const operation = getOperationAST(document, operationName ?? undefined);
  if (!operation || !variables) return null;
  type Found = Omit<WideObject, 'variable'>;
  const walk = (value: unknown, type: GraphQLInputType, at: string): Found | null => {
    if (isNonNullType(type)) return walk(value, type.ofType, at);
    if (value === null || typeof value !== 'object') return null;
    if (isListType(type)) {
      const item = type.ofType as GraphQLInputType;
      if (!Array.isArray(value)) return walk(value, item, at);
      const named = getNamedType(item);
      if (!isInputObjectType(named)) return null;
      for (let i = 0; i < value.length; i++) {
        const found = walk(value[i], item, `${at}[${i}]`);
        if (found) return found;
      }
      return null;
    }
    if (!isInputObjectType(type) || Array.isArray(value)) return null;
    const fields = type.getFields();
    const defined = Object.keys(fields).length;
    let keys = 0;
    let unknown: string | null = null;
    for (const key in value) {
      const field = Object.hasOwn(fields, key) ? fields[key] : undefined;
      if (!field) unknown ??= key;
      if (++keys > defined) return { at, type: type.name, fields: defined, unknown: unknown ?? key };
      const found = field ? walk((value as Record<string, unknown>)[key], field.type, `${at}.${key}`) : null;
      if (found) return found;
    }
    return null;
  };
  for (const definition of operation.variableDefinitions ?? []) {
    const name = definition.variable.name.value;
    const type = typeFromAST(schema, definition.type);
    if (!type || !isInputType(type) || !Object.hasOwn(variables, name)) continue;
    const found = walk(variables[name], type, name);
    if (found) return { variable: name, ...found };
  }
  return null;
}

const getNullableOf = (type: GraphQLInputType): GraphQLInputType => (isNonNullType(type) ? type.ofType : type);

/** The refusals of an operation past the list limits (none when within them). */
export function listLimitErrors(count: Count, limits: ListLimits): GraphQLError[] {
  const errors: GraphQLError[] = [];
  const refuse = (limit: 'listItems' | 'lookups', max: number, found: number, message: string): void => {
    errors.push(gatewayError('OPERATION_LIMIT_EXCEEDED', message, { extensions: { limit, max, found }, status: 400 }));
  };
  if (count.lookups > limits.lookups)
    refuse(
      'lookups',
      limits.lookups,
      count.lookups,
      `The operation exceeds the lookups limit of ${limits.lookups} (found ${count.lookups}): each id of nodes(ids:) and each representation of _entities is an upstream request`,
    );
  if (count.items > limits.listItems)
    refuse(
      'listItems',
      limits.listItems,
      count.items,
      `The operation exceeds the list items limit of ${limits.listItems} (found ${count.items})`,
    );
  return errors;
}

/**
 * Refuses, before execution — before any upstream request, and before graphql-js (or graphql-jit)
 * coerces the variables — an operation whose list arguments hold more items than the limits allow,
 * or whose variables hold an input object wider than its type (`wideInputObject`). (Subscriptions take
 * no list arguments.)
 */
export function useListLimits(limits: ListLimits): Plugin<GatewayContext> {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const count = countListItems(args.schema, args.document, args.operationName, args.variableValues);
      const errors = listLimitErrors(count, limits);
      const wide = wideInputObject(args.schema, args.document, args.operationName, args.variableValues);
      if (wide)
        errors.push(
          gatewayError(
            'BAD_USER_INPUT',
            `Variable "$${wide.variable}" got invalid value at "${wide.at}"; "${wide.type}" defines ${wide.fields} fields, and the value holds more keys; ` +
              `Field "${wide.unknown}" is not defined by type "${wide.type}".`,
            { status: 400 },
          ),
        );
      if (errors.length > 0) return setResultAndStopExecution({ errors });
      // Reading and parsing a large body was one stretch of work; coercing its lists (and starting
      // their reads) is the next: other requests get their turn in between.
      if (count.items >= YIELD_BEFORE_ITEMS) return new Promise<void>((resolve) => setImmediate(resolve));
      return undefined;
    },
  };
}

/** List items from which an operation lets others run between parsing its request and executing it. */
const YIELD_BEFORE_ITEMS = 1_000;
