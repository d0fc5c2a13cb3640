import { MockAgent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { UpstreamClient } from '../src/upstream/client.ts';
import { UpstreamError } from '../src/upstream/errors.ts';
import { MINUTE_BUCKET_MS, QuotaTracker, WindowCounter } from '../src/state/quota.ts';
import { RateLimiter } from '../src/simulator/rate-limit.ts';
import { KeyGate } from '../src/upstream/key-gate.ts';
import { UpstreamSession } from '../src/upstream/session.ts';
import { ScopeMirror, SharedReads } from '../src/state/shared-reads.ts';

const refusal = (f: () => unknown): UpstreamError | null => {
  try {
    f();
    return null;
  } catch (error) {
    if (error instanceof UpstreamError) return error;
    throw error;
  }
};

describe('WindowCounter', () => {
  it('counts events of the last window in buckets, never fewer than there were', () => {
    const counter = new WindowCounter(1_000, 60_000);
    counter.add(500);
    counter.add(900);
    counter.add(30_000);
    expect(counter.count(30_000)).toBe(3);
    // The first bucket [0, 1000) counts until all of it is older than a minute.
    expect(counter.count(60_999)).toBe(3);
    expect(counter.untilDrop(60_999)).toBe(1);
    expect(counter.count(61_000)).toBe(1);
    expect(counter.count(91_000)).toBe(0);
    expect(counter.untilDrop(91_000)).toBe(0);
  });
});

describe('QuotaTracker under many distinct keys', () => {
  // Issue 9, item 1: before, once 10,000 keys had been seen, every new key's entry was pruned as soon as
  // it was created, so its requests went uncounted and the per-minute guard never refused.
  it('keeps counting a new key after 20,000 others', () => {
    let now = 1_000_000;
    const quota = new QuotaTracker({ perHour: 1000, perMinutePerEndpoint: 2 }, 0, () => now);
    for (let i = 0; i < 20_000; i++) quota.take(`key-${i}`, 'GET /experiments/:id');
    now += 1;
    quota.take('late', 'GET /experiments/:id');
    quota.take('late', 'GET /experiments/:id');
    expect(refusal(() => quota.take('late', 'GET /experiments/:id'))).toMatchObject({
      code: 'RATE_LIMITED',
      details: { source: 'gateway', reason: 'minute' },
    });
    expect(quota.state('late').usedLastHour).toBe(2);
  });

  it('counts the per-minute limit over the window it is given (UPSTREAM_MINUTE_WINDOW_MS) and one bucket more', () => {
    let now = 1_000_000;
    const quota = new QuotaTracker({ perHour: 1000, perMinutePerEndpoint: 2, minuteMs: 3_000 }, 0, () => now);
    quota.take('k', 'GET /a');
    quota.take('k', 'GET /a');
    expect(refusal(() => quota.take('k', 'GET /a'))).toMatchObject({ code: 'RATE_LIMITED', retryAfter: 5 });
    // The second's bucket of the first requests is still in the 3-second window and the bucket after it…
    now += 4_999;
    expect(refusal(() => quota.take('k', 'GET /a'))).toMatchObject({ code: 'RATE_LIMITED', retryAfter: 1 });
    // …and has left them.
    now += 1;
    expect(refusal(() => quota.take('k', 'GET /a'))).toBeNull();
    expect(quota.state('k').usedLastHour).toBe(3);
  });

  /**
   * Requests sent as soon as the tracker admits them (a paced table's pages), against the simulator's
   * limiter, whose fixed window starts at a request's arrival: 3 a window of 3 s per endpoint. The first
   * three leave late in their second (at 999 ms) and take 400 ms to arrive; the rest take 50 ms.
   */
  function paced(counter: (now: number) => boolean): { sent: number[]; refused: number } {
    const upstreamNow = { at: 0 };
    const upstream = new RateLimiter({ enabled: true, perHour: 1000, perMinute: 3, minuteMs: 3_000 }, () => upstreamNow.at);
    const sent: number[] = [];
    for (let now = 999; now <= 10_000; now++) while (sent.length < 9 && counter(now)) sent.push(now);
    const arrivals = sent.map((at) => at + (at < 1_000 ? 400 : 50)).sort((a, b) => a - b);
    let refused = 0;
    for (const at of arrivals) {
      upstreamNow.at = at;
      if (!upstream.take('key', 'GET /a').ok) refused++;
    }
    return { sent, refused };
  }

  it('admits the next requests a bucket after the upstream’s window of the first could end: no 429 when latencies differ', () => {
    let clock = 0;
    const quota = new QuotaTracker({ perHour: 1000, perMinutePerEndpoint: 3, minuteMs: 3_000 }, 0, () => clock);
    const admitted = (now: number): boolean => {
      clock = now;
      return refusal(() => quota.take('k', 'GET /a')) === null;
    };
    // The first bucket [0, 1000) leaves the count at 0 + 1000 + 3000 + 1000; the upstream's window of the
    // first three is [1399, 4399): the next three arrive at 5050, in a window of their own.
    expect(paced(admitted)).toEqual({ sent: [999, 999, 999, 5000, 5000, 5000, 10_000, 10_000, 10_000], refused: 0 });
    // Counted over the upstream's 3 s alone, the next three would leave at 4000 and arrive at 4050: 429s.
    const minuteOnly = new WindowCounter(MINUTE_BUCKET_MS, 3_000);
    const unwidened = (now: number): boolean => minuteOnly.count(now) < 3 && (minuteOnly.add(now), true);
    expect(paced(unwidened)).toEqual({ sent: [999, 999, 999, 4000, 4000, 4000, 8000, 8000, 8000], refused: 3 });
  });

  it('holds at most maxKeys keys, dropping the least recently active, never the one in use', () => {
    const now = 1_000_000;
    const quota = new QuotaTracker({ perHour: 1000, perMinutePerEndpoint: 1 }, 0, () => now, 1_000);
    quota.take('busy', 'GET /a');
    for (let i = 0; i < 5_000; i++) {
      quota.take(`key-${i}`, 'GET /a');
      // A key in use stays: each of these is refused because its first request was counted.
      expect(refusal(() => quota.take(`key-${i}`, 'GET /a'))?.code).toBe('RATE_LIMITED');
      if (i % 500 === 0) expect(refusal(() => quota.take('busy', 'GET /a'))?.code).toBe('RATE_LIMITED');
    }
    expect(quota.size).toBe(1_000);
    expect(quota.state('busy').usedLastHour).toBe(1);
    expect(quota.state('key-0').usedLastHour).toBe(0);
  });

  it('caps what it honours of a Retry-After at an hour', () => {
    let now = 0;
    const quota = new QuotaTracker(null, 0, () => now);
    quota.observe('k', { retryAfter: 999_999 });
    expect(quota.state('k').retryAfter).toBe(3600);
    now = 3_600_000;
    expect(refusal(() => quota.take('k', 'GET /a'))).toBeNull();
  });
});

describe('per-key state when random invalid keys arrive', () => {
  let agent: MockAgent | undefined;
  afterEach(async () => {
    await agent?.close();
    agent = undefined;
  });

  it('keeps nothing for keys the upstream refuses, and still guards a valid key', async () => {
    agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get('http://upstream.test');
    const unauthorized = { status: 'error', error: { code: 'UNAUTHORIZED', message: 'Invalid or expired API key' } };
    pool
      .intercept({ path: '/api/v3/experiments/e1', method: 'GET', headers: (h) => h['x-api-key'] !== 'hst_test_valid' })
      .reply(401, unauthorized)
      .persist();
    pool
      .intercept({ path: (p) => p.startsWith('/api/v3/experiments/e1'), method: 'GET', headers: { 'x-api-key': 'hst_test_valid' } })
      .reply(200, { status: 'success', data: [{ id: 'e1' }] })
      .persist();
    const defaults = loadConfig({});
    const client = new UpstreamClient({
      ...defaults.upstream,
      apiUrl: 'http://upstream.test/api/v3',
      timeoutMs: 5_000,
      connections: 8,
      maxKeys: defaults.maxKeys,
      dispatcher: agent,
      resilience: { ...defaults.upstream.resilience, retries: 0 },
    });
    const quota = new QuotaTracker({ perHour: 1000, perMinutePerEndpoint: 3 });
    const scopes = new ScopeMirror(60_000);
    const shared = new SharedReads({ ttlMs: 5_000, maxEntries: 100, maxBytes: 1_000_000 });
    const keys = new KeyGate({ maxKeys: 100, keyRefusalTtlMs: 60_000 });
    const deps = {
      client,
      shared,
      scopes,
      quota,
      keys,
      budget: 10,
      deadlineMs: 10_000,
      operationConcurrency: defaults.operationConcurrency,
    };
    try {
      for (let wave = 0; wave < 20; wave++) {
        await Promise.all(
          Array.from({ length: 100 }, async (_, i) => {
            const session = new UpstreamSession(deps, `hst_live_random_${wave}_${i}`, 'r');
            await expect(session.get('/experiments/e1')).rejects.toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
            session.end();
          }),
        );
      }
      expect([quota.size, scopes.size, shared.size, shared.inFlight]).toEqual([0, 0, 0, 0]);
      const valid = (): Promise<unknown> => {
        const session = new UpstreamSession(deps, 'hst_test_valid', 'r');
        return session.get(`/experiments/e1`, new URLSearchParams({ n: String(Math.random()) }));
      };
      for (let i = 0; i < 3; i++) await valid();
      await expect(valid()).rejects.toMatchObject({ code: 'RATE_LIMITED', details: { source: 'gateway' } });
    } finally {
      shared.close();
    }
  });
});
