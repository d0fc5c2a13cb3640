import { describe, expect, it } from 'vitest';
import { DASHBOARD } from './helpers/dashboard.ts';
import { startStack } from './helpers/stack.ts';

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

  it('opens the circuit while the upstream is down: fields fail fast and /ready answers 503', async () => {
    const stack = await startStack(
      { faults: { rate: 1, modes: ['http503'], stallMs: 1000 } },
      { UPSTREAM_RETRIES: '0', BREAKER_THRESHOLD: '3' },
    );
    try {
      for (let i = 0; i < 3; i++) await stack.gql('{ experiment(id: "exp_movie01") { name } }');
      const sent = stack.sim.stats.total;
      const res = await stack.gql('{ experiment(id: "exp_movie01") { name } }');
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'UPSTREAM_ERROR', upstream: { details: { circuit: 'open' } } });
      expect(stack.sim.stats.total).toBe(sent);
      expect((await fetch(`${stack.url}/ready`)).status).toBe(503);
    } finally {
      await stack.close();
    }
  });
});
