import {
  BREAK,
  defaultFieldResolver,
  getLocation,
  getNamedType,
  getNullableType,
  isEnumType,
  isListType,
  isNonNullType,
  isObjectType,
  isSpecifiedScalarType,
  getOperationAST,
  GraphQLError,
  TypeInfo,
  TypeNameMetaFieldDef,
  visit,
  visitWithTypeInfo,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FieldNode,
  type GraphQLEnumType,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLOutputType,
  type GraphQLScalarType,
  type GraphQLSchema,
} from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';
import type { Plugin } from 'graphql-yoga';

export interface JitOptions {
  /** Called once per operation compiled, with how long compiling took (ms); failed compilations too. */
  onCompile?: (ms: number, compiled: boolean) => void;
}

type ExecuteFn = (args: ExecutionArgs) => unknown;

interface DocumentPlan {
  /** Whether the document uses @defer or @stream, which graphql-jit does not deliver incrementally. */
  incremental: boolean;
  /** Compiled operations by name ('' for the only one); null where graphql-jit could not compile it. */
  operations: Map<string, CompiledQuery | null>;
  /** The document's field nodes by the location errors report for them, built when an error first needs them. */
  fields?: Map<string, FieldNode>;
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function';

function usesIncrementalDelivery(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    Directive(node) {
      if (node.name.value !== 'defer' && node.name.value !== 'stream') return undefined;
      found = true;
      return BREAK;
    },
  });
  return found;
}

function fieldsByLocation(document: DocumentNode): Map<string, FieldNode> {
  const fields = new Map<string, FieldNode>();
  visit(document, {
    Field(node) {
      if (!node.loc) return;
      const { line, column } = getLocation(node.loc.source, node.loc.start);
      fields.set(`${line}:${column}`, node);
    },
  });
  return fields;
}

const settle = (item: unknown): unknown =>
  isThenable(item)
    ? Promise.resolve(item).then(undefined, (error: unknown) => (error instanceof Error ? error : new Error(String(error))))
    : item;

function settledList(value: unknown): unknown {
  if (!Array.isArray(value) || !value.some(isThenable)) return value;
  return Promise.all(value.map(settle));
}

/**
 * Makes every list field hand the executor its items settled, a rejected item as its Error: graphql-jit
 * (0.8.9) appends a rejected item's null to the list instead of putting it in its place (`[a, reject,
 * b]` comes out `[a, b, null]`), while an Error item is completed in place, as graphql-js does with
 * either. Answers are the same under graphql-js. Changes the schema's fields in place.
 */
export function settleListItems(schema: GraphQLSchema): GraphQLSchema {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      if (!isListType(getNullableType(field.type))) continue;
      const resolve = field.resolve ?? defaultFieldResolver;
      field.resolve = (source, args, context, info) => {
        const value: unknown = resolve(source, args, context, info);
        return isThenable(value) ? Promise.resolve(value).then(settledList) : settledList(value);
      };
    }
  }
  return schema;
}

/**
 * A field's extensions saying that its values come out as its type serializes them (or null, or an
 * Error): for a field of a built-in scalar or an enum, serializing again would change nothing. Declared by
 * the fields the executor reads as properties (record views' plain fields, edges' cursors, page info);
 * fields with resolvers get it from `canonicalOutputs`.
 */
export const CANONICAL_OUTPUT = { canonicalOutput: true } as const;

const isCanonical = (field: GraphQLField<unknown, unknown>): boolean => field.extensions.canonicalOutput === true;

/** A leaf type graphql-jit's `disableLeafSerialization` leaves unserialized: a built-in scalar or an enum. */
const isBuiltInLeaf = (type: GraphQLNamedType): type is GraphQLScalarType | GraphQLEnumType =>
  isSpecifiedScalarType(type) || isEnumType(type);

/** An enum whose values are their names: serializing a value gives it back (or fails), so serializing is idempotent. */
const namesItself = (type: GraphQLEnumType): boolean => type.getValues().every((v) => v.value === v.name);

/**
 * A leaf's value its type refused, as a wrapped resolver throws it: for the usual executor
 * (@graphql-tools/executor) a plain Error with the serializer's message, as it throws its own refusals
 * (which Yoga masks); graphql-jit's errors drop it as their original error (toGraphQLJsError), so that
 * they read as graphql-jit's own refusals do. Either executor answers as it did without the wrapper.
 */
class LeafRefusal extends Error {}

function serialized(leaf: GraphQLScalarType | GraphQLEnumType, value: unknown): unknown {
  try {
    return leaf.serialize(value);
  } catch (error) {
    throw error instanceof GraphQLError ? new LeafRefusal(error.message) : error;
  }
}

/**
 * What makes a resolver's value of `type` canonical: each leaf serialized by its type (a refusal thrown
 * as a LeafRefusal), a list's items one by one (a failing item becomes its Error, which both executors
 * complete in place, at the item's path).
 */
function canonicalizer(type: GraphQLOutputType, leaf: GraphQLScalarType | GraphQLEnumType): (value: unknown) => unknown {
  const inner = isNonNullType(type) ? type.ofType : type;
  if (!isListType(inner))
    return (value) => (value === null || value === undefined || value instanceof Error ? value : serialized(leaf, value));
  const item = canonicalizer(inner.ofType, leaf);
  const settled = (value: unknown): unknown => {
    try {
      return item(value);
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  };
  return (value) =>
    Array.isArray(value) ? value.map((v: unknown) => (isThenable(v) ? Promise.resolve(v).then(settled) : settled(v))) : value;
}

/**
 * The contexts of the operations graphql-jit runs without leaf serialization (their compiled queries
 * are in `UNSERIALIZED`): only for those do wrapped resolvers serialize what they return. Every other
 * execution (the usual executor, tables' rows, operations compiled with leaf serialization) sees the
 * resolvers' values as it did without the wrapper, and serializes them itself.
 */
const SERIALIZING = new WeakSet<object>();
const UNSERIALIZED = new WeakSet<CompiledQuery>();

/**
 * Makes the value of every field of a built-in scalar or an enum canonical where its resolver can be
 * wrapped: in an operation graphql-jit runs without leaf serialization (SERIALIZING), the wrapped
 * resolver serializes what the resolver gave; the field is marked CANONICAL_OUTPUT. Not wrapped: fields
 * the executor reads as properties (canonical only where declared), enums whose values are not their
 * names (serializing maps them), introspection. Changes the schema's fields in place.
 */
export function canonicalOutputs(schema: GraphQLSchema): GraphQLSchema {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      const leaf = getNamedType(field.type);
      const { resolve } = field;
      if (!isBuiltInLeaf(leaf) || isCanonical(field) || !resolve || (isEnumType(leaf) && !namesItself(leaf))) continue;
      const canonical = canonicalizer(field.type, leaf);
      field.resolve = (source, args, context, info) => {
        const value: unknown = resolve(source, args, context, info);
        if (!SERIALIZING.has(context as object)) return value;
        return isThenable(value) ? Promise.resolve(value).then(canonical) : canonical(value);
      };
      field.extensions = { ...field.extensions, ...CANONICAL_OUTPUT };
    }
  }
  return schema;
}

/**
 * Whether every leaf a document selects of a built-in scalar or an enum is canonical (`__typename`
 * always is): then graphql-jit may hand those leaves out as they are (`disableLeafSerialization`),
 * which spares it, per leaf of every list item, the arrays of locations and path it builds for an error
 * that a canonical value cannot have. Fields it does not know make the answer no.
 */
export function canonicalLeaves(schema: GraphQLSchema, document: DocumentNode): boolean {
  const typeInfo = new TypeInfo(schema);
  let canonical = true;
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field() {
        const field = typeInfo.getFieldDef();
        if (field === TypeNameMetaFieldDef) return undefined;
        if (field && (!isBuiltInLeaf(getNamedType(field.type)) || isCanonical(field))) return undefined;
        canonical = false;
        return BREAK;
      },
    }),
  );
  return canonical;
}

/**
 * graphql-jit's errors are look-alikes of graphql-js's: `extensions` undefined unless the original
 * error had some, no `nodes`, `source` or `positions`. Everything after execution (error mapping,
 * Yoga's masking, the report) expects graphql-js errors, so each becomes one: the same message, path,
 * original error and extensions, and the field nodes its locations name (so the locations are the same).
 * A wrapped resolver's refusal (LeafRefusal) reads as graphql-jit's own refusals do: without an original error.
 */
function toGraphQLJsError(error: GraphQLError, plan: DocumentPlan, document: DocumentNode): GraphQLError {
  plan.fields ??= fieldsByLocation(document);
  const { fields } = plan;
  const nodes = error.locations?.map((l) => fields.get(`${l.line}:${l.column}`));
  const found = nodes?.every((n): n is FieldNode => n !== undefined) ? (nodes as FieldNode[]) : undefined;
  return new GraphQLError(error.message, {
    nodes: found,
    path: error.path,
    // A wrapped resolver's refusal reads as graphql-jit's own: no original error.
    originalError: error.originalError instanceof LeafRefusal ? undefined : (error.originalError ?? undefined),
    extensions: error.extensions ?? undefined,
  });
}

/**
 * Executes queries and mutations with graphql-jit: each operation is compiled to JavaScript once (per
 * document Yoga parsed, so compiled operations live as long as Yoga's document cache holds them) and
 * then run without graphql-js's per-field interpretation. Operations graphql-jit does not serve keep
 * the usual executor: subscriptions, @defer/@stream (incremental delivery), and documents it cannot
 * compile; so do requests whose variables do not coerce (no resolver ran: the usual executor says why,
 * with graphql-js's messages). Errors come out as graphql-js errors (`toGraphQLJsError`).
 */
export function useJit(options: JitOptions = {}): Plugin {
  const plans = new WeakMap<DocumentNode, DocumentPlan>();

  const planOf = (document: DocumentNode): DocumentPlan => {
    let plan = plans.get(document);
    if (!plan) plans.set(document, (plan = { incremental: usesIncrementalDelivery(document), operations: new Map() }));
    return plan;
  };

  const compiledFor = (plan: DocumentPlan, args: ExecutionArgs): CompiledQuery | null => {
    const name = args.operationName ?? '';
    if (plan.operations.has(name)) return plan.operations.get(name) ?? null;
    const started = performance.now();
    let compiled: CompiledQuery | null = null;
    try {
      const unserialized = canonicalLeaves(args.schema, args.document);
      const result = compileQuery(args.schema, args.document, args.operationName ?? undefined, {
        disablingCapturingStackErrors: true,
        disableLeafSerialization: unserialized,
      });
      if (isCompiledQuery(result)) compiled = result;
      if (compiled && unserialized) UNSERIALIZED.add(compiled);
    } catch {
      // not compilable: the usual executor serves it
    }
    options.onCompile?.(performance.now() - started, compiled !== null);
    plan.operations.set(name, compiled);
    return compiled;
  };

  const jitExecute = (compiled: CompiledQuery, plan: DocumentPlan, fallback: ExecuteFn): ExecuteFn => {
    return (args) => {
      const finish = (result: ExecutionResult): unknown => {
        if (!('data' in result)) return fallback(args);
        if (!result.errors) return { data: result.data };
        return { data: result.data, errors: result.errors.map((e) => toGraphQLJsError(e, plan, args.document)) };
      };
      const context: unknown = args.contextValue;
      if (UNSERIALIZED.has(compiled) && typeof context === 'object' && context !== null) SERIALIZING.add(context);
      const result = compiled.query(args.rootValue, context, args.variableValues);
      return isThenable(result) ? Promise.resolve(result).then(finish) : finish(result);
    };
  };

  return {
    onExecute({ args, executeFn, setExecuteFn }) {
      const operation = getOperationAST(args.document, args.operationName ?? undefined);
      if (!operation || operation.operation === 'subscription') return;
      const plan = planOf(args.document);
      if (plan.incremental) return;
      const compiled = compiledFor(plan, args);
      if (compiled) setExecuteFn(jitExecute(compiled, plan, executeFn as ExecuteFn) as typeof executeFn);
    },
  };
}
