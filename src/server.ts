import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useDeferStream } from '@graphql-yoga/plugin-defer-stream';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { createYoga, useReadinessCheck, type YogaServerInstance } from 'graphql-yoga';
import type { Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { useAliasLimits } from './alias-limits.ts';
import type { GatewayConfig } from './config.ts';
import { createLoaders } from './loaders/index.ts';
import { createLogger, createMetrics, useOperationReport, type Metrics } from './observability.ts';
import {
  maskError,
  useOrganizationHeader,
  useLimitErrors,
  useNoIntrospection,
  useRequireApiKey,
  useUpstreamBudget,
  useUpstreamResult,
} from './plugins.ts';
import type { GatewayContext } from './schema/builder.ts';
import { schema } from './schema/index.ts';
import { createTracing } from './tracing.ts';
import { loadTrustedDocuments, useTrustedDocuments } from './trusted-documents.ts';
import { UpstreamClient } from './upstream/client.ts';
import { routes } from './upstream/routes.ts';
import { QuotaTracker, ScopeMirror, SharedReads } from './upstream/shared.ts';
import { UpstreamSession, type SessionDeps } from './upstream/session.ts';

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

export interface GatewayDeps {
  /** Replaces the upstream keep-alive pool (tests). */
  dispatcher?: Dispatcher;
  /** Replaces the JSON logger on stdout (tests capture it). */
  logger?: Logger;
  /** Replaces the configured tracer (tests record spans in memory). */
  tracer?: Tracer;
}

export interface Gateway {
  yoga: YogaServerInstance<Record<string, unknown>, GatewayContext>;
  server: Server;
  upstream: UpstreamClient;
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

/** Builds the gateway: the Yoga app, its HTTP server, and the long-lived upstream client. */
export function createGateway(config: GatewayConfig, deps: GatewayDeps = {}): Gateway {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const trusted = config.trustedDocuments === null ? null : loadTrustedDocuments(config.trustedDocuments);
  const tracing = deps.tracer
    ? { tracer: deps.tracer, shutdown: async () => undefined }
    : createTracing(config.tracing.endpoint, config.tracing.serviceName);
  let circuit: () => 'closed' | 'open' | 'half-open' = () => 'closed';
  const metrics = createMetrics(() => circuit());
  const upstream = new UpstreamClient({
    baseUrl: config.apiUrl,
    timeoutMs: config.upstreamTimeoutMs,
    connections: config.upstreamConnections,
    dispatcher: deps.dispatcher,
    resilience: config.resilience,
    observer: metrics.upstream,
    tracer: tracing.tracer,
  });
  circuit = () => upstream.circuit;
  const sessionDeps: SessionDeps = {
    client: upstream,
    shared: new SharedReads(config.cacheTtlMs, config.cacheMaxEntries),
    scopes: new ScopeMirror(config.scopeCacheTtlMs),
    quota: new QuotaTracker(config.quota, config.retryAfterMaxMs),
    budget: config.budget,
    deadlineMs: config.deadlineMs,
    observer: metrics.upstream,
  };

  const yoga = createYoga<Record<string, unknown>, GatewayContext>({
    schema,
    graphqlEndpoint: '/graphql',
    healthCheckEndpoint: '/health',
    landingPage: false,
    // GraphiQL with its assets inlined: it works without reaching a CDN (firewalls, strict CSP).
    renderGraphiQL,
    graphiql: config.graphiql
      ? {
          title: 'HyperStudy GraphQL',
          defaultQuery: EXAMPLE_QUERY,
          headers: JSON.stringify({ 'X-API-Key': config.graphiqlExampleKey ?? 'paste your HyperStudy API key here' }, null, 2),
        }
      : false,
    maskedErrors: { maskError },
    logging: {
      debug: (...args: unknown[]) => logger.debug({ detail: args.map(String) }, 'yoga'),
      info: (...args: unknown[]) => logger.info({ detail: args.map(String) }, 'yoga'),
      warn: (...args: unknown[]) => logger.warn({ detail: args.map(String) }, 'yoga'),
      error: (...args: unknown[]) =>
        logger.error(
          { err: args.find((a) => a instanceof Error), detail: args.filter((a) => !(a instanceof Error)).map(String) },
          'unexpected error',
        ),
    },
    batching: config.limits.batching > 0 ? { limit: config.limits.batching } : false,
    cors:
      config.corsOrigins === null
        ? false
        : {
            origin: config.corsOrigins === '*' ? '*' : config.corsOrigins,
            methods: ['GET', 'POST', 'OPTIONS'],
            allowedHeaders: ['content-type', 'x-api-key', 'authorization', 'x-request-id', 'x-organization-id', 'x-explain-plan'],
            exposedHeaders: ['x-request-id'],
          },
    context: ({ request }) => {
      const key = apiKeyOf(request.headers);
      const requestId = request.headers.get('x-request-id') || randomUUID();
      const organization = organizationOf(request.headers);
      const session = new UpstreamSession(sessionDeps, key, requestId, organization.id);
      return {
        authenticated: key !== null,
        organizationRefused: organization.refused,
        session,
        loaders: createLoaders(session, config.pageConcurrency, config.planner),
        defaultPageSize: config.defaultPageSize,
        warnings: new Set<string>(),
        explain: request.headers.get('x-explain-plan') === '1',
      };
    },
    plugins: [
      ...(trusted ? [useTrustedDocuments(trusted)] : []),
      EnvelopArmorPlugin({
        maxDepth: { n: config.limits.depth },
        // Aliases are counted per root field and at the root apart (alias-limits.ts).
        maxAliases: { enabled: false },
        maxTokens: { n: config.limits.tokens },
        maxDirectives: { n: config.limits.directives },
        // graphql-armor's cost grows 1.5× a level, which no Relay graph fits; the cost limit here is the
        // upstream-request estimate against UPSTREAM_BUDGET (useUpstreamBudget).
        costLimit: { enabled: false },
        blockFieldSuggestion: { enabled: !config.introspection },
      }),
      useAliasLimits({ perRootField: config.limits.aliases, rootFields: config.limits.rootAliases }),
      useLimitErrors(),
      // @defer and @stream, over multipart HTTP and SSE; deferred parts are planned with the rest (planner.ts).
      useDeferStream(),
      ...(config.introspection ? [] : [useNoIntrospection()]),
      useRequireApiKey(),
      useOrganizationHeader(),
      useUpstreamBudget(config.budget, () => metrics.upstream.budgetRefused('before')),
      useOperationReport(metrics, logger, tracing.tracer),
      useUpstreamResult(),
      useReadinessCheck({
        endpoint: '/ready',
        check: async () => {
          try {
            if (upstream.circuit === 'open') throw new Error('circuit open');
            await upstream.send({ method: 'GET', path: routes.health(), key: null });
            return true;
          } catch {
            return new Response(JSON.stringify({ ready: false, reason: 'The HyperStudy API is not reachable' }), {
              status: 503,
              headers: { 'content-type': 'application/json' },
            });
          }
        },
      }),
    ],
  });

  let active = 0;
  let idle: (() => void) | null = null;
  const server = createServer((req, res) => {
    active++;
    res.once('close', () => {
      active--;
      if (active === 0) idle?.();
    });
    const requestId =
      (typeof req.headers['x-request-id'] === 'string' && /^[\w.:-]{1,128}$/.test(req.headers['x-request-id'])
        ? req.headers['x-request-id']
        : '') || randomUUID();
    req.headers['x-request-id'] = requestId;
    res.setHeader('x-request-id', requestId);
    const fail = (error: unknown): void => {
      logger.error({ err: error, requestId }, 'unexpected error');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ message: 'Unexpected error.' }] }));
    };
    if (req.url === '/metrics' && req.method === 'GET') {
      metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(text);
      }, fail);
      return;
    }
    const tooLarge = (): void => {
      res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
      res.end(
        JSON.stringify({
          errors: [{ message: `The request body exceeds ${config.limits.bodyBytes} bytes`, extensions: { code: 'PAYLOAD_TOO_LARGE' } }],
        }),
      );
      req.resume();
    };
    const length = req.headers['content-length'];
    if (length !== undefined) {
      if (Number(length) > config.limits.bodyBytes) return tooLarge();
      return void yoga(req, res);
    }
    if (req.headers['transfer-encoding'] === undefined) return void yoga(req, res);
    // A body of unknown length (chunked) is read up to the limit before Yoga sees it; past the limit
    // the answer is 413 at once and the connection is closed, without reading the rest.
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= config.limits.bodyBytes) return void chunks.push(chunk);
      req.off('data', onData);
      req.off('end', onEnd);
      res.once('finish', () => req.destroy());
      tooLarge();
    };
    const onEnd = (): void => {
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers))
        if (typeof value === 'string' && name !== 'transfer-encoding') headers.set(name, value);
      Promise.resolve(
        yoga.fetch(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, {
          method: req.method,
          headers,
          body: Buffer.concat(chunks),
        }),
      )
        .then(async (response) => {
          res.writeHead(response.status, Object.fromEntries(response.headers));
          res.end(Buffer.from(await response.arrayBuffer()));
        })
        .catch(fail);
    };
    req.on('data', onData);
    req.on('end', onEnd);
  });
  return {
    yoga,
    server,
    upstream,
    metrics,
    logger,
    listen: (port = config.port, host = config.host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const address = server.address() as AddressInfo;
          const shown = address.address.includes(':') ? `[${address.address}]` : address.address;
          resolve(`http://${shown === '0.0.0.0' ? '127.0.0.1' : shown}:${address.port}`);
        });
      }),
    close: async (graceMs = config.shutdownGraceMs) => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let drained = true;
      if (active > 0) {
        drained = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), graceMs);
          idle = () => {
            clearTimeout(timer);
            resolve(true);
          };
        });
      }
      server.closeAllConnections();
      await closed;
      await upstream.close(!drained);
      await tracing.shutdown();
    },
  };
}
