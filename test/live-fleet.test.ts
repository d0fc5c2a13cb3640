import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { useFleet, until, idsOf, everythingIn, EXP, LEASE_MS, INTERVAL_MS } from './helpers/fleet.ts';
import { type GatewayProcess } from './helpers/process.ts';
import { delay } from './helpers/scripted.ts';
import { subscribeSse, type SseSubscription } from './helpers/sse.ts';
import { FULL } from './helpers/simulator.ts';
// Gateway processes sharing one Redis in front of the simulator (test/helpers/fleet.ts): one poller per
// feed in the fleet, handover, activity. The fault cases are in live-fleet-faults.test.ts.

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

describe('a leader shutting down', () => {
  afterAll(fleet.cleanup);

  it('gives its lease up at once (SIGTERM): another process takes the feed over before the lease would have run out', async () => {
    const [a, b] = await fleet.gatewayPair({ LIVE_LEASE_MS: '9000' });
    const room = 'room_movie01_001';
    const subA = await fleet.subscribe(a, room, 'term-a');
    await until(() => fleet.pollsOf(room, 'term-a') >= 1);
    const subB = await fleet.subscribe(b, room, 'term-b');
    await delay(4 * INTERVAL_MS);
    const leases = async (): Promise<string[]> =>
      [...(await fleet.redis.keys()).keys()].filter((k) => k.startsWith(`fleet${fleet.prefixes}:live:`) && k.includes(':lease:'));
    expect(await leases()).toHaveLength(1);
    await a.stop();
    expect(subA.completed).toBe(true);
    // Released, not expired (9 s): B takes it on its next claim, every 3 s.
    expect(await leases()).toHaveLength(0);
    const written = await fleet.write(room, 2, 'handover');
    await subB.waitFor(2, 20_000);
    expect(idsOf(subB)).toEqual(written);
    expect(fleet.pollsOf(room, 'term-b')).toBeGreaterThan(0);
  }, 60_000);
});

describe('experiment activity shared through Redis', () => {
  afterAll(fleet.cleanup);

  it('reaches both processes once each, and carries on from the last batch’s state when the leader is killed', async () => {
    const live = fleet.sim.live;
    if (!live) throw new Error('no live mode');
    const [a, b] = await fleet.gatewayPair();
    const query =
      'subscription($exp: ID!) { experimentActivity(experimentId: $exp) { type room { roomId } participant { participantId } } }';
    type Activity = {
      experimentActivity: { type: string; room: { roomId: string } | null; participant: { participantId: string } | null };
    };
    const open = async (g: GatewayProcess, requestId: string): Promise<SseSubscription<Activity>> => {
      const sub = await subscribeSse<Activity>(g.url, query, { variables: { exp: EXP }, headers: { 'x-request-id': requestId } });
      fleet.subs.push(sub);
      return sub;
    };
    const activityPolls = (requestId: string): number =>
      fleet.sim.stats.requests.filter((r) => r.path.includes(`/experiment/${EXP}`) && r.requestId?.startsWith(`${requestId}:`)).length;
    const subA = await open(a, 'act-a');
    await until(() => activityPolls('act-a') >= 4);
    const subB = await open(b, 'act-b');
    await delay(4 * INTERVAL_MS);
    const seen = (sub: SseSubscription<Activity>): string[] =>
      sub.payloads.map((p) => {
        const x = p.data?.experimentActivity;
        return `${x?.type} ${x?.participant?.participantId ?? x?.room?.roomId}`;
      });
    const want: string[] = [];
    const record = (changes: ReturnType<typeof live.tick>, roomId: string): void => {
      for (const c of changes) {
        if (c.roomId !== roomId) continue;
        if (c.kind === 'room-started') want.push(`ROOM_STARTED ${roomId}`);
        else if (c.kind === 'room-ended') want.push(`ROOM_ENDED ${roomId}`);
        else if (c.kind === 'participant-joined') want.push(`PARTICIPANT_JOINED ${c.participantId}`);
        else if (c.kind === 'participant-completed') want.push(`PARTICIPANT_COMPLETED ${c.participantId}`);
      }
    };
    const changes: ReturnType<typeof live.tick> = [];
    const stop = live.onChange((c) => changes.push(...c));
    const roomId = live.startRoom(EXP);
    live.tick(20);
    record(changes.splice(0), roomId);
    await subA.waitFor(want.length);
    await subB.waitFor(want.length);
    expect(activityPolls('act-b')).toBe(0);

    a.proc.kill('SIGKILL');
    await a.exited;
    live.tick(20);
    live.endRoom(roomId);
    stop();
    record(changes.splice(0), roomId);
    expect(want.some((w) => w.startsWith('ROOM_ENDED'))).toBe(true);
    await subB.waitFor(want.length, LEASE_MS + 10_000);
    await delay(3 * INTERVAL_MS);
    expect(seen(subA).sort()).toEqual(want.slice(0, subA.payloads.length).sort());
    expect(seen(subB).sort()).toEqual([...want].sort());
    expect(activityPolls('act-b')).toBeGreaterThan(0);
  }, 60_000);
});
