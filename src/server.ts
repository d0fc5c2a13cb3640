import type { Server } from 'node:http';
import type { Tracer } from '@opentelemetry/api';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { GatewayConfig } from './config.ts';
import { createContext, jobContext } from './context.ts';
import { ExportService } from './exports/jobs.ts';
import { RedisJobTable } from './exports/table.ts';
import { Readiness } from './http/readiness.ts';
import { serveHttp } from './http/server.ts';
import { createLive } from './live/index.ts';
import type { LiveHub } from './live/hub.ts';
import { createLogger, createMetrics, DEFAULT_OPERATION_NAMES, yogaLogging, type Metrics } from './observability.ts';
import { gatewayPlugins } from './plugins/index.ts';
import { loadTrustedDocuments, operationNamesOf } from './plugins/use-trusted-documents.ts';
import { maskError } from './plugins/use-upstream-result.ts';
import type { GatewayContext } from './schema/builder.ts';
import { schema } from './schema/index.ts';
import type { SharedReads } from './state/shared-reads.ts';
import type { SharedState } from './state/state.ts';
import { createTracing } from './tracing.ts';
import type { UpstreamClient } from './upstream/client.ts';
import type { UpstreamSession } from './upstream/session.ts';
import { createUpstream } from './upstream/index.ts';
import { routes } from './upstream/routes.ts';

export interface GatewayDeps {
  /** Replaces the upstream keep-alive pool (tests). */
  dispatcher?: Dispatcher;
  /** Replaces the JSON logger on stdout (tests capture it). */
  logger?: Logger;
  /** Replaces the configured tracer (tests record spans in memory). */
  tracer?: Tracer;
  /**
   * Set in a worker of WORKERS > 1 (src/cluster.ts): its id labels its metrics and answers in
   * `X-Worker`, and `/metrics` serves what `metrics()` gathers from every worker.
   */
  worker?: { id: string; metrics(): Promise<string> };
}

export interface Gateway {
  yoga: YogaServerInstance<Record<string, unknown>, GatewayContext>;
  server: Server;
  upstream: UpstreamClient;
  /** The shared reads (cache and coalescing) of every operation. */
  shared: SharedReads;
  /** The live pollers of subscriptions. */
  live: LiveHub;
  /** Each key's quota, scope mirror and cache: this process's, or shared through Redis. */
  state: SharedState;
  /** Export jobs: paced, checkpointed pulls of tables. */
  exports: ExportService;
  readiness: Readiness;
  metrics: Metrics;
  logger: Logger;
  /** Listens on the configured port (0 picks a free one) and returns the base URL. */
  listen(port?: number, host?: string): Promise<string>;
  /**
   * Stops accepting, lets in-flight operations finish for up to `graceMs` (SHUTDOWN_GRACE_MS), then
   * closes the remaining connections and the upstream pool.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Builds the gateway from its parts, each of which builds its own piece of every operation's context and
 * registers its own metrics: the upstream (client, shared state, sessions), live data, the Yoga app with
 * its plugins (src/plugins/index.ts), and the HTTP server of the concerns in src/http/.
 */
export function createGateway(config: GatewayConfig, deps: GatewayDeps = {}): Gateway {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const tracing = deps.tracer
    ? { tracer: deps.tracer, shutdown: async () => undefined }
    : createTracing(config.tracing.endpoint, config.tracing.serviceName);
  const trusted = config.trustedDocuments === null ? null : loadTrustedDocuments(config.trustedDocuments);
  const metrics = createMetrics({ ...DEFAULT_OPERATION_NAMES, pinned: trusted ? operationNamesOf(trusted) : [] });
  if (deps.worker) metrics.registry.setDefaultLabels({ worker: deps.worker.id });
  const upstream = createUpstream(config, { metrics, logger, tracer: tracing.tracer, dispatcher: deps.dispatcher });
  const live = createLive(config, upstream.state, metrics);
  const readiness = new Readiness({
    probe: (signal) => upstream.client.probe(routes.health(), signal),
    readyCacheMs: config.readyCacheMs,
    timeoutMs: config.upstream.timeoutMs,
  });
  // The jobs' context is made by a function the service is handed once it exists (they refer to each other).
  let contextFor: ((session: UpstreamSession, signal: AbortSignal) => GatewayContext) | null = null;
  // With REDIS_URL the jobs' table is shared by every replica (one runs each job, under a lease).
  const exportRedis = upstream.state.exportRedis();
  const exports = new ExportService(config.exports, {
    schema,
    contextFor: (session, signal) => (contextFor as NonNullable<typeof contextFor>)(session, signal),
    quota: upstream.state.quota,
    limits: () => upstream.state.status().limits ?? config.quotaLimits,
    ahead: config.pageConcurrency,
    rowGroupRows: config.tables.rowGroupRows,
    maxAnswerRecords: config.tables.maxAnswerRecords,
    documentLimits: config.limits,
    logger,
    registry: metrics.registry,
    table: exportRedis && new RedisJobTable(exportRedis, { leaseMs: config.exports.leaseMs, ttlMs: config.exports.ttlMs }),
  });
  contextFor = jobContext(config, live, exports);
  const yoga = createYoga<Record<string, unknown>, GatewayContext>({
    schema,
    graphqlEndpoint: '/graphql',
    healthCheckEndpoint: '/health',
    landingPage: false,
    // GraphiQL is served compressed and cacheable by useGraphiqlPage.
    graphiql: false,
    maskedErrors: { maskError },
    // Bodies are bounded before Yoga (withBodyLimit, MAX_BODY_BYTES); Yoga's own bound would pipe every body through a stream again.
    maxRequestBodySize: false,
    logging: yogaLogging(logger),
    batching: config.limits.batching > 0 ? { limit: config.limits.batching } : false,
    cors: false,
    context: createContext(config, upstream, live, exports),
    plugins: gatewayPlugins(config, {
      metrics,
      logger,
      tracer: tracing.tracer,
      readiness,
      trusted,
      exports,
      renderMetrics: deps.worker?.metrics,
    }),
  });
  const http = serveHttp(yoga, config, { logger, metrics, trusted, workerId: deps.worker?.id });
  return {
    yoga,
    server: http.server,
    upstream: upstream.client,
    shared: upstream.shared,
    live: live.hub,
    state: upstream.state,
    exports,
    readiness,
    metrics,
    logger,
    listen: (port = config.port, host = config.host) => http.listen(port, host),
    close: async (graceMs = config.shutdownGraceMs) => {
      // Queries and mutations in flight over HTTP and WebSocket answer within the grace; live data ends;
      // export jobs stop PAUSED (resumed by their key, here or after a restart).
      await live.hub.close();
      await exports.close();
      const drained = await http.close(graceMs);
      await upstream.close(!drained);
      await tracing.shutdown();
    },
  };
}
