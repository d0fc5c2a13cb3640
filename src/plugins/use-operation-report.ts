import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import { getOperationAST, GraphQLError } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import { ERROR_CODES, ERRORS, type ErrorEntry } from '../errors.ts';
import type { Metrics } from '../observability.ts';
import type { GatewayContext } from '../schema/builder.ts';
import { UpstreamError } from '../upstream/errors.ts';
import { tableOf } from './use-tables.ts';

/** A table's format, rows and bytes on its operation's line, and why it ended early when it did. */
function tableFields(ctx: object): Record<string, unknown> {
  const table = tableOf(ctx);
  if (!table) return {};
  return { table: { format: table.format, rows: table.rows, bytes: table.bytes, ...(table.failure ? { aborted: table.failure } : {}) } };
}

/** The code an error is reported with: its own, an upstream error's, or INTERNAL_SERVER_ERROR (masked). */
export function errorCode(error: GraphQLError): string {
  const code = error.extensions?.code;
  if (typeof code === 'string') return code;
  return error.originalError instanceof UpstreamError ? error.originalError.code : 'INTERNAL_SERVER_ERROR';
}

/**
 * The codes that mark an operation's span as an error: faults of the gateway or the upstream (the
 * catalogue's `fault`). The others (no key, no access, not found, bad input, rate limits, budgets,
 * limits) are expected answers to the caller's request, as 4xx statuses are for an HTTP server span.
 */
export const SPAN_ERROR_CODES: ReadonlySet<string> = new Set(ERROR_CODES.filter((code) => (ERRORS[code] as ErrorEntry).fault));

export interface ReportOptions {
  /** The share of successful operations (outcome ok) that get a log line, 0 to 1; the others always do (LOG_SAMPLE_RATE). */
  logSampleRate: number;
  /** Draws the sampling decision (tests). */
  random?: () => number;
}

/** The execution arguments the report reads (the same for queries, mutations and subscriptions). */
type ExecuteArgs = Parameters<NonNullable<Plugin<GatewayContext>['onExecute']>>[0]['args'];

/** One payload of a stream of results: a subscription's event, or a part of an incremental response. */
interface StreamPayload {
  data?: unknown;
  errors?: readonly GraphQLError[];
  incremental?: readonly { errors?: readonly GraphQLError[] }[];
}

/**
 * Logs one line, counts and traces each operation: name, outcome, duration, request id, upstream cost,
 * and each error's code. Registered after the plugin that maps upstream errors, it sees their codes.
 * Every operation is counted and traced; successful ones are logged at `logSampleRate`, operations with
 * errors always.
 */
export function useOperationReport(metrics: Metrics, logger: Logger, tracer: Tracer, options: ReportOptions): Plugin<GatewayContext> {
  const { logSampleRate, random = Math.random } = options;
  // The line's fields are these, by name: key-shaped ones cannot occur, so it skips the redaction scan.
  const lines = logger.child({}, { redact: { paths: [] } });
  /** Starts an operation's span and clock; the returned function reports it once, when it is over. */
  const begin = (args: ExecuteArgs, kind: 'operation' | 'subscription') => {
    const started = performance.now();
    const operation = getOperationAST(args.document, args.operationName ?? undefined);
    const name = args.operationName ?? operation?.name?.value ?? 'anonymous';
    const span = tracer.startSpan(`graphql ${name}`, {
      kind: SpanKind.SERVER,
      attributes: {
        'graphql.operation.name': name,
        'graphql.operation.type': operation?.operation ?? 'query',
        'hyperstudy.request_id': args.contextValue.session.requestId,
      },
    });
    // The operation's own session: a subscription's payloads each get a fresh one (ctx.live.renew()).
    const { session } = args.contextValue;
    session.trace = trace.setSpan(ROOT_CONTEXT, span);
    return (errors: readonly GraphQLError[], hasData: boolean, payloads?: number): void => {
      const seconds = (performance.now() - started) / 1000;
      const coded = errors.map((e) => ({ code: errorCode(e), path: e.path?.join('.') }));
      const outcome = coded.length === 0 ? 'ok' : hasData ? 'partial' : 'error';
      if (kind === 'subscription') metrics.subscription(name, outcome, payloads ?? 0);
      else metrics.operation(name, outcome, seconds);
      const cost = session.cost;
      span.setAttributes({
        'hyperstudy.upstream.requests': cost.requests,
        'hyperstudy.upstream.cache_hits': cost.cacheHits,
        'hyperstudy.outcome': outcome,
      });
      if (payloads !== undefined) span.setAttribute('hyperstudy.payloads', payloads);
      if (coded.length > 0) span.setAttribute('hyperstudy.error_codes', [...new Set(coded.map((e) => e.code))].sort());
      const faults = coded.filter((e) => SPAN_ERROR_CODES.has(e.code));
      if (faults.length > 0)
        span.setStatus({ code: SpanStatusCode.ERROR, message: [...new Set(faults.map((e) => e.code))].sort().join(',') });
      span.end();
      if (outcome === 'ok' && (logSampleRate <= 0 || (logSampleRate < 1 && random() >= logSampleRate))) return;
      lines.info(
        {
          requestId: session.requestId,
          operation: name,
          outcome,
          durationMs: Math.round(seconds * 1000),
          ...(payloads === undefined ? {} : { payloads }),
          ...tableFields(args.contextValue),
          upstream: cost,
          errors: coded,
        },
        kind,
      );
    };
  };
  /** Follows a stream of results (incremental delivery, a subscription) and reports once, at its end. */
  const follow = (report: (errors: readonly GraphQLError[], hasData: boolean, payloads?: number) => void, counted: boolean) => {
    const errors: GraphQLError[] = [];
    let hasData = false;
    let payloads = 0;
    let reported = false;
    const end = (): void => {
      if (reported) return;
      reported = true;
      report(errors, hasData, counted ? payloads : undefined);
    };
    return {
      onNext({ result: next }: { result: StreamPayload }) {
        payloads++;
        if (next.data) hasData = true;
        errors.push(...(next.errors ?? []));
        for (const part of next.incremental ?? []) errors.push(...(part.errors ?? []));
      },
      /** The stream failed: it is over (its iterator may not be told to end). */
      fail(error: unknown) {
        errors.push(error instanceof GraphQLError ? error : new GraphQLError(error instanceof Error ? error.message : String(error)));
        end();
      },
      onEnd: end,
    };
  };
  return {
    onExecute({ args }) {
      const report = begin(args, 'operation');
      return {
        onExecuteDone({ result }) {
          if (!isAsyncIterable(result)) return report(result.errors ?? [], Boolean(result.data));
          // An incremental response (@defer, @stream) is reported once, when its last payload is out.
          const { onNext, onEnd } = follow(report, false);
          return { onNext, onEnd };
        },
      };
    },
    // A subscription is reported once, when it ends (by the caller, the gateway or an error), with the
    // payloads it delivered; one refused at once is reported at once.
    onSubscribe({ args }) {
      const report = begin(args, 'subscription');
      const stream = follow(report, true);
      return {
        onSubscribeResult({ result }) {
          if (!isAsyncIterable(result)) return report(result.errors ?? [], false, 0);
          return { onNext: stream.onNext, onEnd: stream.onEnd };
        },
        onSubscribeError({ error }) {
          stream.fail(error);
        },
      };
    },
  };
}
