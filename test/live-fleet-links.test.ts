import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OFFLINE, type FleetEntry, type RedisFleet } from '../src/live/fleet.ts';
import { RedisSharedState } from '../src/state/redis.ts';
import { startRedis, type RedisServer } from './helpers/redis.ts';
import { delay } from './helpers/scripted.ts';

// The fleet's links in one process against a real redis-server: what one poller's link does must not
// undo another's of the same feed.

let redis: RedisServer;
let state: RedisSharedState;
let fleet: RedisFleet;

beforeAll(async () => {
  redis = await startRedis();
  state = new RedisSharedState(
    {
      cache: { ttlMs: 0, maxEntries: 10, maxBytes: 10_000 },
      quota: null,
      retryAfterMaxMs: 0,
      scopeCacheTtlMs: 0,
      maxKeys: 10,
      processes: 1,
    },
    { url: redis.url, keyPrefix: 'links:', timeoutMs: 2_000 },
    pino({ level: 'silent' }),
  );
  fleet = state.fleet({ leaseMs: 1_500 });
}, 30_000);

afterAll(async () => {
  await fleet?.close();
  await state?.close();
  await redis?.stop();
});

describe('two links of one feed in one process', () => {
  it("an old poller's unfollow or release leaves the new poller following the stream", async () => {
    const old = fleet.link('hash', null, 'feed', 1);
    const now = fleet.link('hash', null, 'feed', 1);
    const leader = fleet.link('hash', null, 'feed', 1);
    const got: FleetEntry[] = [];
    old.follow(
      () => '0-0',
      () => undefined,
    );
    now.follow(
      () => got.at(-1)?.id ?? '0-0',
      (entries) => got.push(...entries),
    );
    // The old poller stops after the new one started following (as when it was stopped mid-takeover).
    old.unfollow();
    await old.release();
    expect(await leader.claim()).toBe(true);
    const id = await leader.append([{ id: 'e1' }], { cursor: 1 });
    expect(id).not.toBe(OFFLINE);
    for (let i = 0; i < 200 && got.length === 0; i++) await delay(10);
    expect(got.map((e) => e.items)).toEqual([[{ id: 'e1' }]]);
    now.unfollow();
    await leader.release();
  });
});
