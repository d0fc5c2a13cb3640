import { JSONResolver } from 'graphql-scalars';
import {
  defaultFieldResolver,
  getNamedType,
  getNullableType,
  GraphQLError,
  GraphQLScalarType,
  isListType,
  isObjectType,
  type GraphQLOutputType,
  type GraphQLSchema,
} from 'graphql';
import { UpstreamError } from '../upstream/errors.ts';

/** The deepest JSON value the graph passes, either way: upstream records nest a few levels. */
export const MAX_JSON_DEPTH = 64;

/** Whether a value nests deeper than `max` levels, found without recursion (a hostile value may be very deep). */
export function deeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object') continue;
    if (depth >= max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v))
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * JSON (graphql-scalars') with a depth bound on input: a variable nested deeper is the caller's
 * mistake. Output is bounded by the fields that return JSON (`boundJsonOutputs`).
 */
export const BoundedJSON = new GraphQLScalarType({
  ...JSONResolver.toConfig(),
  parseValue(value) {
    if (deeperThan(value, MAX_JSON_DEPTH)) throw new GraphQLError(`A JSON value may nest at most ${MAX_JSON_DEPTH} levels`);
    return JSONResolver.parseValue(value);
  },
});

/** An upstream value nested too deep: returned in its place, so that it fails its own field (or list item). */
function bounded(value: unknown): unknown {
  if (!deeperThan(value, MAX_JSON_DEPTH)) return value;
  return new UpstreamError(`The HyperStudy API sent a value nested deeper than ${MAX_JSON_DEPTH} levels`, {
    code: 'UPSTREAM_ERROR',
    status: null,
    details: { maxDepth: MAX_JSON_DEPTH },
  });
}

function listDepth(type: GraphQLOutputType): number {
  const inner = getNullableType(type);
  return isListType(inner) ? 1 + listDepth(inner.ofType) : 0;
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function';

/**
 * Bounds the depth of every JSON value the schema's fields return: a value nested deeper than
 * MAX_JSON_DEPTH becomes an UpstreamError in its place, so that it fails its own field or list item
 * (UPSTREAM_ERROR) instead of the whole response. It is the resolvers' answer rather than the scalar's
 * `serialize` throwing: a resolver's error keeps its class in every executor (graphql-jit keeps only
 * the message of an error thrown by `serialize`). Changes the schema's fields in place.
 */
export function boundJsonOutputs(schema: GraphQLSchema, scalar = 'JSON'): GraphQLSchema {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      if (getNamedType(field.type).name !== scalar) continue;
      const lists = listDepth(field.type);
      const check = (value: unknown, depth = lists): unknown =>
        depth === 0 ? bounded(value) : Array.isArray(value) ? value.map((item: unknown) => check(item, depth - 1)) : value;
      const resolve = field.resolve ?? defaultFieldResolver;
      field.resolve = (source, args, context, info) => {
        const value: unknown = resolve(source, args, context, info);
        return isThenable(value) ? Promise.resolve(value).then((v) => check(v)) : check(value);
      };
    }
  }
  return schema;
}
