import { MockAgent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { UpstreamClient } from '../src/upstream/client.ts';
import { QuotaTracker, ScopeMirror, SharedReads } from '../src/state/shared-reads.ts';
import { KeyGate } from '../src/upstream/key-gate.ts';
import { UpstreamSession, type SessionDeps } from '../src/upstream/session.ts';

let agent: MockAgent | undefined;
afterEach(async () => {
  await agent?.close();
  agent = undefined;
});

function deps(retryAfterMaxMs: number): { deps: SessionDeps; pool: ReturnType<MockAgent['get']>; times: number[] } {
  const mock = new MockAgent();
  mock.disableNetConnect();
  agent = mock;
  const defaults = loadConfig({});
  const client = new UpstreamClient({
    ...defaults.upstream,
    apiUrl: 'http://upstream.test/api/v3',
    timeoutMs: 5_000,
    connections: 4,
    maxKeys: defaults.maxKeys,
    dispatcher: mock,
    resilience: { ...defaults.upstream.resilience, retries: 0 },
  });
  const times: number[] = [];
  return {
    deps: {
      client,
      shared: new SharedReads({ ttlMs: 0, maxEntries: 100, maxBytes: 1_000_000 }),
      scopes: new ScopeMirror(60_000),
      quota: new QuotaTracker(null, retryAfterMaxMs),
      keys: new KeyGate({ maxKeys: 100, keyRefusalTtlMs: 60_000 }),
      budget: 50,
      deadlineMs: 10_000,
      operationConcurrency: defaults.operationConcurrency,
    },
    pool: mock.get('http://upstream.test'),
    times,
  };
}

const ok = { status: 'success', data: [{ id: 'e1' }], metadata: {} };
const limited = { status: 'error', error: { code: 'RATE_LIMIT_EXCEEDED', message: 'Slow down', details: {} } };

describe('a 429 with a short Retry-After', () => {
  it('is waited out by every operation of the key, then each is answered', async () => {
    const { deps: d, pool } = deps(2_000);
    const seen: number[] = [];
    pool
      .intercept({ path: '/api/v3/experiments/e1', method: 'GET' })
      .reply(() => (seen.push(Date.now()), { statusCode: 429, data: limited, responseOptions: { headers: { 'retry-after': '1' } } }));
    pool.intercept({ path: '/api/v3/experiments/e1', method: 'GET' }).reply(() => (seen.push(Date.now()), { statusCode: 200, data: ok }));
    pool.intercept({ path: '/api/v3/experiments/e2', method: 'GET' }).reply(() => (seen.push(Date.now()), { statusCode: 200, data: ok }));
    const first = new UpstreamSession(d, 'hst_test_k', 'r1');
    const started = Date.now();
    const firstAnswer = first.get('/experiments/e1');
    await new Promise((r) => setTimeout(r, 100));
    // Another operation of the same key, while the key is told to wait: it waits instead of asking.
    const second = new UpstreamSession(d, 'hst_test_k', 'r2');
    const answers = await Promise.all([firstAnswer, second.get('/experiments/e2')]);
    expect(answers.map((a) => a.data)).toEqual([[{ id: 'e1' }], [{ id: 'e1' }]]);
    expect(seen).toHaveLength(3);
    expect((seen[1] ?? 0) - started).toBeGreaterThanOrEqual(900);
    expect((seen[2] ?? 0) - started).toBeGreaterThanOrEqual(900);
    expect(first.cost).toMatchObject({ requests: 2, retries: 1, failed: 0 });
    expect(second.cost).toMatchObject({ requests: 1, retries: 0 });
  });

  it('fails RATE_LIMITED at once when the wait is longer than allowed', async () => {
    const { deps: d, pool } = deps(500);
    pool.intercept({ path: '/api/v3/experiments/e1', method: 'GET' }).reply(429, limited, { headers: { 'retry-after': '30' } });
    const session = new UpstreamSession(d, 'hst_test_k', 'r1');
    await expect(session.get('/experiments/e1')).rejects.toMatchObject({ code: 'RATE_LIMITED', status: 429, retryAfter: 30 });
    const other = new UpstreamSession(d, 'hst_test_k', 'r2');
    await expect(other.get('/experiments/e1')).rejects.toMatchObject({
      code: 'RATE_LIMITED',
      status: null,
      details: { source: 'gateway' },
    });
    expect(other.cost.requests).toBe(0);
  });
});

describe('the end of an operation', () => {
  it("stops at the operation's deadline with UPSTREAM_TIMEOUT", async () => {
    const { deps: d, pool } = deps(0);
    pool.intercept({ path: '/api/v3/experiments/slow', method: 'GET' }).reply(200, ok).delay(2_000);
    const session = new UpstreamSession({ ...d, deadlineMs: 100 }, 'hst_test_k', 'r1');
    await expect(session.get('/experiments/slow')).rejects.toMatchObject({
      code: 'UPSTREAM_TIMEOUT',
      message: "The operation's deadline passed before the HyperStudy API answered",
    });
  });

  it('sends nothing when the deadline passed before its first upstream read (the deadline counts from the start)', async () => {
    const { deps: d, pool } = deps(0);
    pool.intercept({ path: '/api/v3/experiments/e1', method: 'GET' }).reply(200, ok);
    const session = new UpstreamSession({ ...d, deadlineMs: 30 }, 'hst_test_k', 'r1');
    await new Promise((r) => setTimeout(r, 60));
    await expect(session.get('/experiments/e1')).rejects.toMatchObject({ code: 'UPSTREAM_TIMEOUT' });
    expect(session.cost).toMatchObject({ requests: 0, failed: 0 });
    expect(agent?.pendingInterceptors()).toHaveLength(1);
  });

  it('reports one final cost once ended, the same object each time', async () => {
    const { deps: d, pool } = deps(0);
    pool.intercept({ path: '/api/v3/experiments/e1', method: 'GET' }).reply(200, ok);
    const session = new UpstreamSession(d, 'hst_test_k', 'r1');
    await session.get('/experiments/e1');
    expect(session.cost).not.toBe(session.cost);
    session.end();
    const final = session.cost;
    expect(final).toMatchObject({ requests: 1, pages: 0, failed: 0, budgetLeft: 49 });
    expect(session.cost).toBe(final);
  });

  it('sends nothing once the operation has ended', async () => {
    const { deps: d } = deps(0);
    const session = new UpstreamSession(d, 'hst_test_k', 'r1');
    session.end();
    await expect(session.get('/experiments/e1')).rejects.toMatchObject({ code: 'UPSTREAM_TIMEOUT', details: { cancelled: true } });
    expect(session.cost).toMatchObject({ requests: 0, failed: 0 });
  });
});

describe('a read shared by operations of one key', () => {
  it('resumes the operation that sent it first, then each that joined it a macrotask later, in the order they joined', async () => {
    const { deps: d, pool } = deps(0);
    pool.intercept({ path: '/api/v3/experiments/e1', method: 'GET' }).reply(200, ok).delay(50);
    const sessions = ['r1', 'r2', 'r3'].map((id) => new UpstreamSession(d, 'hst_test_k', id));
    const order: string[] = [];
    const answers = sessions.map((session, i) =>
      session.get('/experiments/e1').then((answer) => {
        order.push(`r${i + 1}`);
        return answer;
      }),
    );
    await answers[0];
    // Only microtasks later: the operations that joined are still waiting for their turn.
    for (let i = 0; i < 50; i++) await Promise.resolve();
    expect(order).toEqual(['r1']);
    expect((await Promise.all(answers)).map((a) => a.data)).toEqual([[{ id: 'e1' }], [{ id: 'e1' }], [{ id: 'e1' }]]);
    expect(order).toEqual(['r1', 'r2', 'r3']);
    expect(sessions.map((s) => [s.cost.requests, s.cost.coalesced])).toEqual([
      [1, 0],
      [0, 1],
      [0, 1],
    ]);
  });
});
