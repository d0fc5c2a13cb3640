import { JSONResolver } from 'graphql-scalars';
import { GraphQLError, GraphQLScalarType } from 'graphql';
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
 * JSON (graphql-scalars') with a depth bound: an upstream value nested deeper fails its own field
 * (UPSTREAM_ERROR) instead of the whole response, and a variable nested deeper is the caller's mistake.
 */
export const BoundedJSON = new GraphQLScalarType({
  ...JSONResolver.toConfig(),
  serialize(value) {
    if (deeperThan(value, MAX_JSON_DEPTH)) {
      // An UpstreamError, not a GraphQLError: the executor turns a scalar's GraphQLError into a plain Error.
      throw new UpstreamError(`The HyperStudy API sent a value nested deeper than ${MAX_JSON_DEPTH} levels`, {
        code: 'UPSTREAM_ERROR',
        status: null,
        details: { maxDepth: MAX_JSON_DEPTH },
      });
    }
    return JSONResolver.serialize(value);
  },
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
