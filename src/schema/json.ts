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
    return refuseProtoKeys(JSONResolver.parseValue(value));
  },
  parseLiteral(node, variables) {
    return refuseProtoKeys(JSONResolver.parseLiteral(node, variables));
  },
});

/**
 * Keys that rewrite an object's prototype where a JavaScript upstream merges input (`__proto__`,
 * `constructor.prototype`) are refused: no caller needs them, and the gateway forwards JSON inputs.
 */
export function refuseProtoKeys(value: unknown): unknown {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    // A literal `{ __proto__: … }` may have set the prototype instead of a key.
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== Array.prototype && proto !== null) throw protoError('__proto__');
    for (const [key, child] of Object.entries(v)) {
      if (key === '__proto__') throw protoError(key);
      if (key === 'constructor' && child !== null && typeof child === 'object' && Object.hasOwn(child, 'prototype'))
        throw protoError('constructor.prototype');
      stack.push(child);
    }
  }
  return value;
}

const protoError = (key: string): GraphQLError => new GraphQLError(`A JSON value may not hold the key '${key}'`);

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
