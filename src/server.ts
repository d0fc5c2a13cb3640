import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useDeferStream } from '@graphql-yoga/plugin-defer-stream';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import type { Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { useAliasLimits } from './plugins/use-alias-limits.ts';
import { useListLimits } from './plugins/use-list-limits.ts';
import type { GatewayConfig } from './config.ts';
import { withBodyLimit } from './http/body-limit.ts';
import { useContentTypeHints } from './http/content-type.ts';
import { useCors } from './http/cors.ts';
import { useJit } from './plugins/use-jit.ts';
import { createDrain } from './http/drain.ts';
import { useGraphiqlPage } from './http/graphiql.ts';
import { useMetricsEndpoint } from './http/metrics-endpoint.ts';
import { Readiness, useReadiness } from './http/readiness.ts';
import { requestIdOf, withRequestId } from './http/request-id.ts';
import { useWebSockets, type WebSockets } from './http/websocket.ts';
import { LocalFleet, RedisFleet } from './live/fleet.ts';
import { LiveHub } from './live/hub.ts';
import { withWorkerId } from './http/worker-id.ts';
import { createLoaders } from './loaders/index.ts';
import { createLogger, createMetrics, DEFAULT_OPERATION_NAMES, yogaLogging, type Metrics } from './observability.ts';
import { useLimitErrors, limitError } from './plugins/use-limit-errors.ts';
import { useLiveStatus } from './plugins/use-live-status.ts';
import { useNoIntrospection } from './plugins/use-no-introspection.ts';
import { useOperationReport } from './plugins/use-operation-report.ts';
import { useOrganizationHeader } from './plugins/use-organization-header.ts';
import { useRequireApiKey } from './plugins/use-require-api-key.ts';
import { useTables } from './plugins/use-tables.ts';
import { useUpstreamBudget } from './plugins/use-upstream-budget.ts';
import { maskError, useUpstreamResult } from './plugins/use-upstream-result.ts';
import type { GatewayContext } from './schema/builder.ts';
import { schema } from './schema/index.ts';
import { createTracing } from './tracing.ts';
import { loadTrustedDocuments, operationNamesOf, useTrustedDocuments } from './plugins/use-trusted-documents.ts';
import { UpstreamClient } from './upstream/client.ts';
import { routes } from './upstream/routes.ts';
import { createSharedState, RedisSharedState } from './state/redis.ts';
import { SharedReads } from './state/shared-reads.ts';
import { KeyGate } from './upstream/key-gate.ts';
import { UpstreamSession, type SessionDeps } from './upstream/session.ts';
import { registerStateMetrics } from './state/metrics.ts';
import { shareOf, type SharedState } from './state/state.ts';

export const EXAMPLE_QUERY = `# Send your HyperStudy API key in the X-API-Key header (Headers tab below).
# With \`npm run demo\`, the Headers tab already holds a demo key; the others are in the README.
query Dashboard {
  experiment(id: "exp_movie01") {
    name
    rooms(first: 5) {
      totalCount
      edges {
        node {
          roomId
          status
          participants {
            edges {
              node {
                participantId
                completionCode
                events(first: 3, category: COMPONENT) { totalCount edges { node { eventType onset } } }
                sparseRatings(first: 2) { edges { node { value scale } } }
              }
            }
          }
        }
      }
    }
  }
}
`;

/** The caller's key: `X-API-Key`, or `Authorization: Bearer <key>`. */
export function apiKeyOf(headers: Headers): string | null {
  const direct = headers.get('x-api-key')?.trim();
  if (direct) return direct;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(headers.get('authorization') ?? '');
  return match?.[1] ?? null;
}

/** The caller's `X-Organization-Id`: a plain id, forwarded upstream; anything else is refused. */
export function organizationOf(headers: Headers): { id: string | null; refused: boolean } {
  const value = headers.get('x-organization-id');
  if (value === null) return { id: null, refused: false };
  return /^[A-Za-z0-9_.:-]{1,128}$/.test(value) ? { id: value, refused: false } : { id: null, refused: true };
}

/** Operations one WebSocket connection may run at once (subscriptions included). */
export const WEBSOCKET_MAX_OPERATIONS = 100;

/** The gateway could not listen on its port (in use, or not allowed): one line naming PORT. */
export class ListenError extends Error {
  override name = 'ListenError';
  constructor(port: number, host: string, code: 'EADDRINUSE' | 'EACCES') {
    super(
      code === 'EADDRINUSE'
        ? `Port ${port} on ${host} is in use: stop what listens there, or set PORT to another port (PORT=0 picks a free one)`
        : `Port ${port} on ${host} may not be opened by this user: set PORT to one above 1023`,
    );
  }
}

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
 * Builds the gateway: the long-lived upstream state (client, shared reads, quota, scope mirror), the
 * Yoga app with its plugins, and the HTTP server composed of the HTTP concerns in `src/http/`.
 */
export function createGateway(config: GatewayConfig, deps: GatewayDeps = {}): Gateway {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const trusted = config.trustedDocuments === null ? null : loadTrustedDocuments(config.trustedDocuments);
  const tracing = deps.tracer
    ? { tracer: deps.tracer, shutdown: async () => undefined }
    : createTracing(config.tracing.endpoint, config.tracing.serviceName);
  const late: { upstream?: UpstreamClient; deps?: SessionDeps; live?: LiveHub; sockets?: WebSockets } = {};
  const metrics = createMetrics(
    {
      circuit: () => late.upstream?.circuit ?? 'closed',
      openKeyCircuits: () => late.upstream?.openKeyCircuits ?? 0,
      queue: () => late.upstream?.load ?? { active: 0, waiting: 0 },
      cache: () => ({ bytes: late.deps?.shared.bytes ?? 0, entries: late.deps?.shared.size ?? 0 }),
      keys: () => ({
        quota: late.deps?.quota.size ?? 0,
        scopes: late.deps?.scopes.size ?? 0,
        confirmed: late.deps?.keys.size.confirmed ?? 0,
        refused: late.deps?.keys.size.refused ?? 0,
      }),
      live: () => {
        const pollers = late.live?.pollers() ?? [];
        return {
          pollers: pollers.length,
          following: pollers.filter((p) => p.role === 'follower').length,
          subscribers: pollers.reduce((n, p) => n + p.subscribers, 0),
        };
      },
      websockets: () => late.sockets?.counts() ?? { connections: 0, keys: 0 },
    },
    { ...DEFAULT_OPERATION_NAMES, pinned: trusted ? operationNamesOf(trusted) : [] },
  );
  const upstream = new UpstreamClient({
    baseUrl: config.apiUrl,
    timeoutMs: config.upstreamTimeoutMs,
    connections: config.upstreamConnections,
    keyConcurrency: config.keyConcurrency,
    maxBodyBytes: config.upstreamMaxBodyBytes,
    maxKeys: config.maxKeys,
    dispatcher: deps.dispatcher,
    resilience: config.resilience,
    observer: metrics.upstream,
    onFailureNote: (route, note) => logger.debug({ route, ...note }, 'upstream error answer'),
    tracer: tracing.tracer,
  });
  const cache = { ttlMs: config.cacheTtlMs, maxEntries: config.cacheMaxEntries, maxBytes: config.cacheMaxBytes };
  const state = createSharedState(
    {
      cache,
      quota: config.quota,
      retryAfterMaxMs: config.retryAfterMaxMs,
      scopeTtlMs: config.scopeCacheTtlMs,
      maxKeys: config.maxKeys,
      processes: config.workers * config.replicas,
    },
    config.redis,
    logger,
  );
  registerStateMetrics(metrics.registry, state);
  if (deps.worker) metrics.registry.setDefaultLabels({ worker: deps.worker.id });
  const sessionDeps: SessionDeps = {
    client: upstream,
    shared: new SharedReads({ ...cache, cache: state.cache }),
    scopes: state.scopes,
    quota: state.quota,
    keys: new KeyGate({ maxKeys: config.maxKeys, refusalTtlMs: config.keyRefusalTtlMs }),
    budget: config.budget,
    deadlineMs: config.deadlineMs,
    concurrency: config.operationConcurrency,
    observer: metrics.upstream,
  };
  late.upstream = upstream;
  late.deps = sessionDeps;
  const liveLimits = { perHour: config.live.perHour, perMinutePerEndpoint: config.live.perMinutePerEndpoint };
  const live = new LiveHub(
    {
      quotaShare: config.live.quotaShare,
      limits: () => {
        // Shared through Redis (and up): the fleet's pacing uses the whole limits; else this process's share.
        const { redisUp, processes } = state.status();
        return redisUp === true
          ? liveLimits
          : { perHour: shareOf(liveLimits.perHour, processes), perMinutePerEndpoint: shareOf(liveLimits.perMinutePerEndpoint, processes) };
      },
      minIntervalMs: config.live.minIntervalMs,
      maxBackoffMs: config.live.maxBackoffMs,
      maxPollersPerKey: config.live.maxFeedsPerKey,
      maxSubscriptionsPerKey: config.live.maxSubscriptionsPerKey,
      maxSubscriptions: config.live.maxSubscriptions,
      maxBacklog: config.live.maxBacklog,
    },
    state instanceof RedisSharedState ? new RedisFleet(state.live(), { leaseMs: config.live.leaseMs }) : new LocalFleet(),
  );
  late.live = live;
  const readiness = new Readiness({
    probe: (signal) => upstream.probe(routes.health(), signal),
    cacheMs: config.readyCacheMs,
    timeoutMs: config.upstreamTimeoutMs,
  });

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
    context: ({ request }) => {
      const key = apiKeyOf(request.headers);
      const organization = organizationOf(request.headers);
      const requestId = requestIdOf(request.headers.get('x-request-id'));
      const session = new UpstreamSession(sessionDeps, key, requestId, request.signal, organization.id);
      let payloads = 0;
      const renew = (): { session: UpstreamSession; loaders: ReturnType<typeof createLoaders> } => {
        const fresh = new UpstreamSession(sessionDeps, key, `${requestId}:${++payloads}`, request.signal, organization.id);
        return { session: fresh, loaders: createLoaders(fresh, config.pageConcurrency, config.planner) };
      };
      return {
        authenticated: key !== null,
        organizationRefused: organization.refused,
        session,
        loaders: createLoaders(session, config.pageConcurrency, config.planner),
        defaultPageSize: config.defaultPageSize,
        warnings: new Set<string>(),
        explain: request.headers.get('x-explain-plan') === '1',
        live: { hub: live, lateMs: config.live.lateMs, status: null, signal: request.signal, renew },
      };
    },
    plugins: [
      ...(config.graphiql
        ? [
            useGraphiqlPage({
              endpoint: '/graphql',
              // GraphiQL with its assets inlined: it works without reaching a CDN (firewalls, strict CSP).
              render: () =>
                renderGraphiQL({
                  title: 'HyperStudy GraphQL',
                  defaultQuery: EXAMPLE_QUERY,
                  headers: JSON.stringify({ 'X-API-Key': config.graphiqlExampleKey ?? 'paste your HyperStudy API key here' }, null, 2),
                }),
            }),
          ]
        : []),
      ...(config.corsOrigins === null
        ? []
        : [
            useCors({
              origins: config.corsOrigins,
              allowedHeaders: ['content-type', 'x-api-key', 'authorization', 'x-request-id', 'x-organization-id', 'x-explain-plan'],
              exposedHeaders: ['x-request-id'],
            }),
          ]),
      useMetricsEndpoint({ registry: metrics.registry, render: deps.worker?.metrics }),
      useReadiness({ readiness }),
      useContentTypeHints(),
      ...(trusted ? [useTrustedDocuments(trusted)] : []),
      EnvelopArmorPlugin({
        maxDepth: { n: config.limits.depth },
        // Aliases are counted per root field and at the root apart (plugins/use-alias-limits.ts).
        maxAliases: { enabled: false },
        maxTokens: { n: config.limits.tokens },
        maxDirectives: { n: config.limits.directives },
        // graphql-armor's cost grows 1.5× a level, which no Relay graph fits; the cost limit here is the
        // upstream-request estimate against UPSTREAM_BUDGET (useUpstreamBudget).
        costLimit: { enabled: false },
        // With introspection off, useNoIntrospection takes suggestions out of every error (graphql-armor's
        // covers validation only, and leaves a marker saying that a near name exists).
        blockFieldSuggestion: { enabled: false },
      }),
      useAliasLimits({ perRootField: config.limits.aliases, rootFields: config.limits.rootAliases }),
      useLimitErrors(),
      // @defer and @stream, over multipart HTTP and SSE; deferred parts are planned with the rest (planner.ts).
      useDeferStream(),
      ...(config.jit ? [useJit({ onCompile: (ms, ok) => metrics.compiled(ok, ms / 1000) })] : []),
      useTables({ ...config.tables, ahead: config.pageConcurrency, quotaGuard: config.quota !== null, registry: metrics.registry }),
      ...(config.introspection ? [] : [useNoIntrospection()]),
      // Maps upstream errors before the report sees them; both before the refusals below, so that
      // refused operations are reported too.
      useUpstreamResult(),
      useLiveStatus(),
      useOperationReport(metrics, logger, tracing.tracer, { sampleRate: config.logSampleRate }),
      // Before anything runs or coerces the variables: refused lists cost no upstream request and no CPU.
      useListLimits({ items: config.limits.listItems, lookups: config.limits.lookups }),
      useRequireApiKey(),
      useOrganizationHeader(),
      useUpstreamBudget(config.budget, () => metrics.upstream.budgetRefused('before')),
    ],
  });

  const drain = createDrain();
  const handler = withBodyLimit(
    {
      maxBytes: config.limits.bodyBytes,
      replay: (url, init) => yoga.fetch(url, init),
      onError: (error, req) => logger.error({ err: error, requestId: req.headers['x-request-id'] }, 'unexpected error'),
    },
    (req, res) => void yoga(req, res),
  );
  const server = createServer(drain.track(withRequestId(deps.worker ? withWorkerId(deps.worker.id, handler) : handler)));
  const sockets = useWebSockets(server, yoga, {
    trusted,
    maxPayload: config.limits.bodyBytes,
    maxOperations: WEBSOCKET_MAX_OPERATIONS,
    keyOf: apiKeyOf,
    mapError: limitError,
    ...config.websocket,
  });
  late.sockets = sockets;
  return {
    yoga,
    server,
    upstream,
    shared: sessionDeps.shared,
    live,
    state,
    readiness,
    metrics,
    logger,
    listen: (port = config.port, host = config.host) =>
      new Promise((resolve, reject) => {
        server.once('error', (error: NodeJS.ErrnoException) =>
          reject(error.code === 'EADDRINUSE' || error.code === 'EACCES' ? new ListenError(port, host, error.code) : error),
        );
        server.listen(port, host, () => {
          const address = server.address() as AddressInfo;
          const shown = address.address.includes(':') ? `[${address.address}]` : address.address;
          resolve(`http://${shown === '0.0.0.0' ? '127.0.0.1' : shown}:${address.port}`);
        });
      }),
    close: async (graceMs = config.shutdownGraceMs) => {
      // Queries and mutations in flight over HTTP and WebSocket answer within the grace; live data ends.
      await live.close();
      const [drained] = await Promise.all([drain.close(server, graceMs), sockets.close(graceMs)]);
      sessionDeps.shared.close();
      await Promise.all([upstream.close(!drained), state.close()]);
      await tracing.shutdown();
    },
  };
}
