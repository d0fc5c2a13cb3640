import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../src/upstream/envelope.ts';
import { UpstreamError } from '../src/upstream/errors.ts';
import { RedisSharedState } from '../src/state/redis.ts';
import { keyHash, SharedReads } from '../src/state/shared-reads.ts';
import { registerStateMetrics } from '../src/state/metrics.ts';
import type { SharedStateOptions } from '../src/state/state.ts';
import { proxyRedis, startRedis, type RedisServer } from './helpers/redis.ts';
import { delay } from './helpers/scripted.ts';

// Two RedisSharedState instances stand for two processes: they share nothing but the Redis server
// (each has its own connection, local tracker, mirror and memory cache), which is what is tested here.

const KEY = 'hst_test_redis_state_key';
const HASH = keyHash(KEY);
const ENDPOINT = 'GET /experiments/:id';

const OPTIONS: SharedStateOptions = {
  cache: { ttlMs: 60_000, maxEntries: 100, maxBytes: 1_000_000 },
  quota: { perHour: 1000, perMinutePerEndpoint: 5 },
  retryAfterMaxMs: 0,
  scopeCacheTtlMs: 60_000,
  maxKeys: 1_000,
  processes: 2,
};

function capture() {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

const envelope = (data: unknown, bytes = 100): Envelope => ({ data, metadata: {}, rateLimit: null, bytes });

/** What a call refused with, or null. */
async function refusal(call: () => unknown): Promise<UpstreamError | null> {
  try {
    await call();
    return null;
  } catch (error) {
    if (error instanceof UpstreamError) return error;
    throw error;
  }
}

let redis: RedisServer;
let prefixes = 0;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

/** Two "processes" on a prefix of their own (tests do not see each other's keys); the second logs nowhere. */
function pair(options: Partial<SharedStateOptions> = {}, timeoutMs = 2_000, probeMs = 100) {
  const prefix = `t${++prefixes}:`;
  const log = capture();
  const make = (logger: ReturnType<typeof capture>['logger']) =>
    new RedisSharedState({ ...OPTIONS, ...options }, { url: redis.url, keyPrefix: prefix, timeoutMs }, logger, { probeMs });
  const a = make(log.logger);
  const b = make(capture().logger);
  return { a, b, prefix, log, close: () => Promise.all([a.close(), b.close()]) };
}

/** Two processes' shared reads over one Redis, closed after `run`; `held` starts a read in B whose answer the test gives. */
async function twoReaders(
  run: (ctx: {
    readsA: SharedReads;
    readsB: SharedReads;
    prefix: string;
    held: () => { read: ReturnType<SharedReads['get']>; answer: (e: Envelope) => void };
  }) => Promise<void>,
): Promise<void> {
  const { a, b, prefix, close } = pair();
  const readsA = new SharedReads({ ...OPTIONS.cache, cache: a.cache });
  const readsB = new SharedReads({ ...OPTIONS.cache, cache: b.cache });
  const held = () => {
    let answer: (e: Envelope) => void = () => undefined;
    const read = readsB.get(HASH, '/x?', () => new Promise<Envelope>((resolve) => (answer = resolve)));
    return { read, answer: (e: Envelope) => answer(e) };
  };
  try {
    await run({ readsA, readsB, prefix, held });
  } finally {
    readsA.close();
    readsB.close();
    await close();
  }
}

describe('the quota in Redis', () => {
  it('counts and decides atomically: 40 concurrent requests over two processes, exactly the 5 a minute allows go', async () => {
    const { a, b, close } = pair();
    try {
      const outcomes = await Promise.all(
        Array.from({ length: 40 }, (_, i) => refusal(() => (i % 2 === 0 ? a : b).quota.take(HASH, ENDPOINT))),
      );
      expect(outcomes.filter((o) => o === null).length).toBe(5);
      const refused = outcomes.filter((o) => o !== null);
      expect(refused.length).toBe(35);
      expect(new Set(refused.map((r) => `${r?.code} ${String(r?.details.reason)}`))).toEqual(new Set(['RATE_LIMITED minute']));
      // Admission refuses the next one too, in either process; another endpoint has its own minute.
      expect((await refusal(() => a.quota.admit(HASH, ENDPOINT)))?.details).toEqual({ source: 'gateway', reason: 'minute' });
      expect(await refusal(() => b.quota.take(HASH, 'GET /experiments'))).toBeNull();
      expect(b.quota.state(HASH)).toEqual({ usedLastHour: 6, limitPerHour: 1000, upstreamRemaining: null, retryAfter: null });
    } finally {
      await close();
    }
  });

  it('shares a Retry-After: a 429 seen by one process blocks the key in the other', async () => {
    const { a, b, close } = pair({ retryAfterMaxMs: 2_000 });
    try {
      await a.quota.observe(HASH, { retryAfter: 30 });
      const blocked = await refusal(() => b.quota.admit(HASH, ENDPOINT));
      expect(blocked).toMatchObject({ code: 'RATE_LIMITED', retryAfter: 30, details: { source: 'gateway', reason: 'retry-after' } });
      expect(await refusal(() => b.quota.take(HASH, ENDPOINT))).toMatchObject({ details: { reason: 'retry-after' } });
      expect(b.quota.state(HASH).retryAfter).toBe(30);
      // A shorter Retry-After never shortens the block; another key is not blocked.
      await b.quota.observe(HASH, { retryAfter: 1 });
      expect((await refusal(() => a.quota.admit(HASH, ENDPOINT)))?.retryAfter).toBe(30);
      expect(await b.quota.admit(keyHash('another key'), ENDPOINT)).toBe(0);
    } finally {
      await close();
    }
  });

  it('waits out a short Retry-After another process was told', async () => {
    const { a, b, close } = pair({ retryAfterMaxMs: 2_000 });
    try {
      await a.quota.observe(HASH, { retryAfter: 1 });
      const wait = await b.quota.admit(HASH, ENDPOINT);
      expect(wait).toBeGreaterThan(500);
      expect(wait).toBeLessThanOrEqual(1_000);
    } finally {
      await close();
    }
  });
});

describe('the scope mirror in Redis', () => {
  it('answers FORBIDDEN in every process once one was refused a scope', async () => {
    const { a, b, close } = pair();
    try {
      const forbidden = new UpstreamError('Missing scope read:recordings', {
        code: 'FORBIDDEN',
        status: 403,
        upstreamCode: 'INSUFFICIENT_SCOPE',
        details: { required: ['read:recordings'], provided: ['read:events'] },
      });
      await a.scopes.learn(HASH, forbidden);
      expect(await refusal(() => b.scopes.check(HASH, 'read:recordings'))).toMatchObject({
        message: 'Missing scope read:recordings',
        code: 'FORBIDDEN',
        status: 403,
        upstreamCode: 'INSUFFICIENT_SCOPE',
        details: { required: ['read:recordings'], provided: ['read:events'], mirrored: true },
      });
      expect(await refusal(() => b.scopes.check(HASH, 'read:events'))).toBeNull();
      expect(await refusal(() => b.scopes.check(keyHash('another key'), 'read:recordings'))).toBeNull();
    } finally {
      await close();
    }
  });
});

describe('the response cache in Redis', () => {
  it('finds in one process what another cached, and after a write in either finds it in neither', async () => {
    const { a, b, close } = pair();
    const readsA = new SharedReads({ ...OPTIONS.cache, cache: a.cache });
    const readsB = new SharedReads({ ...OPTIONS.cache, cache: b.cache });
    try {
      const first = readsA.get(HASH, '/experiments/e1?', async () => envelope({ name: 'old' }, 1_234));
      expect([await first.how, (await first.envelope).data]).toEqual(['sent', { name: 'old' }]);
      await delay(50); // the store is not awaited by the reader
      const second = readsB.get(HASH, '/experiments/e1?', async () => envelope('unexpected'));
      expect([await second.how, await second.envelope]).toEqual(['cached', envelope({ name: 'old' }, 1_234)]);
      // B's memory now holds it: the next look-up asks Redis only for the generation.
      expect([readsB.size, readsB.bytes]).toEqual([1, 1_234 + `${HASH} /experiments/e1?`.length]);
      await readsA.invalidate(HASH);
      const third = readsB.get(HASH, '/experiments/e1?', async () => envelope({ name: 'new' }));
      expect([await third.how, (await third.envelope).data]).toEqual(['sent', { name: 'new' }]);
      await delay(50);
      const fourth = readsA.get(HASH, '/experiments/e1?', async () => envelope('unexpected'));
      expect([await fourth.how, (await fourth.envelope).data]).toEqual(['cached', { name: 'new' }]);
    } finally {
      readsA.close();
      readsB.close();
      await close();
    }
  });

  it("never joins a read in flight from before another process's write", () =>
    twoReaders(async ({ readsA, readsB, held }) => {
      const before = held();
      expect(await before.read.how).toBe('sent');
      // Before the write, an identical read of B joins it…
      expect(await readsB.get(HASH, '/x?', async () => envelope('unexpected')).how).toBe('coalesced');
      await readsA.invalidate(HASH);
      // …after A's write, it does not: it sees the new generation.
      const after = readsB.get(HASH, '/x?', async () => envelope('new'));
      expect([await after.how, (await after.envelope).data]).toEqual(['sent', 'new']);
      before.answer(envelope('old'));
      expect((await before.read.envelope).data).toBe('old');
      await delay(50);
      // The old answer was not stored over the new one.
      const later = readsA.get(HASH, '/x?', async () => envelope('unexpected'));
      expect([await later.how, (await later.envelope).data]).toEqual(['cached', 'new']);
    }));
});

describe('the response cache in Redis when the generation is gone', () => {
  it("never stores an answer from before a write, even when the write's generation was evicted meanwhile", () =>
    twoReaders(async ({ readsA, prefix, held }) => {
      const before = held();
      expect(await before.read.how).toBe('sent');
      await readsA.invalidate(HASH);
      // The write's generation is evicted (maxmemory) or deleted (the key refused somewhere) before the old answer arrives.
      await redis.client.del(`${prefix}{${HASH}}:g`);
      before.answer(envelope('old'));
      expect((await before.read.envelope).data).toBe('old');
      await delay(50);
      const later = readsA.get(HASH, '/x?', async () => envelope('new'));
      expect([await later.how, (await later.envelope).data]).toEqual(['sent', 'new']);
    }));
});

/** Redis's own clock (the scripts' `TIME`), in ms. */
async function redisNow(): Promise<number> {
  const [seconds, micros] = await redis.client.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

describe('when more requests would fit the hour (a table’s retryAfter)', () => {
  it('is read from the fleet’s hour window in Redis: when enough of its oldest minute buckets have left the hour', async () => {
    const { a, b, prefix, close } = pair({ quota: { perHour: 20, perMinutePerEndpoint: 100 } });
    try {
      const t0 = await redisNow();
      const minute = t0 - (t0 % 60_000);
      // 18 requests of the last hour: 8 thirty minutes ago, 6 ten minutes ago, 4 in this minute.
      const oldest = minute - 30 * 60_000;
      const middle = minute - 10 * 60_000;
      await redis.client.hset(`${prefix}{${HASH}}:q:h`, { [oldest]: 8, [middle]: 6, [minute]: 4 });
      // A bucket counts until all of it is older than the hour.
      const leaves = (start: number): number => start + 60_000 + 3_600_000;
      const asked = async (n: number, process: typeof a) => {
        const before = await redisNow();
        const ms = await process.quota.untilRoom(HASH, n);
        return { ms, before, after: await redisNow() };
      };
      expect(await a.quota.untilRoom(HASH, 2)).toBe(0);
      // 5 more fit once the 8 of thirty minutes ago have left (10 ≤ 15); 12 more once the 6 have too (4 ≤ 8).
      for (const [n, start, process] of [
        [5, oldest, a],
        [12, middle, b],
      ] as const) {
        const { ms, before, after } = await asked(n, process);
        expect(ms).toBeGreaterThanOrEqual(leaves(start) - after);
        expect(ms).toBeLessThanOrEqual(leaves(start) - before);
      }
      // More than the hour allows never fit.
      expect(await b.quota.untilRoom(HASH, 21)).toBeNull();
    } finally {
      await close();
    }
  });

  it('is the local tracker’s while Redis is down: the fleet’s last known hour, each request weighing the processes', async () => {
    const proxy = await proxyRedis(redis);
    const prefix = `t${++prefixes}:`;
    const a = new RedisSharedState(
      { ...OPTIONS, quota: { perHour: 20, perMinutePerEndpoint: 100 } },
      { url: proxy.url, keyPrefix: prefix, timeoutMs: 200 },
      capture().logger,
      { probeMs: 60_000 },
    );
    try {
      const t0 = await redisNow();
      await redis.client.hset(`${prefix}{${HASH}}:q:h`, { [t0 - (t0 % 60_000) - 30 * 60_000]: 15 });
      // Its verdict tells the process the fleet spent 16.
      await a.quota.take(HASH, ENDPOINT);
      const learnt = Date.now();
      expect(a.quota.state(HASH).usedLastHour).toBe(16);
      proxy.cut();
      await a.quota.take(HASH, ENDPOINT).catch(() => undefined);
      expect(a.status().redisUp).toBe(false);
      // Locally the 16 count as of when they were learnt (this minute): 2 requests weighing 2 processes
      // each fit once they leave the hour, not when the 15 of thirty minutes ago do.
      const ms = await a.quota.untilRoom(HASH, 2);
      const bucket = learnt - (learnt % 60_000);
      expect(ms).toBeGreaterThanOrEqual(bucket + 3_660_000 - Date.now());
      expect(ms).toBeLessThanOrEqual(bucket + 3_660_000 - learnt + 60_000);
      expect(await a.quota.untilRoom(HASH, 11)).toBeNull();
    } finally {
      await a.close();
      await proxy.close();
    }
  });
});

describe('catching Redis up', () => {
  it('also catches up what was written and sent while it was catching up, before it shares the state again', async () => {
    const proxy = await proxyRedis(redis);
    const prefix = `t${++prefixes}:`;
    const a = new RedisSharedState(
      { ...OPTIONS, quota: { perHour: 1000, perMinutePerEndpoint: 50 } },
      { url: proxy.url, keyPrefix: prefix, timeoutMs: 200 },
      capture().logger,
      { probeMs: 300 },
    );
    const reads = new SharedReads({ ...OPTIONS.cache, cache: a.cache });
    const generation = `${prefix}{${HASH}}:g`;
    try {
      await a.quota.take(HASH, ENDPOINT);
      expect(await reads.get(HASH, '/x?', async () => envelope('old')).how).toBe('sent');
      await delay(50);
      proxy.cut();
      await a.quota.take(HASH, ENDPOINT);
      expect(a.status().redisUp).toBe(false);
      proxy.restore();
      // Redis answers PING but holds its writes: the probe starts catching up and waits on its scripts.
      await redis.client.call('CLIENT', 'PAUSE', '1200', 'WRITE');
      await delay(600);
      expect(a.status().redisUp).toBe(false);
      const before = await redis.client.get(generation);
      // Meanwhile the key sends five requests and writes.
      for (let i = 0; i < 5; i++) await a.quota.take(HASH, ENDPOINT);
      await reads.invalidate(HASH);
      for (let i = 0; i < 80 && a.status().redisUp !== true; i++) await delay(50);
      expect(a.status().redisUp).toBe(true);
      expect(await redis.client.get(generation)).not.toBe(before);
      const after = reads.get(HASH, '/x?', async () => envelope('new'));
      expect([await after.how, (await after.envelope).data]).toEqual(['sent', 'new']);
      // 1 before the loss, 1 while lost, 5 while catching up.
      const hour = await redis.client.hgetall(`${prefix}{${HASH}}:q:h`);
      expect(Object.values(hour).reduce((n, v) => n + Number(v), 0)).toBe(7);
    } finally {
      reads.close();
      await a.close();
      await proxy.close();
    }
  });
});

describe('what Redis holds', () => {
  it('has a TTL on every key, and never an API key', async () => {
    const { a, b, prefix, close } = pair();
    const reads = new SharedReads({ ...OPTIONS.cache, cache: a.cache });
    try {
      await a.quota.take(HASH, ENDPOINT);
      await b.quota.observe(HASH, { retryAfter: 5 });
      await a.scopes.learn(
        HASH,
        new UpstreamError('Missing scope', { code: 'FORBIDDEN', status: 403, details: { required: ['read:chat'], provided: [] } }),
      );
      await reads.get(HASH, '/experiments/e1?', async () => envelope({ name: 'x' })).envelope;
      await reads.invalidate(HASH);
      await reads.get(HASH, '/experiments/e1?', async () => envelope({ name: 'y' })).envelope;
      await delay(50);
      const keys = [...(await redis.keys())].filter(([k]) => k.startsWith(prefix));
      expect(keys.map(([k]) => k.slice(prefix.length).replace(/c:[\w.]+:\w+$/, 'c:<generation>:<url digest>')).sort()).toEqual([
        `{${HASH}}:c:<generation>:<url digest>`,
        `{${HASH}}:c:<generation>:<url digest>`,
        `{${HASH}}:g`,
        `{${HASH}}:q:b`,
        `{${HASH}}:q:h`,
        `{${HASH}}:q:m:${ENDPOINT}`,
        `{${HASH}}:s:read:chat`,
      ]);
      for (const [key, ttl] of keys) {
        expect(ttl, key).toBeGreaterThan(0);
        expect(ttl, key).toBeLessThanOrEqual(3_660_000);
        expect(key).not.toContain(KEY);
        const type = await redis.client.type(key);
        const values = type === 'hash' ? Object.values(await redis.client.hgetall(key)) : [(await redis.client.get(key)) ?? ''];
        for (const value of values) expect(value).not.toContain(KEY);
      }
    } finally {
      reads.close();
      await close();
    }
  });
});

describe('Redis trouble', () => {
  it('falls back to local state (its share of what is left of the limits) when Redis dies, logs once per transition, counts it, and recovers by itself', async () => {
    const { a, close, log } = pair({ quota: { perHour: 1000, perMinutePerEndpoint: 6 } }, 200, 100);
    const registry = new Registry();
    registerStateMetrics(registry, a);
    const metric = async (line: string) =>
      Number(new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\d+)$`, 'm').exec(await registry.metrics())?.[1]);
    const reads = new SharedReads({ ...OPTIONS.cache, cache: a.cache });
    try {
      await a.quota.take(HASH, ENDPOINT);
      expect(await metric('hsgql_shared_state_redis_up')).toBe(1);
      expect(await metric('hsgql_quota_limit{window="minute"}')).toBe(6);
      await redis.kill();
      // Every call still answers: the quota from local state, with this process's share of what is left
      // (Redis last counted 1 of 6 this minute: ⌊5 / 2⌋ = 2 more)…
      const outcomes = [];
      for (let i = 0; i < 4; i++) outcomes.push((await refusal(() => a.quota.take(HASH, ENDPOINT)))?.details.reason ?? 'sent');
      expect(outcomes).toEqual(['sent', 'sent', 'minute', 'minute']);
      // …and the cache neither answers nor keeps anything: only Redis can say another process's write did not supersede it.
      expect((await reads.get(HASH, '/y?', async () => envelope('local')).envelope).data).toBe('local');
      const again = reads.get(HASH, '/y?', async () => envelope('upstream again'));
      expect([await again.how, (await again.envelope).data]).toEqual(['sent', 'upstream again']);
      expect(await metric('hsgql_shared_state_redis_up')).toBe(0);
      expect(await metric('hsgql_quota_limit{window="minute"}')).toBe(3);
      expect(await metric('hsgql_shared_state_transitions_total{to="down"}')).toBe(1);
      expect(await metric('hsgql_shared_state_fallbacks_total{part="quota"}')).toBeGreaterThanOrEqual(4);
      expect(await metric('hsgql_shared_state_fallbacks_total{part="cache"}')).toBe(2);
      await redis.start();
      for (let i = 0; i < 100 && a.status().redisUp !== true; i++) await delay(50);
      expect(a.status().redisUp).toBe(true);
      expect(await metric('hsgql_shared_state_transitions_total{to="up"}')).toBe(1);
      // The restarted (empty) Redis got back the minute as this process knew it (the one Redis counted before
      // and the two sent meanwhile): with the full limit again, 6 − 3 = 3 more may go.
      const after = [];
      for (let i = 0; i < 4; i++) after.push((await refusal(() => a.quota.take(HASH, ENDPOINT)))?.details.reason ?? 'sent');
      expect(after).toEqual(['sent', 'sent', 'sent', 'minute']);
      expect(log.lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([
        'Redis is unavailable: quota, cache and scope state fall back to this process until it answers again',
      ]);
      expect(log.lines.filter((l) => l.level === 30).map((l) => l.msg)).toEqual([
        'Redis answers again: quota, cache and scope state are shared through it again',
      ]);
    } finally {
      reads.close();
      await close();
    }
  });

  it('answers from local state when Redis is slow (a call past REDIS_TIMEOUT_MS); catching up never counts less, nor what Redis kept twice', async () => {
    const { a, b, close, log } = pair({}, 50, 100);
    try {
      await a.quota.take(HASH, ENDPOINT);
      await redis.client.call('CLIENT', 'PAUSE', '600', 'ALL');
      const started = performance.now();
      expect(await refusal(() => a.quota.take(HASH, ENDPOINT))).toBeNull();
      expect(performance.now() - started).toBeLessThan(400);
      expect(a.status().redisUp).toBe(false);
      for (let i = 0; i < 100 && a.status().redisUp !== true; i++) await delay(50);
      expect(a.status().redisUp).toBe(true);
      expect(log.lines.map((l) => l.level)).toEqual([40, 30]);
      // Redis kept its data. The request whose call timed out is counted twice: by Redis, which ran the call once
      // the pause ended, and by the catch-up (a call past the timeout may still run: counted twice, never missed).
      // Raising the window to the 1 + 1 that A knew of adds nothing: 3, and B's request makes 4.
      await b.quota.take(HASH, ENDPOINT);
      expect(b.quota.state(HASH).usedLastHour).toBe(4);
    } finally {
      await close();
    }
  });
});
