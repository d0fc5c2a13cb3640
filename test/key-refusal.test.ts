import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyHash } from '../src/state/shared-reads.ts';
import { startRedis, type RedisServer } from './helpers/redis.ts';
import { delay, failure, json, startScripted, success } from './helpers/scripted.ts';
import { startStack, startGateway, stackPerTest, type Stack } from './helpers/stack.ts';
import { FULL } from './helpers/simulator.ts';

/** A stack of the test's own, closed after it. */
const ownStack = stackPerTest();

const experimentIds = (n: number): string[] => Array.from({ length: n }, (_, i) => Buffer.from(`Experiment:exp_${i}`).toString('base64'));

/** Sends a whole POST on a raw socket and goes away after `ms`, before the upstream answers. */
function abandon(url: string, key: string, ms: number): Promise<void> {
  const { hostname, port } = new URL(url);
  const body = JSON.stringify({ query: '{ experiment(id: "exp_movie01") { name } }' });
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        `POST /graphql HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\nx-api-key: ${key}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      setTimeout(() => {
        socket.destroy();
        resolve();
      }, ms);
    });
    socket.on('error', () => resolve());
  });
}

/** Waits until the simulator has answered at least `n` requests and what it still had in hand is over. */
async function settled(stack: Stack, n: number): Promise<void> {
  for (let i = 0; i < 400 && stack.sim.stats.total < n; i++) await delay(10);
  await delay(150);
}

// Issue 17, item 1: one request with a made-up key and `nodes(ids:)` of 300 ids sent 300 upstream
// requests, all 401; 100 aliased root fields sent 100; concurrent operations of one junk key each sent theirs.
describe('a key the upstream refused', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ latencyMs: 5 });
  });
  afterAll(() => stack.close());

  it('costs one upstream request however far its operation fans out (nodes of 300 ids)', async () => {
    stack.sim.stats.reset();
    const res = await stack.gql('query($ids: [ID!]!) { nodes(ids: $ids) { id } }', {
      key: 'not-a-key-1',
      variables: { ids: experimentIds(300) },
    });
    expect(res.status).toBe(401);
    expect(res.body.errors?.map((e) => [e.path, e.extensions?.code])).toEqual([[['nodes'], 'UNAUTHENTICATED']]);
    expect(stack.sim.stats.total).toBe(1);
    expect(stack.sim.stats.requests.map((r) => r.status)).toEqual([401]);
  });

  it('costs one upstream request for 100 aliased root fields', async () => {
    stack.sim.stats.reset();
    const fields = Array.from({ length: 100 }, (_, i) => `e${i}: experiment(id: "exp_${i}") { name }`).join(' ');
    const res = await stack.gql(`{ ${fields} }`, { key: 'not-a-key-2' });
    expect(res.status).toBe(401);
    expect(res.body.errors).toHaveLength(100);
    expect(stack.sim.stats.total).toBe(1);
  });

  it('costs one upstream request for operations of the same key sent at once', async () => {
    stack.sim.stats.reset();
    const replies = await Promise.all(
      Array.from({ length: 4 }, () =>
        stack.gql('query($ids: [ID!]!) { nodes(ids: $ids) { id } }', { key: 'not-a-key-3', variables: { ids: experimentIds(50) } }),
      ),
    );
    expect(replies.map((r) => [r.status, r.body.errors?.map((e) => e.extensions?.code)])).toEqual(
      Array(4).fill([401, ['UNAUTHENTICATED']]),
    );
    expect(stack.sim.stats.total).toBe(1);
  });

  it('is refused without asking again in the next moments, with the upstream’s words', async () => {
    await stack.gql('{ experiment(id: "exp_movie01") { name } }', { key: 'not-a-key-4' });
    stack.sim.stats.reset();
    const again = await stack.gql('{ experiment(id: "exp_movie01") { name } }', { key: 'not-a-key-4' });
    expect(again.status).toBe(401);
    expect(again.body.errors?.map((e) => [e.message, e.extensions])).toEqual([
      ['Invalid or expired API key', { code: 'UNAUTHENTICATED', upstream: { status: 401, code: 'AUTHENTICATION_ERROR', details: {} } }],
    ]);
    expect(stack.sim.stats.total).toBe(0);
    // A write is refused the same way, and says it was not applied.
    const write = await stack.gql('mutation { validateExperiment(input: { name: "x" }) { valid } }', { key: 'not-a-key-4' });
    expect(write.body.errors?.map((e) => [e.extensions?.code, e.extensions?.outcome])).toEqual([['UNAUTHENTICATED', 'NOT_APPLIED']]);
    expect(stack.sim.stats.total).toBe(0);
    // A valid key is not held back by it: its first operation goes at once.
    const valid = await stack.gql('{ experiment(id: "exp_movie01") { name } }');
    expect(valid.body.data).toEqual({ experiment: { name: expect.any(String) } });
    expect(stack.sim.stats.total).toBe(1);
  });
});

describe('a refusal remembered for KEY_REFUSAL_TTL_MS', () => {
  it('is asked about again once that time is over', async () => {
    const stack = await ownStack({}, { KEY_REFUSAL_TTL_MS: '1000' });
    await stack.gql('{ experiment(id: "exp_movie01") { name } }', { key: 'not-a-key-5' });
    await stack.gql('{ experiment(id: "exp_movie01") { name } }', { key: 'not-a-key-5' });
    expect(stack.sim.stats.total).toBe(1);
    await delay(1_050);
    const later = await stack.gql('{ experiment(id: "exp_movie01") { name } }', { key: 'not-a-key-5' });
    expect(later.status).toBe(401);
    expect(stack.sim.stats.total).toBe(2);
  });
});

// A key that worked and then is refused (revoked mid-operation): what was in flight was sent, what
// waited (the operation's limiter, the pool's queue, admission) is not.
describe('a key refused in the middle of an operation', () => {
  it('sends none of the requests that were still waiting, and refuses the key’s next operation without asking', async () => {
    let answers = 0;
    const upstream = await startScripted(async (_req, res, seen) => {
      if (answers++ === 0) return json(res, 200, success([{ id: seen.path.split('/').pop(), name: 'x' }]));
      // The refusals wait until every request the operation may have in flight has arrived (1 + 16).
      for (let i = 0; i < 200 && upstream.seen.length < 17; i++) await delay(10);
      json(res, 401, failure('AUTHENTICATION_ERROR', 'Invalid or expired API key'));
    });
    const { gateway, url } = await startGateway({ HYPERSTUDY_API_URL: upstream.url, CACHE_TTL_MS: '0', UPSTREAM_QUOTA_GUARD: 'off' });
    const gql = async (query: string, variables: Record<string, unknown> = {}) => {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': 'hst_test_revoked' },
        body: JSON.stringify({ query, variables }),
      });
      return { status: res.status, body: (await res.json()) as { data: unknown; errors?: { extensions: Record<string, unknown> }[] } };
    };
    try {
      // The first read confirms the key (the probe); then 16 go at once (UPSTREAM_OPERATION_CONCURRENCY)
      // and are refused; the 33 waiting behind them are never sent.
      await gql('{ experiment(id: "e0") { name } }');
      expect(upstream.seen).toHaveLength(1);
      const res = await gql('query($ids: [ID!]!) { nodes(ids: $ids) { id } }', { ids: experimentIds(50) });
      expect(res.status).toBe(401);
      expect(res.body.errors?.map((e) => e.extensions.code)).toEqual(['UNAUTHENTICATED']);
      expect(upstream.seen).toHaveLength(17);
      const next = await gql('{ experiment(id: "e0") { name } }');
      expect(next.body.errors?.map((e) => e.extensions.code)).toEqual(['UNAUTHENTICATED']);
      expect(upstream.seen).toHaveLength(17);
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });
});

describe("a key's first request answered 429", () => {
  it('confirms the key and makes its waiting requests heed the Retry-After without sending', async () => {
    const upstream = await startScripted((_req, res) => {
      json(res, 429, failure('RATE_LIMIT_EXCEEDED', 'Slow down'), { 'retry-after': '30' });
    });
    const { gateway, url } = await startGateway({ HYPERSTUDY_API_URL: upstream.url, CACHE_TTL_MS: '0' });
    try {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': 'hst_test_busy' },
        body: JSON.stringify({ query: 'query($ids: [ID!]!) { nodes(ids: $ids) { id } }', variables: { ids: experimentIds(5) } }),
      });
      const body = (await res.json()) as { errors?: { extensions: Record<string, unknown> }[] };
      expect(body.errors?.map((e) => e.extensions.code)).toEqual(['RATE_LIMITED']);
      expect(upstream.seen).toHaveLength(1);
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });
});

// Issue 17, item 4: requests abandoned before the upstream's 401 arrived kept their random key's quota
// state: 10,100 of them filled KEY_STATE_MAX_KEYS and a real key's recorded usage fell from 104 to 4.
describe('keys the upstream never confirmed', () => {
  const junk = (n: number, tag: string): string[] =>
    Array.from({ length: n }, (_, i) => `hst_live_${tag}_${i}_${Math.random().toString(36).slice(2)}`);

  it('leave no state in memory however their requests end (abandoned, refused, timed out)', async () => {
    const stack = await ownStack({ latencyMs: 30 }, { UPSTREAM_QUOTA_GUARD: 'on', KEY_STATE_MAX_KEYS: '100', CACHE_TTL_MS: '5000' });
    const first = await stack.gql('{ experiment(id: "exp_movie01") { name } e: experiments { totalCount } }');
    expect(first.body.extensions?.upstream?.rateLimit?.usedLastHour).toBe(2);
    stack.sim.stats.reset();
    // 150 requests whose caller goes away 10 ms in (the upstream answers in 30 ms), 10 answered 401.
    await Promise.all(junk(150, 'gone').map((key) => abandon(stack.url, key, 10)));
    await Promise.all(junk(10, 'refused').map((key) => stack.gql('{ experiment(id: "exp_movie01") { name } }', { key })));
    await settled(stack, 10);
    expect(stack.gateway.state.quota.size).toBe(1);
    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    expect(metrics).toContain('hsgql_key_state_entries{kind="quota"} 1');
    expect(metrics).toContain('hsgql_key_state_entries{kind="confirmed"} 1');
    expect(metrics).toContain('hsgql_key_state_entries{kind="refused"} 10');
    // The real key's usage is still what it spent.
    const again = await stack.gql('{ room(id: "room_movie01_001") { roomId } }');
    expect(again.body.extensions?.upstream?.rateLimit?.usedLastHour).toBe(3);
  });

  it('leave no state when the upstream does not answer in time, a real key included', async () => {
    const stack = await ownStack({ latencyMs: 400 }, { UPSTREAM_QUOTA_GUARD: 'on', OPERATION_DEADLINE_MS: '200' });
    const replies = await Promise.all(
      [FULL, ...junk(5, 'slow')].map((key) => stack.gql('{ experiment(id: "exp_movie01") { name } }', { key })),
    );
    expect(replies.map((r) => r.body.errors?.[0]?.extensions?.code)).toEqual(Array(6).fill('UPSTREAM_TIMEOUT'));
    expect(stack.gateway.state.quota.size).toBe(0);
    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    expect(metrics).toContain('hsgql_key_state_entries{kind="confirmed"} 0');
    // The real key's request that got no answer was still sent: it counts once the upstream confirms the key.
    stack.sim.configure({ latencyMs: 0 });
    const answered = await stack.gql('{ experiment(id: "exp_movie01") { name } }');
    expect(answered.body.data).toEqual({ experiment: { name: 'Movie Watching Study' } });
    expect(answered.body.extensions?.upstream?.rateLimit?.usedLastHour).toBe(2);
    expect(stack.gateway.state.quota.size).toBe(1);
  });

  describe('with Redis', () => {
    let redis: RedisServer;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(() => redis.stop());

    it('leave nothing in Redis: only confirmed keys have windows, generations and cached answers there', async () => {
      const stack = await ownStack({ latencyMs: 30 }, { UPSTREAM_QUOTA_GUARD: 'on', REDIS_URL: redis.url, CACHE_TTL_MS: '5000' });
      await stack.gql('{ experiment(id: "exp_movie01") { name } }');
      stack.sim.stats.reset();
      await Promise.all(junk(50, 'gone').map((key) => abandon(stack.url, key, 10)));
      await Promise.all(junk(10, 'refused').map((key) => stack.gql('{ experiment(id: "exp_movie01") { name } }', { key })));
      await settled(stack, 10);
      const labels = async () => new Set([...(await redis.keys()).keys()].map((k) => /\{([0-9a-f]+)\}/.exec(k)?.[1] ?? k));
      // The generation a lookup gave an unconfirmed key goes once its operation's reads have settled
      // (SharedReads.abandon, after the answer): on a busy machine that can take longer than `settled`.
      for (let i = 0; i < 100 && (await labels()).size > 1; i++) await delay(50);
      expect(await labels()).toEqual(new Set([keyHash(FULL)]));
    });
  });
});
