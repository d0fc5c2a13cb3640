/**
 * Tables from the graph (issue 20): streamed at the floor of upstream requests, planned before the
 * first byte against the table budget and the key's hourly quota (`X-Dry-Run: 1` answers the plan),
 * paced within the per-minute limit.
 */
import { MockAgent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { quotaRefusal, QuotaTracker } from '../src/state/quota.ts';
import { keyHash, ScopeMirror, SharedReads } from '../src/state/shared-reads.ts';
import { loadConfig } from '../src/config.ts';
import { UpstreamClient } from '../src/upstream/client.ts';
import { KeyGate } from '../src/upstream/key-gate.ts';
import { UpstreamSession } from '../src/upstream/session.ts';
import { stackPerTest, startStack, type Stack } from './helpers/stack.ts';
import { startRedis } from './helpers/redis.ts';
import { FULL, READONLY } from './helpers/simulator.ts';
import { Duck, fetchTable } from './helpers/tables.ts';

const EXP = 'exp_movie01';
const NESTED = `{ experiment(id: "${EXP}") { rooms { edges { node { roomId participants { edges { node { participantId events { edges { node { id onset } } } } } } } } } } }`;

describe('planned before the first byte', () => {
  let stack: Stack;
  beforeAll(async () => {
    // 4 rooms × 5 participants × 200 events: 4,000 events, 4 pages at experiment scope.
    stack = await startStack(
      { rooms: 4, participantsPerRoom: 5, eventsPerParticipant: 200 },
      { UPSTREAM_QUOTA_GUARD: 'on', UPSTREAM_HOURLY_LIMIT: '20' },
    );
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('answers X-Dry-Run: 1 with the plan, at the cost of the requests that planned it', async () => {
    stack.sim.stats.reset();
    const reply = await fetchTable(stack.url, NESTED, { format: 'parquet', headers: { 'x-dry-run': '1' }, key: READONLY });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(JSON.parse(reply.text).extensions.table).toEqual({
      format: 'parquet',
      columns: [
        'experiment.rooms.roomId',
        'experiment.rooms.participants.participantId',
        'experiment.rooms.participants.events.id',
        'experiment.rooms.participants.events.onset',
      ],
      rows: 4000,
      requests: {
        total: 7,
        spent: 4,
        remaining: 3,
        byEndpoint: {
          'GET /experiments/:id': 1,
          'GET /data/rooms/experiment/:id': 1,
          'GET /data/participants/experiment/:id': 1,
          'GET /data/events/experiment/:id': 4,
        },
      },
      budget: 1000,
      quota: { left: 16, limitPerHour: 20 },
      fitsNow: true,
      retryAfter: 0,
      inMemory: null,
    });
    // The experiment, its rooms and participants, and the first page of events (which tells their total).
    expect(stack.sim.stats.total).toBe(4);
  });

  it('refuses a table past the key’s hourly quota before any row: 429 RATE_LIMITED saying what it needs, has, and when it would fit', async () => {
    const key = FULL;
    // 16 of the key's 20 requests go: the table plans with 4 more (20 spent), and needs 3 after them.
    for (let i = 0; i < 4; i++)
      await stack.gql(
        `{ experiment(id: "${EXP}") { rooms { edges { node { roomId } } } participants { totalCount } events(first: 1) { totalCount } } }`,
        { key, headers: { 'x-request-id': `spend-${i}` } },
      );
    stack.sim.stats.reset();
    const reply = await fetchTable(stack.url, NESTED, { format: 'csv', key });
    expect(reply.status).toBe(429);
    const error = JSON.parse(reply.text).errors[0];
    expect(error.extensions).toMatchObject({ code: 'RATE_LIMITED', needed: 3, left: 0, limitPerHour: 20 });
    const retryAfter = error.extensions.retryAfter as number;
    expect(retryAfter).toBeGreaterThan(3500);
    expect(retryAfter).toBeLessThanOrEqual(3660);
    expect(reply.headers.get('retry-after')).toBe(String(retryAfter));
    expect(error.message).toBe(
      `This table needs 3 more upstream requests; this key has 0 of its 20 left this hour: it would fit in ${retryAfter} s, as the key's requests of the last hour age out — or an export job (startExport) can take it`,
    );
    expect(stack.sim.stats.total).toBe(4);
  });
});

describe('planned against the fleet’s quota in Redis', () => {
  it('says when the table would fit from the hour window in Redis (its oldest minute buckets leaving the hour), not the hour’s bound', async () => {
    const redis = await startRedis();
    const stack = await startStack(
      { rooms: 4, participantsPerRoom: 5, eventsPerParticipant: 200 },
      // Generous REDIS_TIMEOUT_MS: on a busy machine a slow answer would turn the quota local (16 left, not 2).
      {
        UPSTREAM_QUOTA_GUARD: 'on',
        UPSTREAM_HOURLY_LIMIT: '20',
        REDIS_URL: redis.url,
        REDIS_KEY_PREFIX: 'tables:',
        REDIS_TIMEOUT_MS: '2000',
      },
    );
    try {
      const key = 'hst_test_demo_readonly';
      const [seconds, micros] = await redis.client.time();
      const t0 = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      // 14 requests of the fleet thirty minutes ago: planning takes 4 more (18 of 20), the table needs 3 after them.
      const oldest = t0 - (t0 % 60_000) - 30 * 60_000;
      await redis.client.hset(`tables:{${keyHash(key)}}:q:h`, { [oldest]: 14 });
      const reply = await fetchTable(stack.url, NESTED, { format: 'csv', headers: { 'x-dry-run': '1' }, key });
      const [s1, m1] = await redis.client.time();
      const t1 = Number(s1) * 1000 + Math.floor(Number(m1) / 1000);
      const plan = JSON.parse(reply.text).extensions.table;
      expect(plan).toMatchObject({
        rows: 4000,
        requests: { spent: 4, remaining: 3 },
        quota: { left: 2, limitPerHour: 20 },
        fitsNow: false,
      });
      // The 14 leave the hour when all of their minute bucket has: 3 more fit then (4 + 3 ≤ 20).
      const leaves = oldest + 60_000 + 3_600_000;
      expect(plan.retryAfter).toBeGreaterThanOrEqual(Math.ceil((leaves - t1) / 1000));
      expect(plan.retryAfter).toBeLessThanOrEqual(Math.ceil((leaves - t0) / 1000));
      const refused = await fetchTable(stack.url, NESTED, { format: 'csv', key });
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeLessThan(1900);
    } finally {
      await stack.close();
      await redis.stop();
    }
  });
});

describe('the table budget', () => {
  it('refuses a table that needs more than TABLE_BUDGET before any row (422 UPSTREAM_BUDGET_EXCEEDED), and a larger one than a key’s hour as such', async () => {
    const stack = await startStack({ rooms: 4, participantsPerRoom: 5, eventsPerParticipant: 200 }, { TABLE_BUDGET: '6' });
    try {
      const reply = await fetchTable(stack.url, NESTED, { format: 'csv' });
      expect(reply.status).toBe(422);
      expect(JSON.parse(reply.text).errors[0]).toEqual({
        message:
          'This table needs 3 more upstream requests after the 4 that planned it; a table may send 6 (TABLE_BUDGET): an export job (startExport) can take it',
        extensions: { code: 'UPSTREAM_BUDGET_EXCEEDED', needed: 7, budget: 6 },
      });
      const dry = await fetchTable(stack.url, NESTED, { format: 'csv', headers: { 'x-dry-run': '1' } });
      expect(JSON.parse(dry.text).extensions.table).toMatchObject({ fitsNow: false, retryAfter: null, quota: null, budget: 6 });
    } finally {
      await stack.close();
    }
  });
});

describe('streamed at the floor', () => {
  let stack: Stack;
  beforeAll(async () => {
    // 5 rooms × 4 participants × 500 events: 10,000 events, 10 pages at experiment scope.
    stack = await startStack(
      { rooms: 5, participantsPerRoom: 4, eventsPerParticipant: 500, latencyMs: 200 },
      { UPSTREAM_PAGE_CONCURRENCY: '2' },
    );
    await stack.gql(`{ experiment(id: "${EXP}") { name } }`);
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('sends its first byte long before the last page, and reads the pages at experiment scope with the context joined in memory', async () => {
    stack.sim.stats.reset();
    const res = await fetch(`${stack.url}/graphql?format=ndjson`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': FULL },
      body: JSON.stringify({ query: NESTED }),
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    // By the first chunk: the experiment, rooms, participants, the first page, and at most 2 pages ahead (+2 more read meanwhile).
    const atFirstByte = stack.sim.stats.total;
    expect(atFirstByte).toBeLessThanOrEqual(3 + 1 + 4);
    let text = new TextDecoder().decode(first.value);
    for (let next = await reader.read(); !next.done; next = await reader.read()) text += new TextDecoder().decode(next.value);
    expect(text.trim().split('\n')).toHaveLength(10_000);
    expect(stack.sim.stats.total).toBe(3 + 10);
    expect(stack.sim.stats.requests.filter((r) => r.path === `/api/v3/data/events/experiment/${EXP}`)).toHaveLength(10);
  });

  it('writes Parquet row groups as they fill (TABLE_PARQUET_ROW_GROUP_ROWS), read by DuckDB', async () => {
    const reply = await fetchTable(stack.url, NESTED, { format: 'parquet' });
    expect(reply.status).toBe(200);
    const duck = await Duck.open();
    try {
      const groups = await duck.read(
        reply.bytes,
        'parquet',
        (p) => `select distinct row_group_id, row_group_num_rows from parquet_metadata(${p}) order by 1`,
      );
      expect(groups.rows).toEqual([{ row_group_id: '0', row_group_num_rows: '10000' }]);
      const count = await duck.read(
        reply.bytes,
        'parquet',
        (p) => `select count(distinct "experiment.rooms.participants.events.id") as n from read_parquet(${p})`,
      );
      expect(count.rows).toEqual([{ n: '10000' }]);
    } finally {
      duck.close();
    }
  });

  it('reads one room’s listing when the parents are one room’s participants (lifted to the room, as the planner does)', async () => {
    stack.sim.stats.reset();
    const reply = await fetchTable(
      stack.url,
      `{ experiment(id: "${EXP}") { rooms(first: 1) { edges { node { participants { edges { node { participantId events { edges { node { id } } } } } } } } } } }`,
      { format: 'csv', headers: { 'x-dry-run': '1' } },
    );
    const plan = JSON.parse(reply.text).extensions.table;
    expect(plan.rows).toBe(2000);
    // The lookahead's first page at experiment scope, then the room's listing: 2 pages.
    expect(plan.requests.byEndpoint).toEqual({
      'GET /experiments/:id': 1,
      'GET /data/rooms/experiment/:id': 1,
      'GET /data/participants/experiment/:id': 1,
      'GET /data/events/experiment/:id': 1,
      'GET /data/events/room/:id': 2,
    });
  });
});

describe('paced within the per-minute limit', () => {
  let agent: MockAgent | undefined;
  afterEach(async () => {
    await agent?.close();
  });

  it('a table’s request the per-minute limit refuses waits for room rather than failing; another operation’s fails', async () => {
    agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get('http://upstream.test');
    pool
      .intercept({ path: '/api/v3/experiments/e1', method: 'GET' })
      .reply(200, { status: 'success', data: [{ id: 'e1' }], metadata: {} })
      .times(2);
    let refusals = 1;
    // The minute is full once (for about a second), then has room.
    class OnceFull extends QuotaTracker {
      override admit(hash: string, endpoint: string): number {
        if (refusals-- > 0) throw quotaRefusal('minute', 800, { perHour: 1000, perMinutePerEndpoint: 100 }, endpoint);
        return super.admit(hash, endpoint);
      }
    }
    const quota = new OnceFull({ perHour: 1000, perMinutePerEndpoint: 100 });
    const defaults = loadConfig({});
    const deps = {
      client: new UpstreamClient({
        ...defaults.upstream,
        apiUrl: 'http://upstream.test/api/v3',
        timeoutMs: 5_000,
        connections: 4,
        maxKeys: defaults.maxKeys,
        dispatcher: agent,
        resilience: { ...defaults.upstream.resilience, retries: 0 },
      }),
      shared: new SharedReads({ ttlMs: 0, maxEntries: 100, maxBytes: 1_000_000 }),
      scopes: new ScopeMirror(60_000),
      quota,
      keys: new KeyGate({ maxKeys: 100, keyRefusalTtlMs: 60_000 }),
      budget: 50,
      deadlineMs: 10_000,
      operationConcurrency: defaults.operationConcurrency,
    };
    const table = new UpstreamSession(deps, 'hst_test_k', 'table');
    table.widen({ budget: 50, deadlineMs: 10_000, pace: true });
    const started = Date.now();
    expect((await table.get('/experiments/e1')).data).toEqual([{ id: 'e1' }]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(table.cost.requests).toBe(1);
    refusals = 1;
    const other = new UpstreamSession(deps, 'hst_test_k', 'other');
    await expect(other.get('/experiments/e1')).rejects.toMatchObject({
      code: 'RATE_LIMITED',
      details: { source: 'gateway', reason: 'minute' },
    });
  });
});

describe('paced within the per-minute limit, over HTTP', () => {
  const ownStack = stackPerTest();

  it('a table needing more pages than the simulator’s per-minute limit allows waits for room, and every row arrives without a 429', async () => {
    // The simulator's "minute" is 2 s (--rate-limit-minute-ms) and lets 2 requests an endpoint in it; the
    // table reads 4 pages of events from one endpoint, so it needs two of its windows. The gateway paces by
    // a window of 2.5 s: the simulator starts a window when a request arrives, the gateway counts from when
    // it sends, and its 1 s buckets leave it a margin of 0–1 s; the half second more keeps a page sent at the
    // end of the gateway's window from arriving inside the simulator's.
    const stack = await ownStack(
      {
        rooms: 2,
        participantsPerRoom: 2,
        eventsPerParticipant: 1000,
        rateLimit: { enabled: true, perHour: 1000, perMinute: 2, minuteMs: 2_000 },
      },
      { UPSTREAM_QUOTA_GUARD: 'on', UPSTREAM_MINUTE_LIMIT: '2', UPSTREAM_MINUTE_WINDOW_MS: '2500' },
    );
    const reply = await fetchTable(stack.url, `{ experiment(id: "${EXP}") { events { edges { node { id } } } } }`, { format: 'csv' });
    const served = [...stack.sim.stats.requests];
    expect(reply.status).toBe(200);
    const ids = reply.text.trim().split('\r\n').slice(1);
    expect(ids).toHaveLength(4000);
    // Direct REST for comparison, its windows emptied before each page (these reads are not the test's).
    const direct: string[] = [];
    for (let offset = 0; offset < 4000; offset += 1000) {
      stack.sim.rateLimiter.reset();
      direct.push(...(await stack.rest(`/data/events/experiment/${EXP}?limit=1000&offset=${offset}`)).data.map((e) => String(e.id)));
    }
    expect(ids).toEqual(direct);
    // The upstream saw every page once and no 429; no more than 2 pages in any 2 s of its own clock.
    const pages = served.filter((r) => r.path === `/api/v3/data/events/experiment/${EXP}`);
    expect(served.map((r) => r.status)).toEqual(served.map(() => 200));
    expect(pages).toHaveLength(4);
    for (let i = 2; i < pages.length; i++)
      expect((pages[i] as { startedAt: number }).startedAt - (pages[i - 2] as { startedAt: number }).startedAt).toBeGreaterThanOrEqual(
        2_000,
      );
  });
});
