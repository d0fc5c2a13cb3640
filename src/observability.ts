import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import { getOperationAST, GraphQLError } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { pino, type DestinationStream, type Logger } from 'pino';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { GatewayContext } from './schema/builder.ts';
import { UpstreamError } from './upstream/errors.ts';

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
  /** A subscription that ended, with the payloads it delivered. */
  subscription(name: string, outcome: 'ok' | 'partial' | 'error', payloads: number): void;
  /** An operation compiled by graphql-jit (or refused by it: the usual executor runs it). */
  compiled(ok: boolean, seconds: number): void;
}

/** What the metrics read from the gateway's long-lived parts when scraped. */
export interface MetricSources {
  /** The shared upstream circuit. */
  circuit(): 'closed' | 'open' | 'half-open';
  /** Keys whose own circuit is open. */
  openKeyCircuits?(): number;
  /** The shared response cache. */
  cache?(): { bytes: number; entries: number };
  /** Keys whose state is held, by kind. */
  keys?(): Record<string, number>;
  /** Upstream requests in flight and waiting in the fair queue. */
  queue?(): { active: number; waiting: number };
  /** Live pollers of subscriptions, those of them following another process's stream, and their subscribers. */
  live?(): { pollers: number; following: number; subscribers: number };
  /** Open GraphQL-over-WebSocket connections, and the distinct keys holding them. */
  websockets?(): { connections: number; keys: number };
}

export interface OperationNameOptions {
  /** Operation names counted under their own label at most (besides the pinned ones). */
  max: number;
  /** How long a name must have gone unseen before a new name may take its label, in ms. */
  idleMs: number;
  /** Names always counted (the trusted documents' operations). */
  pinned: Iterable<string>;
  now?: () => number;
}

export const DEFAULT_OPERATION_NAMES: OperationNameOptions = { max: 200, idleMs: 600_000, pinned: [] };

export const cleanOperationName = (name: string): string => name.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 64) || 'anonymous';

/**
 * Bounded labels for operation names: pinned names always count as themselves; up to `max` others
 * hold a label while in use, the least recently seen giving it up to a new name once idle for
 * `idleMs` (its series are removed, `onDrop`). Until a label frees up, a new name counts as `other`.
 */
export class OperationNames {
  readonly #pinned: Set<string>;
  /** Names holding a label, least recently seen first, with when they were last seen. */
  readonly #held = new Map<string, number>();
  readonly #now: () => number;

  constructor(
    private readonly options: OperationNameOptions,
    private readonly onDrop: (name: string) => void = () => undefined,
  ) {
    this.#pinned = new Set([...options.pinned].map(cleanOperationName));
    this.#now = options.now ?? Date.now;
  }

  label(name: string): string {
    const clean = cleanOperationName(name);
    if (this.#pinned.has(clean)) return clean;
    const now = this.#now();
    if (this.#held.has(clean)) {
      this.#held.delete(clean);
      this.#held.set(clean, now);
      return clean;
    }
    if (this.#held.size >= this.options.max) {
      const oldest = this.#held.entries().next();
      if (oldest.done || now - oldest.value[1] < this.options.idleMs) return 'other';
      this.#held.delete(oldest.value[0]);
      this.onDrop(oldest.value[0]);
    }
    this.#held.set(clean, now);
    return clean;
  }
}

const OUTCOMES = ['ok', 'partial', 'error'] as const;

/** Prometheus metrics on a registry of the gateway's own (several gateways may share a process). */
export function createMetrics(sources: MetricSources, names: OperationNameOptions = DEFAULT_OPERATION_NAMES): Metrics {
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
      const state = sources.circuit();
      this.set(state === 'open' ? 1 : state === 'half-open' ? 0.5 : 0);
    },
  });
  new Gauge({
    name: 'hsgql_upstream_key_circuits_open',
    help: 'Keys whose own upstream circuit is open (their requests keep failing)',
    registers: [registry],
    collect() {
      this.set(sources.openKeyCircuits?.() ?? 0);
    },
  });
  new Gauge({
    name: 'hsgql_cache_bytes',
    help: 'Bytes held by the shared response cache (sizes of the upstream bodies)',
    registers: [registry],
    collect() {
      this.set(sources.cache?.().bytes ?? 0);
    },
  });
  new Gauge({
    name: 'hsgql_cache_entries',
    help: 'Answers held by the shared response cache',
    registers: [registry],
    collect() {
      this.set(sources.cache?.().entries ?? 0);
    },
  });
  new Gauge({
    name: 'hsgql_key_state_entries',
    help: 'Keys whose state the gateway holds, by kind',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      for (const [kind, count] of Object.entries(sources.keys?.() ?? {})) this.set({ kind }, count);
    },
  });
  new Gauge({
    name: 'hsgql_live_pollers',
    help: 'Live pollers (one per key and feed), those following another process that polls (with Redis), and the subscriptions they serve',
    labelNames: ['what'],
    registers: [registry],
    collect() {
      const live = sources.live?.() ?? { pollers: 0, following: 0, subscribers: 0 };
      this.set({ what: 'pollers' }, live.pollers);
      this.set({ what: 'following' }, live.following);
      this.set({ what: 'subscribers' }, live.subscribers);
    },
  });
  new Gauge({
    name: 'hsgql_websocket_connections',
    help: 'Open GraphQL-over-WebSocket connections (initialised or not), and the distinct keys holding them',
    labelNames: ['what'],
    registers: [registry],
    collect() {
      const sockets = sources.websockets?.() ?? { connections: 0, keys: 0 };
      this.set({ what: 'connections' }, sockets.connections);
      this.set({ what: 'keys' }, sockets.keys);
    },
  });
  new Gauge({
    name: 'hsgql_upstream_queue',
    help: 'Upstream requests in flight and waiting for their turn',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const queue = sources.queue?.() ?? { active: 0, waiting: 0 };
      this.set({ state: 'active' }, queue.active);
      this.set({ state: 'waiting' }, queue.waiting);
    },
  });
  const compilations = new Counter({
    name: 'hsgql_jit_compilations_total',
    help: 'Operations compiled by graphql-jit (once per document held in the document cache), by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const compileSeconds = new Counter({
    name: 'hsgql_jit_compile_seconds_total',
    help: 'Time spent compiling operations with graphql-jit',
    registers: [registry],
  });
  const subscriptions = new Counter({
    name: 'hsgql_subscriptions_total',
    help: 'GraphQL subscriptions that ended, by name and outcome',
    labelNames: ['operation', 'outcome'],
    registers: [registry],
  });
  const payloads = new Counter({
    name: 'hsgql_subscription_payloads_total',
    help: 'Payloads delivered by subscriptions that ended, by name',
    labelNames: ['operation'],
    registers: [registry],
  });
  const labels = new OperationNames(names, (dropped) => {
    for (const outcome of OUTCOMES) {
      operations.remove({ operation: dropped, outcome });
      subscriptions.remove({ operation: dropped, outcome });
    }
    payloads.remove({ operation: dropped });
    duration.remove({ operation: dropped });
  });
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
    compiled: (ok, seconds) => {
      compilations.inc({ outcome: ok ? 'compiled' : 'refused' });
      compileSeconds.inc(seconds);
    },
    operation: (name, outcome, seconds) => {
      const operation = labels.label(name);
      operations.inc({ operation, outcome });
      duration.observe({ operation }, seconds);
    },
    subscription: (name, outcome, count) => {
      const operation = labels.label(name);
      subscriptions.inc({ operation, outcome });
      payloads.inc({ operation }, count);
    },
  };
}

/**
 * Structured JSON logs. Keys never reach them; the redaction is a second line of defence. By default
 * on stdout, written asynchronously: a line is handed to the stream at once and the writes happen off
 * the request path (lines that pile up while one is written go out together); what is still buffered
 * is flushed when the process exits.
 */
export function createLogger(level: string, destination: DestinationStream = pino.destination({ dest: 1, sync: false })): Logger {
  return pino(
    {
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
    },
    destination,
  );
}

/** Yoga's own log lines, as structured lines of the gateway's logger. */
export function yogaLogging(logger: Logger) {
  return {
    debug: (...args: unknown[]) => logger.debug({ detail: args.map(String) }, 'yoga'),
    info: (...args: unknown[]) => logger.info({ detail: args.map(String) }, 'yoga'),
    warn: (...args: unknown[]) => logger.warn({ detail: args.map(String) }, 'yoga'),
    error: (...args: unknown[]) =>
      logger.error(
        { err: args.find((a) => a instanceof Error), detail: args.filter((a) => !(a instanceof Error)).map(String) },
        'unexpected error',
      ),
  };
}

/** The code an error is reported with: its own, an upstream error's, or INTERNAL_SERVER_ERROR (masked). */
export function errorCode(error: GraphQLError): string {
  const code = error.extensions?.code;
  if (typeof code === 'string') return code;
  return error.originalError instanceof UpstreamError ? error.originalError.code : 'INTERNAL_SERVER_ERROR';
}

/**
 * The codes that mark an operation's span as an error: faults of the gateway or the upstream. The
 * others (no key, no access, not found, bad input, rate limits, budgets, limits) are expected answers
 * to the caller's request, as 4xx statuses are for an HTTP server span.
 */
export const SPAN_ERROR_CODES: ReadonlySet<string> = new Set(['INTERNAL_SERVER_ERROR', 'UPSTREAM_ERROR', 'UPSTREAM_TIMEOUT']);

export interface ReportOptions {
  /** The share of successful operations (outcome ok) that get a log line, 0 to 1; the others always do (LOG_SAMPLE_RATE). */
  sampleRate?: number;
  /** Draws the sampling decision (tests). */
  random?: () => number;
}

/**
 * Logs one line, counts and traces each operation: name, outcome, duration, request id, upstream cost,
 * and each error's code. Registered after the plugin that maps upstream errors, it sees their codes.
 * Every operation is counted and traced; successful ones are logged at `sampleRate`, operations with
 * errors always.
 */
/** The execution arguments the report reads (the same for queries, mutations and subscriptions). */
type ExecuteArgs = Parameters<NonNullable<Plugin<GatewayContext>['onExecute']>>[0]['args'];

/** One payload of a stream of results: a subscription's event, or a part of an incremental response. */
interface StreamPayload {
  data?: unknown;
  errors?: readonly GraphQLError[];
  incremental?: readonly { errors?: readonly GraphQLError[] }[];
}

export function useOperationReport(metrics: Metrics, logger: Logger, tracer: Tracer, options: ReportOptions = {}): Plugin<GatewayContext> {
  const { sampleRate = 1, random = Math.random } = options;
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
      if (outcome === 'ok' && (sampleRate <= 0 || (sampleRate < 1 && random() >= sampleRate))) return;
      lines.info(
        {
          requestId: session.requestId,
          operation: name,
          outcome,
          durationMs: Math.round(seconds * 1000),
          ...(payloads === undefined ? {} : { payloads }),
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
