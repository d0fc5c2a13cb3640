import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { useFleet, until, idsOf, everythingIn, LEASE_MS, INTERVAL_MS } from './helpers/fleet.ts';
import { type GatewayProcess } from './helpers/process.ts';
import { delay } from './helpers/scripted.ts';
import { FULL } from './helpers/simulator.ts';
// Gateway processes sharing one Redis in front of the simulator (test/helpers/fleet.ts): one poller per
// feed in the fleet. A leader shutting down and experiment activity: live-fleet-handover.test.ts; the
// fault cases: live-fleet-faults.test.ts.

const fleet = useFleet();

describe('live pollers shared by two gateway processes through Redis', () => {
  afterEach(fleet.unsubscribe);
  afterAll(fleet.cleanup);

  // One pair for the tests that leave it running, started by the first of them; each test has a room of its own.
  let shared: Promise<{ a: GatewayProcess; b: GatewayProcess; prefix: string }> | null = null;
  const sharedPair = () => (shared ??= fleet.gatewayPair().then(([a, b]) => ({ a, b, prefix: `fleet${fleet.prefixes}:` })));

  /**
   * A subscriber in each process of `pair` to `room`: A's subscribed first and polls, B's follows A's
   * stream. Their request ids are `<tag>-a` and `<tag>-b`; the simulator's request log holds this
   * test's requests only.
   */
  async function twoSubscribers(pair: { a: GatewayProcess; b: GatewayProcess }, room: string, tag: string) {
    fleet.sim.stats.reset();
    const subA = await fleet.subscribe(pair.a, room, `${tag}-a`);
    await until(() => fleet.pollsOf(room, `${tag}-a`) >= 1);
    const subB = await fleet.subscribe(pair.b, room, `${tag}-b`);
    await delay(4 * INTERVAL_MS);
    return { subA, subB };
  }

  it('poll a room once for both: the upstream sees one poller, and both subscribers get each event once, in order', async () => {
    const room = fleet.sim.live?.activeRooms()[0]?.roomId ?? '';
    expect(room).not.toBe('');
    const pair = await sharedPair();
    const { subA, subB } = await twoSubscribers(pair, room, 'once');
    // B follows A's stream: one poller's requests, at least an interval apart, none of B's.
    const written = await fleet.write(room, 5, 'first');
    await subA.waitFor(5);
    await subB.waitFor(5);
    written.push(...(await fleet.write(room, 3, 'second')));
    await subA.waitFor(8);
    await subB.waitFor(8);
    await delay(2 * INTERVAL_MS);
    expect(idsOf(subA)).toEqual(written);
    expect(idsOf(subB)).toEqual(written);
    expect(fleet.pollsOf(room, 'once-b')).toBe(0);
    const metrics = await (await fetch(`${pair.b.url}/metrics`)).text();
    expect(metrics).toContain('hsgql_live_pollers{what="pollers"} 1');
    expect(metrics).toContain('hsgql_live_pollers{what="following"} 1');
    const starts = fleet.sim.stats.requests.filter((r) => r.path.endsWith(`/data/events/room/${room}`)).map((r) => r.startedAt);
    expect(starts.length).toBeGreaterThanOrEqual(5);
    for (let i = 1; i < starts.length; i++) expect((starts[i] ?? 0) - (starts[i - 1] ?? 0)).toBeGreaterThanOrEqual(INTERVAL_MS - 50);
  }, 60_000);

  it('keep no API key in Redis, neither in key names nor in values', async () => {
    const room = 'room_movie01_003';
    const { subB } = await twoSubscribers(await sharedPair(), room, 'keys');
    await fleet.write(room, 3, 'keys');
    await subB.waitFor(3);
    const text = await everythingIn(fleet.redis);
    expect(text).toContain('live:');
    expect(text).not.toContain(FULL);
  }, 60_000);

  it('carry on in the other process when the leader is killed: events written meanwhile arrive once, in order, within the lease', async () => {
    // A pair of its own: its leader is killed.
    const [a, b] = await fleet.gatewayPair();
    const room = 'room_movie01_004';
    const { subB } = await twoSubscribers({ a, b }, room, 'handover');
    const written = await fleet.write(room, 3, 'led');
    await subB.waitFor(3);
    a.proc.kill('SIGKILL');
    await a.exited;
    // Nobody polls until B's claim succeeds (the lease runs out first): these wait upstream.
    const meanwhile = await fleet.write(room, 4, 'orphaned');
    written.push(...meanwhile);
    await subB.waitFor(written.length, LEASE_MS + 2 * INTERVAL_MS + 5_000);
    written.push(...(await fleet.write(room, 2, 'after')));
    await subB.waitFor(written.length);
    await delay(2 * INTERVAL_MS);
    expect(idsOf(subB)).toEqual(written);
    expect(fleet.pollsOf(room, 'handover-b')).toBeGreaterThan(0);
  }, 60_000);

  it('stop polling upstream once nobody subscribes, give the lease up, and leave only keys with a TTL', async () => {
    const pair = await sharedPair();
    const { subA, subB } = await twoSubscribers(pair, 'room_movie01_001', 'stop');
    subA.close();
    subB.close();
    await delay(1_000);
    const before = fleet.sim.stats.total;
    await delay(1_000);
    expect(fleet.sim.stats.total).toBe(before);
    const keys = await fleet.redis.keys();
    const live = [...keys.keys()].filter((k) => k.startsWith(`${pair.prefix}live:`));
    expect(live.some((k) => k.includes(':lease:'))).toBe(false);
    for (const [key, ttl] of keys) expect({ key, ttl: ttl > 0 }).toEqual({ key, ttl: true });
  }, 30_000);
});
