import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { createYoga, useReadinessCheck, type YogaServerInstance } from 'graphql-yoga';
import type { Dispatcher } from 'undici';
import type { GatewayConfig } from './config.ts';
import { createLoaders } from './loaders/index.ts';
import { maskError, useLimitErrors, useNoIntrospection, useRequireApiKey, useUpstreamBudget, useUpstreamResult } from './plugins.ts';
import type { GatewayContext } from './schema/builder.ts';
import { schema } from './schema/index.ts';
import { UpstreamClient } from './upstream/client.ts';
import { routes } from './upstream/routes.ts';
import { QuotaTracker, ScopeMirror, SharedReads } from './upstream/shared.ts';
import { UpstreamSession, type SessionDeps } from './upstream/session.ts';

export const EXAMPLE_QUERY = `# Send your HyperStudy API key in the X-API-Key header (Headers tab below).
# The demo keys are printed by \`npm run demo\`; try hst_test_demo_full.
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

export interface GatewayDeps {
  /** Replaces the upstream keep-alive pool (tests). */
  dispatcher?: Dispatcher;
}

export interface Gateway {
  yoga: YogaServerInstance<Record<string, unknown>, GatewayContext>;
  server: Server;
  upstream: UpstreamClient;
  /** Listens on the configured port (0 picks a free one) and returns the base URL. */
  listen(port?: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

/** Builds the gateway: the Yoga app, its HTTP server, and the long-lived upstream client. */
export function createGateway(config: GatewayConfig, deps: GatewayDeps = {}): Gateway {
  const upstream = new UpstreamClient({ baseUrl: config.apiUrl, timeoutMs: config.upstreamTimeoutMs, connections: config.upstreamConnections, dispatcher: deps.dispatcher, resilience: config.resilience });
  const sessionDeps: SessionDeps = {
    client: upstream,
    shared: new SharedReads(config.cacheTtlMs, config.cacheMaxEntries),
    scopes: new ScopeMirror(config.scopeCacheTtlMs),
    quota: new QuotaTracker(config.quota, config.retryAfterMaxMs),
    budget: config.budget,
    deadlineMs: config.deadlineMs,
  };

  const yoga = createYoga<Record<string, unknown>, GatewayContext>({
    schema,
    graphqlEndpoint: '/graphql',
    healthCheckEndpoint: '/health',
    landingPage: false,
    graphiql: config.graphiql
      ? { title: 'HyperStudy GraphQL', defaultQuery: EXAMPLE_QUERY, headers: JSON.stringify({ 'X-API-Key': 'paste your HyperStudy API key here' }, null, 2) }
      : false,
    maskedErrors: { maskError },
    batching: config.limits.batching > 0 ? { limit: config.limits.batching } : false,
    context: ({ request }) => {
      const key = apiKeyOf(request.headers);
      const requestId = request.headers.get('x-request-id')?.slice(0, 128) || randomUUID();
      const session = new UpstreamSession(sessionDeps, key, requestId);
      return { authenticated: key !== null, session, loaders: createLoaders(session, config.pageConcurrency, config.planner), defaultPageSize: config.defaultPageSize };
    },
    plugins: [
      EnvelopArmorPlugin({
        maxDepth: { n: config.limits.depth },
        maxAliases: { n: config.limits.aliases },
        maxTokens: { n: config.limits.tokens },
        maxDirectives: { n: config.limits.directives },
        // graphql-armor's cost grows 1.5× a level, which no Relay graph fits; the cost limit here is the
        // upstream-request estimate against UPSTREAM_BUDGET (useUpstreamBudget).
        costLimit: { enabled: false },
        blockFieldSuggestion: { enabled: !config.introspection },
      }),
      useLimitErrors(),
      ...(config.introspection ? [] : [useNoIntrospection()]),
      useRequireApiKey(),
      useUpstreamBudget(config.budget),
      useUpstreamResult(),
      useReadinessCheck({
        endpoint: '/ready',
        check: async () => {
          try {
            if (upstream.circuit === 'open') throw new Error('circuit open');
            await upstream.send({ method: 'GET', path: routes.health(), key: null });
            return true;
          } catch {
            return new Response(JSON.stringify({ ready: false, reason: 'The HyperStudy API is not reachable' }), { status: 503, headers: { 'content-type': 'application/json' } });
          }
        },
      }),
    ],
  });

  const server = createServer((req, res) => {
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > config.limits.bodyBytes) {
      res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify({ errors: [{ message: `The request body exceeds ${config.limits.bodyBytes} bytes`, extensions: { code: 'PAYLOAD_TOO_LARGE' } }] }));
      req.resume();
      return;
    }
    void yoga(req, res);
  });
  return {
    yoga,
    server,
    upstream,
    listen: (port = config.port, host = config.host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const address = server.address() as AddressInfo;
          const shown = address.address.includes(':') ? `[${address.address}]` : address.address;
          resolve(`http://${shown === '0.0.0.0' ? '127.0.0.1' : shown}:${address.port}`);
        });
      }),
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await upstream.close();
    },
  };
}
