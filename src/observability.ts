import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import { getOperationAST, type GraphQLError } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { pino, type Logger } from 'pino';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { GatewayContext } from './schema/builder.ts';

/** What the upstream layer reports to metrics (labels are routes and statuses, never keys). */
export interface UpstreamObserver {
  request(route: string, status: string, seconds: number): void;
  retry(route: string): void;
  shared(how: 'cached' | 'coalesced'): void;
  budgetRefused(stage: 'before' | 'during'): void;
}

export interface Metrics {
  registry: Registry;
  upstream: UpstreamObserver;
  operation(name: string, outcome: 'ok' | 'partial' | 'error', seconds: number): void;
}

const MAX_OPERATION_NAMES = 200;

/** Prometheus metrics on a registry of the gateway's own (several gateways may share a process). */
export function createMetrics(circuit: () => 'closed' | 'open' | 'half-open'): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const operations = new Counter({
    name: 'hsgql_operations_total',
    help: 'GraphQL operations by name and outcome',
    labelNames: ['operation', 'outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'hsgql_operation_duration_seconds',
    help: 'GraphQL operation latency',
    labelNames: ['operation'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const upstream = new Counter({
    name: 'hsgql_upstream_requests_total',
    help: 'Upstream requests by route and status',
    labelNames: ['route', 'status'],
    registers: [registry],
  });
  const upstreamDuration = new Histogram({
    name: 'hsgql_upstream_request_duration_seconds',
    help: 'Upstream request latency by route',
    labelNames: ['route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const retries = new Counter({
    name: 'hsgql_upstream_retries_total',
    help: 'Upstream requests retried, by route',
    labelNames: ['route'],
    registers: [registry],
  });
  const shared = new Counter({
    name: 'hsgql_upstream_shared_reads_total',
    help: 'Upstream GETs answered without a request: cached or coalesced',
    labelNames: ['how'],
    registers: [registry],
  });
  const budget = new Counter({
    name: 'hsgql_budget_refusals_total',
    help: 'Operations or fields refused for the upstream budget',
    labelNames: ['stage'],
    registers: [registry],
  });
  new Gauge({
    name: 'hsgql_upstream_circuit_open',
    help: 'The shared upstream circuit: 0 closed, 1 open, 0.5 half-open',
    registers: [registry],
    collect() {
      const state = circuit();
      this.set(state === 'open' ? 1 : state === 'half-open' ? 0.5 : 0);
    },
  });
  const names = new Set<string>();
  const label = (name: string): string => {
    const clean = name.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 64) || 'anonymous';
    if (names.has(clean)) return clean;
    if (names.size >= MAX_OPERATION_NAMES) return 'other';
    names.add(clean);
    return clean;
  };
  return {
    registry,
    upstream: {
      request: (route, status, seconds) => {
        upstream.inc({ route, status });
        upstreamDuration.observe({ route }, seconds);
      },
      retry: (route) => retries.inc({ route }),
      shared: (how) => shared.inc({ how }),
      budgetRefused: (stage) => budget.inc({ stage }),
    },
    operation: (name, outcome, seconds) => {
      const operation = label(name);
      operations.inc({ operation, outcome });
      duration.observe({ operation }, seconds);
    },
  };
}

/** Structured JSON logs. Keys never reach them; the redaction is a second line of defence. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'hyperstudy-graphql' },
    redact: {
      paths: [
        'key',
        'apiKey',
        '*.key',
        '*.apiKey',
        'headers["x-api-key"]',
        'headers.authorization',
        '*.headers["x-api-key"]',
        '*.headers.authorization',
      ],
      censor: '[redacted]',
    },
  });
}

/** Logs one line, counts and traces each operation: name, outcome, duration, request id, upstream cost. */
export function useOperationReport(metrics: Metrics, logger: Logger, tracer: Tracer): Plugin<GatewayContext> {
  return {
    onExecute({ args }) {
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
      args.contextValue.session.trace = trace.setSpan(ROOT_CONTEXT, span);
      const report = (errors: readonly GraphQLError[], hasData: boolean): void => {
        const seconds = (performance.now() - started) / 1000;
        const outcome = errors.length === 0 ? 'ok' : hasData ? 'partial' : 'error';
        metrics.operation(name, outcome, seconds);
        const { session } = args.contextValue;
        const cost = session.cost;
        span.setAttributes({
          'hyperstudy.upstream.requests': cost.requests,
          'hyperstudy.upstream.cache_hits': cost.cacheHits,
          'hyperstudy.outcome': outcome,
        });
        if (outcome !== 'ok')
          span.setStatus({ code: SpanStatusCode.ERROR, message: errors.map((e) => String(e.extensions?.code ?? 'ERROR')).join(',') });
        span.end();
        logger.info(
          {
            requestId: session.requestId,
            operation: name,
            outcome,
            durationMs: Math.round(seconds * 1000),
            upstream: cost,
            errors: errors.map((e) => ({ code: e.extensions?.code ?? 'INTERNAL_SERVER_ERROR', path: e.path?.join('.') })),
          },
          'operation',
        );
      };
      return {
        onExecuteDone({ result }) {
          if (!isAsyncIterable(result)) return report(result.errors ?? [], Boolean(result.data));
          // An incremental response (@defer, @stream) is reported once, when its last payload is out.
          const errors: GraphQLError[] = [];
          let hasData = false;
          return {
            onNext({ result: next }) {
              if (next.data) hasData = true;
              errors.push(...(next.errors ?? []));
              if ('incremental' in next) for (const part of next.incremental ?? []) errors.push(...(part.errors ?? []));
            },
            onEnd: () => report(errors, hasData),
          };
        },
      };
    },
  };
}
