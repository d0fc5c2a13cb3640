import { describe, expect, it } from 'vitest';
import { DASHBOARD } from './helpers/dashboard.ts';
import { json, startScripted, success } from './helpers/scripted.ts';
import { startStack, startGateway } from './helpers/stack.ts';
import { EVENTS_ONLY, FULL, OTHER, READONLY } from './helpers/simulator.ts';

const CODES = new Set([
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'BAD_USER_INPUT',
  'RATE_LIMITED',
  'UPSTREAM_ERROR',
  'UPSTREAM_TIMEOUT',
  'UPSTREAM_BUDGET_EXCEEDED',
]);

describe('upstream faults', () => {
  it('answers ≥ 95% of dashboards completely at a 20% fault rate, and every answer is well-formed', async () => {
    const stack = await startStack(
      {
        rooms: 2,
        participantsPerRoom: 2,
        faults: { rate: 0.2, modes: ['http500', 'http502', 'http503', 'html502', 'drop', 'stall'], stallMs: 3_000 },
      },
      { UPSTREAM_TIMEOUT_MS: '300', UPSTREAM_RETRY_BASE_MS: '10', UPSTREAM_RETRY_MAX_MS: '50' },
    );
    try {
      let complete = 0;
      const runs = 25;
      for (let i = 0; i < runs; i++) {
        const res = await stack.gql(DASHBOARD, { variables: { id: 'exp_movie01' } });
        expect(res.status).toBe(200);
        expect(res.body.data === undefined && res.body.errors === undefined).toBe(false);
        for (const e of res.body.errors ?? []) expect(CODES.has(String(e.extensions?.code)), JSON.stringify(e)).toBe(true);
        if (!res.body.errors) complete++;
      }
      expect(complete / runs).toBeGreaterThanOrEqual(0.95);
      const faults = stack.sim.stats.requests.filter((r) => r.fault !== null).length;
      expect(faults).toBeGreaterThan(10);
    } finally {
      await stack.close();
    }
  });

  // Issue 9, item 4: before, with the circuit open the cost report counted requests never sent and
  // charged the key's quota for them.
  it('opens the shared circuit when several keys fail: others fail fast, nothing unsent is counted, /ready is 503', async () => {
    const stack = await startStack(
      { faults: { rate: 1, modes: ['http503'], stallMs: 1000 } },
      { UPSTREAM_RETRIES: '0', BREAKER_THRESHOLD: '3', READY_CACHE_MS: '0' },
    );
    try {
      for (const key of [FULL, READONLY, EVENTS_ONLY]) await stack.gql('{ experiment(id: "exp_movie01") { name } }', { key });
      const sent = stack.sim.stats.total;
      expect(sent).toBe(3);
      const res = await stack.gql<{ experiment: null }>('{ experiment(id: "exp_movie01") { name } }', { key: OTHER });
      expect(res.body.errors?.[0]?.extensions).toMatchObject({
        code: 'UPSTREAM_ERROR',
        upstream: { details: { circuit: 'open', scope: 'upstream' } },
      });
      expect(stack.sim.stats.total).toBe(sent);
      expect(res.body.extensions?.upstream).toMatchObject({ requests: 0, failed: 0, rateLimit: { usedLastHour: 0 } });
      expect((await fetch(`${stack.url}/ready`)).status).toBe(503);
    } finally {
      await stack.close();
    }
  });

  // Issue 9, item 2: before, ten timeouts of one key's requests opened the one shared circuit: every
  // other key then failed fast for BREAKER_HALF_OPEN_MS, and /ready answered 503.
  it("opens only the failing key's circuit when one key's requests time out", async () => {
    const upstream = await startScripted((req, res, seen) => {
      if (seen.key === 'hst_test_slow') return; // never answers
      if (seen.path === '/health') return json(res, 200, { status: 'healthy' });
      json(res, 200, success([{ id: 'e1', name: 'Fine' }]));
    });
    const { gateway, url } = await startGateway({
      HYPERSTUDY_API_URL: upstream.url,
      UPSTREAM_RETRIES: '0',
      UPSTREAM_TIMEOUT_MS: '200',
      BREAKER_THRESHOLD: '3',
      CACHE_TTL_MS: '0',
    });
    const ask = async (key: string) => {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': key },
        body: JSON.stringify({ query: '{ experiment(id: "e1") { name } }' }),
      });
      return (await res.json()) as { data: unknown; errors?: { extensions: Record<string, unknown> }[] };
    };
    try {
      const codes: unknown[] = [];
      for (let i = 0; i < 10; i++) codes.push((await ask('hst_test_slow')).errors?.[0]?.extensions);
      expect(codes.slice(0, 3)).toEqual(Array.from({ length: 3 }, () => expect.objectContaining({ code: 'UPSTREAM_TIMEOUT' })));
      expect(codes.slice(3)).toEqual(
        Array.from({ length: 7 }, () =>
          expect.objectContaining({ upstream: expect.objectContaining({ details: { circuit: 'open', scope: 'key' } }) }),
        ),
      );
      expect(upstream.seen.filter((s) => s.key === 'hst_test_slow')).toHaveLength(3);
      expect(await ask('hst_test_fast')).toEqual({ data: { experiment: { name: 'Fine' } }, extensions: expect.any(Object) });
      expect(gateway.upstream.circuit).toBe('closed');
      expect((await fetch(`${url}/ready`)).status).toBe(200);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(/^hsgql_upstream_circuit_open 0$/m);
      expect(metrics).toMatch(/^hsgql_upstream_key_circuits_open 1$/m);
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });

  // Issue 9, item 20: before, /ready refused to probe while the circuit was open and stayed 503 until
  // some GraphQL request got through, however long ago the upstream had recovered.
  it('/ready recovers on its own once the upstream does, and closes the circuit', async () => {
    const stack = await startStack(
      { faults: { rate: 1, modes: ['http503'], stallMs: 1000 } },
      { UPSTREAM_RETRIES: '0', BREAKER_THRESHOLD: '2', BREAKER_MIN_KEYS: '1', BREAKER_HALF_OPEN_MS: '600000', READY_CACHE_MS: '100' },
    );
    try {
      for (let i = 0; i < 2; i++) await stack.gql('{ experiment(id: "exp_movie01") { name } }');
      expect(stack.gateway.upstream.circuit).toBe('open');
      expect((await fetch(`${stack.url}/ready`)).status).toBe(503);
      stack.sim.configure({ faults: { rate: 0 } });
      await new Promise((r) => setTimeout(r, 150));
      const ready = await fetch(`${stack.url}/ready`);
      expect([ready.status, await ready.json()]).toEqual([200, { ready: true }]);
      expect(stack.gateway.upstream.circuit).toBe('closed');
      const res = await stack.gql('{ experiment(id: "exp_movie01") { name } }');
      expect(res.body.data).toEqual({ experiment: { name: 'Movie Watching Study' } });
    } finally {
      await stack.close();
    }
  });
});

// Issue 9, item 4: before, retries were not counted against UPSTREAM_BUDGET: with 40% 503s and a budget
// of 20 the upstream got 30–32 requests for one operation.
describe('the budget counts every request sent', () => {
  it('stops retrying once the budget is spent, and reports exactly what was sent', async () => {
    const stack = await startStack(
      { faults: { rate: 0.4, modes: ['http503'], stallMs: 1000 } },
      {
        PLANNER: 'off',
        UPSTREAM_BUDGET: '20',
        UPSTREAM_RETRIES: '3',
        UPSTREAM_RETRY_BASE_MS: '1',
        UPSTREAM_RETRY_MAX_MS: '5',
        BREAKER_THRESHOLD: '1000',
      },
    );
    // Per participant (planner off), 8 listings: 2 + 3 × 8 = 26 requests before any retry.
    const lists = ['events', 'recordings', 'chatMessages', 'sparseRatings', 'continuousRatings', 'syncMetrics', 'components', 'videoChat'];
    const query = `{ room(id: "room_movie01_001") { participants { edges { node { ${lists.map((l) => `${l}(first: 1) { totalCount }`).join(' ')} } } } } }`;
    try {
      let retries = 0;
      for (let run = 0; run < 3; run++) {
        stack.sim.stats.reset();
        const res = await stack.gql(query);
        const cost = res.body.extensions?.upstream;
        if (!cost) throw new Error('no cost report');
        expect(stack.sim.stats.total).toBeLessThanOrEqual(20);
        expect(cost.requests).toBe(stack.sim.stats.total);
        expect(cost.budgetLeft).toBe(20 - cost.requests);
        retries += cost.retries;
      }
      expect(retries).toBeGreaterThan(0);
    } finally {
      await stack.close();
    }
  });
});
