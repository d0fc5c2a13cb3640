import { GraphQLError } from 'graphql';
import { gatewayError } from '../errors.ts';
import { UpstreamError } from '../upstream/errors.ts';
import { isPlainSegment, LONE_SURROGATE } from '../upstream/routes.ts';

/** A caller's bad argument, rejected before any upstream call. */
export function badInput(message: string, argument: string, details: Record<string, unknown> = {}): GraphQLError {
  return gatewayError('BAD_USER_INPUT', message, { extensions: { argument, ...details } });
}

/**
 * An id argument as the upstream takes it: one plain path segment. A blank id, `.` or `..` would
 * address another route, a lone surrogate cannot be encoded: each is refused on its own field.
 */
export function requireId(value: string | number, argument: string): string {
  const id = String(value);
  if (!isPlainSegment(id)) {
    throw badInput(
      `'${argument}' must be an id: not blank, '.' or '..', without surrounding spaces or control characters, at most 512 characters`,
      argument,
      { value: id.replace(new RegExp(LONE_SURROGATE.source, 'g'), '\uFFFD') },
    );
  }
  return id;
}

/** A key field of a Federation entity representation: an id as `requireId` takes it (representations are untyped JSON). */
export function requireKey(value: unknown, field: string): string {
  if (typeof value !== 'string') throw badInput(`The representation's '${field}' must be a string id`, field, { value: String(value) });
  return requireId(value, field);
}

/** The one place an UpstreamError becomes what callers see. */
export function upstreamExtensions(error: UpstreamError): Record<string, unknown> {
  return {
    code: error.code,
    ...(error.retryAfter !== null ? { retryAfter: error.retryAfter } : {}),
    upstream: { status: error.status, code: error.upstreamCode, details: error.details },
  };
}

/** Whether an error is already an upstream error as callers see it (also when graphql-js wrapped it with a path). */
export function isMappedUpstreamError(error: unknown): boolean {
  if (!(error instanceof GraphQLError)) return false;
  if (error.originalError instanceof UpstreamError) return 'upstream' in error.extensions;
  return isMappedUpstreamError(error.originalError);
}

export function toGraphQLError(error: UpstreamError, from?: GraphQLError): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: from?.nodes,
    source: from?.source,
    positions: from?.positions,
    path: from?.path,
    originalError: error,
    extensions: upstreamExtensions(error),
  });
}

/** What a write that failed did upstream: nothing (refused or never sent), or possibly something. */
export type WriteOutcome = 'NOT_APPLIED' | 'UNKNOWN';

/**
 * Whether a failed write may have been applied. Only answers that prove nothing was stored — a 4xx,
 * or a refusal before sending (no key, budget, quota, open circuit) — are NOT_APPLIED; a 5xx, a
 * timeout or a lost connection may follow a stored write, so they are UNKNOWN.
 */
export function writeOutcome(error: UpstreamError): WriteOutcome {
  if (error.status !== null) return error.status >= 400 && error.status < 500 ? 'NOT_APPLIED' : 'UNKNOWN';
  const neverSent =
    error.code === 'UNAUTHENTICATED' ||
    error.code === 'UPSTREAM_BUDGET_EXCEEDED' ||
    error.code === 'RATE_LIMITED' ||
    error.code === 'BAD_USER_INPUT' ||
    error.details.circuit === 'open';
  return neverSent ? 'NOT_APPLIED' : 'UNKNOWN';
}

/** Per-role reasons of a refused agent deployment (the upstream's preflight), when the error has them. */
function preflightOf(error: UpstreamError): { role: string | null; reason: string }[] | null {
  if (error.status !== 400 || !Array.isArray(error.details.errors)) return null;
  const entries = error.details.errors.flatMap((e: unknown) => {
    if (e === null || typeof e !== 'object' || !('reason' in e)) return [];
    const { role, reason } = e as { role?: unknown; reason?: unknown };
    return typeof reason === 'string' ? [{ role: typeof role === 'string' ? role : null, reason }] : [];
  });
  return entries.length > 0 ? entries : null;
}

/**
 * A write's failure as callers see it: the upstream code and details, `extensions.outcome`, and for a
 * refused agent deployment `extensions.preflight` (one entry per role). Writes are never retried.
 */
export function writeError(error: UpstreamError, what: string): GraphQLError {
  const outcome = writeOutcome(error);
  const preflight = preflightOf(error);
  return new GraphQLError(outcome === 'UNKNOWN' ? `${error.message}; the ${what} may or may not have been applied` : error.message, {
    originalError: error,
    extensions: { ...upstreamExtensions(error), outcome, ...(preflight ? { preflight } : {}) },
  });
}
