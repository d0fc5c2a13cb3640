import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import { loadConfig, variables } from '../src/config.ts';
import { startStack, startGateway, stackPerTest, type Stack } from './helpers/stack.ts';
import { FULL } from './helpers/simulator.ts';

/** A stack of the test's own, closed after it. */
const ownStack = stackPerTest();

/** The configuration's defaults (docs/configuration.md), which the stack keeps but for the cache and the quota guard. */
const DEFAULTS = loadConfig({});
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
    const { gateway, url } = await startGateway({ HYPERSTUDY_API_URL: 'http://127.0.0.1:9/api/v3', UPSTREAM_TIMEOUT_MS: '500' });
    try {
      const res = await fetch(`${url}/ready`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ ready: false, reason: 'The HyperStudy API is not reachable' });
    } finally {
      await gateway.close();
    }
  });

  it('serves GraphiQL to browsers with an example query and an X-API-Key header hint', async () => {
    // Uncompressed: the encodings are http-graphiql.test.ts's (brotli's 9 MB here would take a second of CPU).
    const res = await fetch(`${stack.url}/graphql`, { headers: { accept: 'text/html', 'accept-encoding': 'identity' } });
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
    const demo = await ownStack({}, { GRAPHIQL_EXAMPLE_KEY: FULL });
    const html = await (await fetch(`${demo.url}/graphql`, { headers: { accept: 'text/html', 'accept-encoding': 'identity' } })).text();
    expect(html).toContain(FULL);
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
      budgetLeft: DEFAULTS.budget - 1,
      rateLimit: {
        usedLastHour: expect.any(Number),
        limitPerHour: DEFAULTS.quotaLimits.perHour,
        upstreamRemaining: null,
        retryAfter: null,
      },
    });
  });
});

describe('configuration', () => {
  it('derives the values that depend on other settings, or on the machine', () => {
    const defaults = loadConfig({});
    // MAX_LOOKUPS unset: UPSTREAM_BUDGET (test/list-limits.test.ts).
    expect(defaults.limits.lookups).toBe(defaults.budget);
    expect(defaults.quota).toEqual(defaults.quotaLimits);
    expect(loadConfig({ UPSTREAM_QUOTA_GUARD: 'off', UPSTREAM_HOURLY_LIMIT: '60' })).toMatchObject({
      quota: null,
      quotaLimits: { perHour: 60 },
    });
    expect(defaults.cors).toEqual({ origins: '*' });
    expect(loadConfig({ CORS_ORIGINS: ' off ' }).cors).toBeNull();
    expect(defaults.redis).toBeNull();
    expect(loadConfig({ REDIS_URL: 'redis://cache:6379', REDIS_KEY_PREFIX: 'a:', REDIS_TIMEOUT_MS: '50' }).redis).toEqual({
      url: 'redis://cache:6379',
      keyPrefix: 'a:',
      timeoutMs: 50,
    });
    expect(loadConfig({ WORKERS: '3' }).workers).toBe(3);
    expect(loadConfig({ WORKERS: 'auto' }).workers).toBe(availableParallelism());
    expect([defaults.graphiqlExampleKey, defaults.trustedDocuments, defaults.tracing.endpoint]).toEqual([null, null, null]);
    expect([defaults.planner, defaults.graphqlJit, loadConfig({ PLANNER: 'off', GRAPHQL_JIT: 'off' })]).toMatchObject([
      true,
      true,
      { planner: false, graphqlJit: false },
    ]);
    for (const v of variables) expect(v.description, v.env).toBeTruthy();
  });

  it('reads the environment and refuses bad values with the variable name and meaning', () => {
    expect(loadConfig({ PORT: '8080', HYPERSTUDY_API_URL: 'http://localhost:4010/api/v3/', GRAPHIQL: 'false' })).toMatchObject({
      port: 8080,
      upstream: { apiUrl: 'http://localhost:4010/api/v3' },
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
    expect(loadConfig({ CORS_ORIGINS: 'https://a.example.org, http://localhost:5173' }).cors).toEqual({
      origins: ['https://a.example.org', 'http://localhost:5173'],
    });
  });
});
