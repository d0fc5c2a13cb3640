// Gateway processes sharing one Redis (test/helpers/fleet.ts): a leader shutting down, and experiment activity
// carried on when the leader is killed. (Sharing a room's poller: live-fleet.test.ts.)
import { afterAll, describe, expect, it } from 'vitest';
import { useFleet, until, idsOf, EXP, LEASE_MS, INTERVAL_MS } from './helpers/fleet.ts';
import { type GatewayProcess } from './helpers/process.ts';
import { delay } from './helpers/scripted.ts';
import { subscribeSse, type SseSubscription } from './helpers/sse.ts';

const fleet = useFleet();

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
