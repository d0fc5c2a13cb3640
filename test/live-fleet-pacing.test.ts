// Gateway processes sharing one Redis (test/helpers/fleet.ts): pacing across processes, and a leader whose polls
// take longer than its lease. (Redis faults: live-fleet-faults.test.ts.)
import { afterAll, describe, expect, it } from 'vitest';
import { useFleet, until, idsOf, LEASE_MS } from './helpers/fleet.ts';
import { delay } from './helpers/scripted.ts';

const fleet = useFleet();

describe('live pacing across processes sharing Redis', () => {
  afterAll(fleet.cleanup);

  it('counts the feeds every process leads for a key: two feeds led by two processes report the interval for two', async () => {
    // Half of 7200 an hour is one request a second: one feed every 1000 ms, two every 2000 ms.
    const [a, b] = await fleet.gatewayPair({ UPSTREAM_HOURLY_LIMIT: '7200', LIVE_MIN_INTERVAL_MS: '100' });
    const [r1, r2] = ['room_movie01_003', 'room_movie01_004'];
    const subA = await fleet.subscribe(a, r1, 'pace-a');
    const subB = await fleet.subscribe(b, r2, 'pace-b');
    await until(() => fleet.pollsOf(r1, 'pace-a') >= 1 && fleet.pollsOf(r2, 'pace-b') >= 1);
    await delay(2 * LEASE_MS);
    await fleet.write(r1, 1, 'pace');
    await fleet.write(r2, 1, 'pace');
    await subA.waitFor(1);
    await subB.waitFor(1);
    expect(subA.payloads.at(-1)?.extensions?.live).toEqual({ intervalMs: 2_000, pollers: 2, retrying: false });
    expect(subB.payloads.at(-1)?.extensions?.live).toEqual({ intervalMs: 2_000, pollers: 2, retrying: false });
  }, 60_000);
});

describe('a leader whose polls take longer than its lease', () => {
  afterAll(async () => {
    fleet.sim.configure({ latencyMs: 0 });
    await fleet.cleanup();
  });

  it('keeps the lease (renewed while a poll runs) and delivers what each poll found', async () => {
    const { gateway, prefix } = await fleet.gateway({ LIVE_LEASE_MS: '600' });
    const room = fleet.sim.live?.activeRooms()[0]?.roomId ?? '';
    const sub = await fleet.subscribe(gateway, room, 'slow');
    await until(() => fleet.pollsOf(room, 'slow') >= 1);
    // Every upstream answer now takes 900 ms: each poll outlasts the 600 ms lease.
    fleet.sim.configure({ latencyMs: 900 });
    const written = await fleet.write(room, 3, 'slow');
    await sub.waitFor(written.length, 20_000);
    expect(idsOf(sub)).toEqual(written);
    const lease = [...(await fleet.redis.keys()).keys()].filter((k) => k.startsWith(prefix) && k.includes(':lease:'));
    expect(lease).toHaveLength(1);
  }, 40_000);
});
