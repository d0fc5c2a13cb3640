import { randomUUID } from 'node:crypto';
import type { NodeHandler } from './node.ts';

export const REQUEST_ID_HEADER = 'x-request-id';

const WELL_FORMED = /^[\w.:-]{1,128}$/;

/** The caller's request id when it is well-formed (word characters, `.`, `:`, `-`; at most 128), else a new UUID. */
export function requestIdOf(value: string | string[] | null | undefined): string {
  return typeof value === 'string' && WELL_FORMED.test(value) ? value : randomUUID();
}

/**
 * Gives every request an id before anything else sees it: the caller's `X-Request-Id` when well-formed,
 * else a new UUID. It replaces the request's header (what the GraphQL context reads and sends upstream)
 * and is returned in the response's `X-Request-Id`, also on answers made before Yoga (413, errors).
 */
export function withRequestId(next: NodeHandler): NodeHandler {
  return (req, res) => {
    const id = requestIdOf(req.headers[REQUEST_ID_HEADER]);
    req.headers[REQUEST_ID_HEADER] = id;
    res.setHeader(REQUEST_ID_HEADER, id);
    next(req, res);
  };
}
