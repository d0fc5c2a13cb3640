import { performance } from 'node:perf_hooks';
import { pino, type DestinationStream, type Logger } from 'pino';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

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

/**
 * A gauge read when /metrics is scraped, registered by the part of the gateway it describes: `read`
 * gives its value, or with `label` its value per label value.
 */
export function scrapedGauge(registry: Registry, name: string, help: string, read: () => number): void;
export function scrapedGauge(registry: Registry, name: string, help: string, read: () => Record<string, number>, label: string): void;
export function scrapedGauge(
  registry: Registry,
  name: string,
  help: string,
  read: () => number | Record<string, number>,
  label?: string,
): void {
  new Gauge({
    name,
    help,
    labelNames: label === undefined ? [] : [label],
    registers: [registry],
    collect() {
      const value = read();
      if (typeof value === 'number') this.set(value);
      else for (const [name, count] of Object.entries(value)) this.set({ [label as string]: name }, count);
    },
  });
}

/** Prometheus metrics on a registry of the gateway's own (several gateways may share a process). */
export function createMetrics(names: OperationNameOptions = DEFAULT_OPERATION_NAMES): Metrics {
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
  // The event loop's busy and idle time since the process started (performance.eventLoopUtilization),
  // so that active ÷ (active + idle) over any interval is its utilisation then, per worker. A loop that
  // is busy but gets no core (a shared machine) counts as busy: compare with the process's CPU.
  let reported = { active: 0, idle: 0 };
  new Counter({
    name: 'hsgql_event_loop_seconds_total',
    help: 'Time this process\'s event loop spent running callbacks (state="active") and waiting for events (state="idle")',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const { active, idle } = performance.eventLoopUtilization();
      this.inc({ state: 'active' }, (active - reported.active) / 1000);
      this.inc({ state: 'idle' }, (idle - reported.idle) / 1000);
      reported = { active, idle };
    },
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
