import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, loadConfig } from '../src/config.ts';
import { createGateway } from '../src/server.ts';
import { startStack, type Stack } from './helpers/stack.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack.close());

describe('HTTP endpoints', () => {
  it('/health answers without touching the upstream', async () => {
    stack.sim.stats.reset();
    const res = await fetch(`${stack.url}/health`);
    expect(res.status).toBe(200);
    expect(stack.sim.stats.total).toBe(0);
  });

  it('/ready checks the upstream /health', async () => {
    stack.sim.stats.reset();
    const res = await fetch(`${stack.url}/ready`);
    expect(res.status).toBe(200);
    expect(stack.sim.stats.byPath()).toEqual({ '/api/v3/health': 1 });
    expect(stack.sim.stats.requests[0]?.key).toBe('none');
  });

  it('/ready answers 503 when the upstream is unreachable', async () => {
    const gateway = createGateway(loadConfig({ HYPERSTUDY_API_URL: 'http://127.0.0.1:9/api/v3', UPSTREAM_TIMEOUT_MS: '500' }));
    const url = await gateway.listen(0, '127.0.0.1');
    try {
      const res = await fetch(`${url}/ready`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ ready: false, reason: 'The HyperStudy API is not reachable' });
    } finally {
      await gateway.close();
    }
  });

  it('serves GraphiQL to browsers with an example query and an X-API-Key header hint', async () => {
    const res = await fetch(`${stack.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('HyperStudy GraphQL');
    expect(html).toContain('query Dashboard');
    expect(html).toContain('X-API-Key');
    expect(html).toContain('paste your HyperStudy API key here');
    // Self-contained: nothing is loaded from a CDN.
    expect(html).not.toMatch(/unpkg\.com|cdn\.jsdelivr/);
    expect(html).not.toContain('hst_test');
  });

  it('prefills the demo key in GraphiQL only when asked to', async () => {
    const demo = await startStack({}, { GRAPHIQL_EXAMPLE_KEY: 'hst_test_demo_full' });
    try {
      const html = await (await fetch(`${demo.url}/graphql`, { headers: { accept: 'text/html' } })).text();
      expect(html).toContain('hst_test_demo_full');
    } finally {
      await demo.close();
    }
  });

  it('answers GET /graphql queries', async () => {
    const res = await fetch(`${stack.url}/graphql?query=${encodeURIComponent('{ __typename }')}`, {
      headers: { accept: 'application/json' },
    });
    expect(await res.json()).toMatchObject({ data: { __typename: 'Query' } });
  });

  it('reports what each operation cost upstream', async () => {
    const res = await stack.gql('{ experiment(id: "exp_movie01") { name again: name } a: experiment(id: "exp_movie01") { roomCount } }');
    expect(res.body.extensions?.upstream).toEqual({
      requests: 1,
      pages: 0,
      cacheHits: 0,
      coalesced: 0,
      retries: 0,
      failed: 0,
      budgetLeft: 299,
      rateLimit: { usedLastHour: expect.any(Number), limitPerHour: 1000, upstreamRemaining: null, retryAfter: null },
    });
  });
});

describe('configuration', () => {
  it('has documented defaults', () => {
    expect(loadConfig({})).toEqual({
      apiUrl: 'https://api.hyperstudy.io/api/v3',
      port: 4000,
      host: '0.0.0.0',
      upstreamTimeoutMs: 10_000,
      upstreamConnections: 32,
      pageConcurrency: 16,
      operationConcurrency: 16,
      keyConcurrency: 16,
      upstreamMaxBodyBytes: 33_554_432,
      defaultPageSize: 100,
      graphiql: true,
      graphiqlExampleKey: null,
      limits: {
        depth: 16,
        aliases: 15,
        rootAliases: 100,
        tokens: 5_000,
        directives: 50,
        bodyBytes: 4_194_304,
        batching: 0,
        listItems: 10_000,
        lookups: 300,
      },
      introspection: true,
      logLevel: 'info',
      logSampleRate: 1,
      trustedDocuments: null,
      tracing: { endpoint: null, serviceName: 'hyperstudy-graphql' },
      shutdownGraceMs: 10_000,
      corsOrigins: '*',
      planner: true,
      jit: true,
      budget: 300,
      cacheTtlMs: 5000,
      cacheMaxEntries: 5000,
      cacheMaxBytes: 33_554_432,
      maxKeys: 10_000,
      keyRefusalTtlMs: 60_000,
      readyCacheMs: 1_000,
      live: {
        quotaShare: 0.5,
        minIntervalMs: 2_000,
        maxBackoffMs: 60_000,
        lateMs: 2_000,
        maxFeedsPerKey: 50,
        maxSubscriptionsPerKey: 200,
        maxSubscriptions: 10_000,
        maxBacklog: 100_000,
        leaseMs: 10_000,
        perHour: 1000,
        perMinutePerEndpoint: 100,
      },
      websocket: { maxConnections: 10_000, maxConnectionsPerKey: 100, idleTimeoutMs: 300_000, initTimeoutMs: 3_000 },
      scopeCacheTtlMs: 60_000,
      quota: { perHour: 1000, perMinutePerEndpoint: 100 },
      redis: null,
      workers: 1,
      replicas: 1,
      deadlineMs: 30_000,
      tables: { budget: 1000, deadlineMs: 900_000, rowGroupRows: 10_000 },
      retryAfterMaxMs: 5_000,
      resilience: { retries: 3, retryBaseMs: 100, retryMaxMs: 2_000, breakerThreshold: 10, breakerHalfOpenMs: 10_000, breakerMinKeys: 3 },
    });
    for (const [name, field] of Object.entries(configSchema.shape)) expect(field.description, name).toBeTruthy();
  });

  it('reads the environment and refuses bad values with the variable name and meaning', () => {
    expect(loadConfig({ PORT: '8080', HYPERSTUDY_API_URL: 'http://localhost:4010/api/v3/', GRAPHIQL: 'false' })).toMatchObject({
      port: 8080,
      apiUrl: 'http://localhost:4010/api/v3',
      graphiql: false,
    });
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT: .*\(Port the gateway listens on\)/);
    expect(() => loadConfig({ HYPERSTUDY_API_URL: 'not a url' })).toThrow(
      /HYPERSTUDY_API_URL: .*\(Upstream base URL, including \/api\/v3\)/,
    );
    expect(() => loadConfig({ GRAPHIQL: 'maybe' })).toThrow(/GRAPHIQL/);
    expect(() => loadConfig({ REDIS_URL: 'http://cache:6379' })).toThrow(/REDIS_URL: a redis:\/\/ or rediss:\/\/ URL/);
    expect(loadConfig({ REDIS_URL: 'rediss://user:pw@cache:6380/1' }).redis).toMatchObject({ url: 'rediss://user:pw@cache:6380/1' });
    expect(() => loadConfig({ WORKERS: '0' })).toThrow(/WORKERS: a number of processes from 1, or 'auto'/);
    for (const bad of ['app.example.org', 'https://a.example.org,', 'https://a.example.org/path'])
      expect(() => loadConfig({ CORS_ORIGINS: bad }), bad).toThrow(/CORS_ORIGINS: '\*', 'off', or origins/);
    expect(loadConfig({ CORS_ORIGINS: 'https://a.example.org, http://localhost:5173' }).corsOrigins).toEqual([
      'https://a.example.org',
      'http://localhost:5173',
    ]);
  });
});
