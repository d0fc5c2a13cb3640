import { GraphQLError } from 'graphql';
import { UpstreamError } from '../upstream/errors.ts';

/** A caller's bad argument, rejected before any upstream call. */
export function badInput(message: string, argument: string, details: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', argument, ...details } });
}

/** An id argument as the upstream takes it: a blank one would address another route, so it is refused. */
export function requireId(value: string | number, argument: string): string {
  const id = String(value);
  if (id.trim() === '' || id !== id.trim())
    throw badInput(`'${argument}' must be a non-blank id without surrounding spaces`, argument, { value: id });
  return id;
}

/** The one place an UpstreamError becomes what callers see. */
export function upstreamExtensions(error: UpstreamError): Record<string, unknown> {
  return {
    code: error.code,
    ...(error.retryAfter !== null ? { retryAfter: error.retryAfter } : {}),
    upstream: { status: error.status, code: error.upstreamCode, details: error.details },
  };
}

/** Whether an error is already an upstream error as callers see it. */
export const isMappedUpstreamError = (error: unknown): boolean =>
  error instanceof GraphQLError && error.originalError instanceof UpstreamError && 'upstream' in error.extensions;

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
