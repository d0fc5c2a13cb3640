import { afterEach } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { createGateway, type Gateway, type GatewayDeps } from '../../src/server.ts';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator/server.ts';
import { FULL, NO_RATE_LIMIT } from './simulator.ts';

export interface GqlReply<D = Record<string, unknown>> {
  status: number;
  body: {
    data?: D | null;
    errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
    extensions?: {
      upstream?: {
        requests: number;
        pages: number;
        cacheHits: number;
        coalesced: number;
        retries: number;
        failed: number;
        budgetLeft: number;
        rateLimit: { usedLastHour: number; limitPerHour: number; upstreamRemaining: number | null; retryAfter: number | null } | null;
      };
    };
  };
}

/**
 * The gateway as `npm start` builds it (`createGateway(loadConfig(env))`), logging nothing unless
 * `env` sets LOG_LEVEL (or `deps` a logger), listening on a free port of 127.0.0.1. Close it with
 * `gateway.close()`.
 */
export async function startGateway(env: Record<string, string>, deps: GatewayDeps = {}): Promise<{ gateway: Gateway; url: string }> {
  const gateway = createGateway(loadConfig({ LOG_LEVEL: 'silent', ...env }), deps);
  return { gateway, url: await gateway.listen(0, '127.0.0.1') };
}

export interface Stack {
  sim: Simulator;
  gateway: Gateway;
  url: string;
  gql<D = Record<string, unknown>>(
    query: string,
    options?: { key?: string | null; variables?: Record<string, unknown>; headers?: Record<string, string> },
  ): Promise<GqlReply<D>>;
  /** A direct REST call to the simulator, for comparing answers (not counted by tests that reset stats after). */
  rest(path: string, key?: string): Promise<{ data: Record<string, unknown>[]; metadata: { pagination: { total: number } } }>;
  close(): Promise<void>;
}

/**
 * The real gateway over HTTP in front of the real simulator over HTTP, both on free ports. The shared
 * cache and the quota guard are off unless `env` turns them on, so that each test counts its own
 * requests (their own tests turn them on).
 */
export async function startStack(
  sim: Partial<SimulatorOptions> = {},
  env: Record<string, string> = {},
  deps: GatewayDeps = {},
): Promise<Stack> {
  const simulator = await startSimulator({ rateLimit: NO_RATE_LIMIT, ...sim });
  const { gateway, url } = await startGateway(
    { HYPERSTUDY_API_URL: simulator.url, CACHE_TTL_MS: '0', UPSTREAM_QUOTA_GUARD: 'off', ...env },
    deps,
  );
  return {
    sim: simulator,
    gateway,
    url,
    async gql(query, options = {}) {
      const key = options.key === undefined ? FULL : options.key;
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json',
        ...options.headers,
      };
      if (key !== null) headers['x-api-key'] = key;
      const res = await fetch(`${url}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query, variables: options.variables }) });
      return { status: res.status, body: (await res.json()) as GqlReply['body'] } as never;
    },
    async rest(path, key = FULL) {
      const res = await fetch(`${simulator.url}${path}`, { headers: { 'x-api-key': key } });
      return (await res.json()) as never;
    },
    async close() {
      await gateway.close();
      await simulator.close();
    },
  };
}

/**
 * For tests that each start a stack of their own: a `startStack` that closes the stack after its test,
 * however the test ends (call it at the top of a `describe`, or of the file).
 */
export function stackPerTest(): typeof startStack {
  const open: Stack[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((stack) => stack.close()));
  });
  return async (...args) => {
    const stack = await startStack(...args);
    open.push(stack);
    return stack;
  };
}

/** Edges' nodes of a connection in a GraphQL answer. */
export const nodes = <T = Record<string, unknown>>(connection: unknown): T[] =>
  ((connection as { edges: { node: T }[] } | null)?.edges ?? []).map((e) => e.node);

/** A participant as an entity reference: its id and its room. */
export interface Person {
  participantId: string;
  roomId: string;
}

/** The first `n` participants of an experiment's listing (from several rooms), read straight from the simulator. */
export async function firstParticipants(stack: Stack, experimentId: string, n: number): Promise<Person[]> {
  const listed = await stack.rest(`/data/participants/experiment/${experimentId}?limit=1000`);
  return listed.data.slice(0, n).map((p) => ({ participantId: String(p.id), roomId: String(p.roomId) }));
}
