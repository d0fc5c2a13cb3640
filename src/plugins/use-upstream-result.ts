import { GraphQLError } from 'graphql';
import { handleStreamOrSingleExecutionResult, maskError as defaultMaskError, type Plugin } from 'graphql-yoga';
import { ERRORS, type ErrorCode } from '../errors.ts';
import type { GatewayContext } from '../schema/builder.ts';
import { isMappedUpstreamError, toGraphQLError } from '../schema/errors.ts';
import { UpstreamError } from '../upstream/errors.ts';

/**
 * A refused key answers HTTP 401 like a missing one: the operation could read nothing. (Other codes
 * keep 200 with partial data, as GraphQL over HTTP has it.)
 */
function unauthenticated401(error: GraphQLError): GraphQLError {
  if (error.extensions.code !== ('UNAUTHENTICATED' satisfies ErrorCode) || error.extensions.http) return error;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: { ...error.extensions, http: { status: ERRORS.UNAUTHENTICATED.status } },
  });
}

/**
 * An execution error without a path and without a code is about the request itself — a variable that
 * does not coerce ("yesterday" as a DateTime, a missing required variable): the caller's mistake.
 */
function requestErrorCode(error: GraphQLError): GraphQLError {
  if (error.path !== undefined || error.extensions.code !== undefined) return error;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    originalError: error.originalError,
    extensions: { ...error.extensions, code: 'BAD_USER_INPUT' satisfies ErrorCode },
  });
}

const mapUpstream = (error: GraphQLError): GraphQLError =>
  error.originalError instanceof UpstreamError && !isMappedUpstreamError(error) ? toGraphQLError(error.originalError, error) : error;

export const mapErrors = (errors: readonly GraphQLError[]): GraphQLError[] =>
  errors.map(mapUpstream).map(unauthenticated401).map(requestErrorCode);

/**
 * Once an operation's execution is done: maps upstream errors to their codes (expected outcomes, not
 * faults to log) and reports what it cost upstream in `extensions.upstream` (with the upstream's
 * warnings about listings it read), and, when asked with `X-Explain-Plan: 1`, the planner's decisions in
 * `extensions.plan`; then cancels what it still has going upstream. An incremental response (`@defer`,
 * `@stream`) has its errors mapped in every payload and the cost on its final payload, when everything
 * it cost is known (and only then is it cancelled). Register it before the plugins that report on results.
 */
export function useUpstreamResult(): Plugin<GatewayContext> {
  return {
    onExecute({ args }) {
      const ctx = args.contextValue;
      const report = () => {
        const warnings = [...ctx.warnings];
        return {
          upstream: { ...ctx.session.cost, ...(warnings.length > 0 ? { warnings } : {}) },
          ...(ctx.explain ? { plan: ctx.loaders.planner.explain() } : {}),
        };
      };
      return {
        onExecuteDone(payload) {
          return handleStreamOrSingleExecutionResult(payload, ({ result, setResult }) => {
            const incremental = 'incremental' in result ? result.incremental : undefined;
            const final = !('hasNext' in result) || !result.hasNext;
            // Over: what it still has going upstream is cancelled, and its cost is final (the report reads the same).
            if (final) ctx.session.end();
            setResult({
              ...result,
              ...(result.errors ? { errors: mapErrors(result.errors) } : {}),
              ...(incremental ? { incremental: incremental.map((r) => (r.errors ? { ...r, errors: mapErrors(r.errors) } : r)) } : {}),
              ...(final ? { extensions: { ...result.extensions, ...report() } } : {}),
            });
          });
        },
      };
    },
  };
}

/** Upstream errors keep their code, message and details; anything unexpected is masked. */
export function maskError(error: unknown, message: string, isDev?: boolean): Error {
  if (isMappedUpstreamError(error)) return error as GraphQLError;
  const original = error instanceof GraphQLError ? error.originalError : error;
  if (original instanceof UpstreamError) return toGraphQLError(original, error instanceof GraphQLError ? error : undefined);
  return defaultMaskError(error, message, isDev);
}
