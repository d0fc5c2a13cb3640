import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../src/simulator/server.ts';
import { startGatewayProcess, type GatewayProcess } from './helpers/process.ts';
import { startRedis, type RedisServer } from './helpers/redis.ts';
import { delay } from './helpers/scripted.ts';
import { subscribeSse, type SseSubscription } from './helpers/sse.ts';
import { FULL } from './helpers/stack.ts';

// Gateway processes (src/main.ts, as npm start runs them) sharing one Redis, in front of the simulator
// in this process, whose request log says which subscription's poller sent each request (X-Request-Id).

const EXP = 'exp_movie01';
const LEASE_MS = 1_500;
const INTERVAL_MS = 300;
const FAST = {
  UPSTREAM_QUOTA_GUARD: 'on',
  UPSTREAM_HOURLY_LIMIT: '1000000',
  UPSTREAM_MINUTE_LIMIT: '1000000',
  LIVE_MIN_INTERVAL_MS: String(INTERVAL_MS),
  LIVE_LATE_MS: '600000',
  LIVE_LEASE_MS: String(LEASE_MS),
  CACHE_TTL_MS: '0',
  REPLICAS: '2',
  // Generous: on a busy machine a slow answer would turn the state local, which only one test is about.
  REDIS_TIMEOUT_MS: '2000',
};
const ROOM_EVENTS = `subscription($room: ID!) { roomEvents(roomId: $room) { id eventType } }`;
type Events = { roomEvents: { id: string; eventType: string } };

let redis: RedisServer;
let sim: Simulator;
let prefixes = 0;
const subs: SseSubscription[] = [];
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  sim = await startSimulator({
    rateLimit: { enabled: false, perHour: 1000, perMinute: 100 },
    live: { rate: 40, tickMs: 250, roomEveryMs: 0, paused: true },
  });
}, 30_000);

/** Ends the subscriptions and gateways started so far (after each group, so that none polls into the next). */
async function cleanup(): Promise<void> {
  for (const s of subs.splice(0)) s.close();
  await Promise.all(gateways.splice(0).map((g) => g.stop()));
}

afterAll(async () => {
  await cleanup();
  await sim?.close();
  await redis?.stop();
});

async function gatewayPair(env: Record<string, string> = {}): Promise<[GatewayProcess, GatewayProcess]> {
  const all = { ...FAST, HYPERSTUDY_API_URL: sim.url, REDIS_URL: redis.url, REDIS_KEY_PREFIX: `fleet${++prefixes}:`, ...env };
  const pair = await Promise.all([startGatewayProcess(all), startGatewayProcess(all)]);
  gateways.push(...pair);
  return pair;
}

async function subscribe(gateway: GatewayProcess, room: string, requestId: string): Promise<SseSubscription<Events>> {
  const sub = await subscribeSse<Events>(gateway.url, ROOM_EVENTS, { variables: { room }, headers: { 'x-request-id': requestId } });
  subs.push(sub);
  return sub;
}

/** Requests to a room's events listing, by the subscription whose poller sent them. */
const pollsOf = (room: string, requestId: string): number =>
  sim.stats.requests.filter((r) => r.path.endsWith(`/data/events/room/${room}`) && r.requestId?.startsWith(`${requestId}:`)).length;

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await delay(25)) if (await check()) return;
  throw new Error(`not within ${timeoutMs} ms`);
}

/** Writes `n` events to a room straight to the upstream; their ids in order. */
async function write(room: string, n: number, tag: string): Promise<string[]> {
  const participantId = String(
    (
      (await (await fetch(`${sim.url}/data/participants/room/${room}?limit=1`, { headers: { 'x-api-key': FULL } })).json()) as {
        data: { id: string }[];
      }
    ).data[0]?.id,
  );
  const events = Array.from({ length: n }, (_, i) => ({
    experimentId: EXP,
    roomId: room,
    participantId,
    eventType: `custom.${tag}_${i}`,
    timestamp: new Date(Date.now() + i).toISOString(),
  }));
  const res = await fetch(`${sim.url}/data/events/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': FULL },
    body: JSON.stringify({ events }),
  });
  return ((await res.json()) as { data: { eventIds: string[] }[] }).data[0]?.eventIds ?? [];
}

const idsOf = (sub: SseSubscription<Events>): (string | undefined)[] => sub.payloads.map((p) => p.data?.roomEvents.id);

/** Every value Redis holds (strings, hashes, sorted sets, streams) and every key name, as one text. */
async function everythingIn(r: RedisServer): Promise<string> {
  const parts: string[] = [];
  for (const key of await r.client.keys('*')) {
    parts.push(key);
    const type = await r.client.type(key);
    if (type === 'string') parts.push(String(await r.client.get(key)));
    else if (type === 'hash') parts.push(JSON.stringify(await r.client.hgetall(key)));
    else if (type === 'zset') parts.push(JSON.stringify(await r.client.zrange(key, 0, -1)));
    else if (type === 'stream') parts.push(JSON.stringify(await r.client.xrange(key, '-', '+')));
    else parts.push(`<${type}>`);
  }
  return parts.join('\n');
}

describe('live pollers shared by two gateway processes through Redis', () => {
  afterAll(cleanup);

  let a: GatewayProcess;
  let b: GatewayProcess;
  let room = '';
  let subA: SseSubscription<Events>;
  let subB: SseSubscription<Events>;
  const written: string[] = [];

  beforeAll(async () => {
    [a, b] = await gatewayPair();
    room = sim.live?.activeRooms()[0]?.roomId ?? '';
  }, 60_000);

  it('poll a room once for both: the upstream sees one poller, and both subscribers get each event once, in order', async () => {
    expect(room).not.toBe('');
    subA = await subscribe(a, room, 'sub-a');
    await until(() => pollsOf(room, 'sub-a') >= 1);
    subB = await subscribe(b, room, 'sub-b');
    // B follows A's stream: one poller's requests, at least an interval apart, none of B's.
    await delay(4 * INTERVAL_MS);
    written.push(...(await write(room, 5, 'first')));
    await subA.waitFor(5);
    await subB.waitFor(5);
    written.push(...(await write(room, 3, 'second')));
    await subA.waitFor(8);
    await subB.waitFor(8);
    await delay(2 * INTERVAL_MS);
    expect(idsOf(subA)).toEqual(written);
    expect(idsOf(subB)).toEqual(written);
    expect(pollsOf(room, 'sub-b')).toBe(0);
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    expect(metrics).toContain('hsgql_live_pollers{what="pollers"} 1');
    expect(metrics).toContain('hsgql_live_pollers{what="following"} 1');
    const starts = sim.stats.requests.filter((r) => r.path.endsWith(`/data/events/room/${room}`)).map((r) => r.startedAt);
    expect(starts.length).toBeGreaterThanOrEqual(5);
    for (let i = 1; i < starts.length; i++) expect((starts[i] ?? 0) - (starts[i - 1] ?? 0)).toBeGreaterThanOrEqual(INTERVAL_MS - 50);
  }, 60_000);

  it('keep no API key in Redis, neither in key names nor in values', async () => {
    const text = await everythingIn(redis);
    expect(text).toContain('live:');
    expect(text).not.toContain(FULL);
  });

  it('carry on in the other process when the leader is killed: events written meanwhile arrive once, in order, within the lease', async () => {
    a.proc.kill('SIGKILL');
    await a.exited;
    // Nobody polls until B's claim succeeds (the lease runs out first): these wait upstream.
    const meanwhile = await write(room, 4, 'orphaned');
    written.push(...meanwhile);
    await subB.waitFor(written.length, LEASE_MS + 2 * INTERVAL_MS + 5_000);
    written.push(...(await write(room, 2, 'after')));
    await subB.waitFor(written.length);
    await delay(2 * INTERVAL_MS);
    expect(idsOf(subB)).toEqual(written);
    expect(pollsOf(room, 'sub-b')).toBeGreaterThan(0);
  }, 60_000);

  it('stop polling upstream once nobody subscribes, give the lease up, and leave only keys with a TTL', async () => {
    subA.close();
    subB.close();
    await delay(1_000);
    const before = sim.stats.total;
    await delay(1_000);
    expect(sim.stats.total).toBe(before);
    const keys = await redis.keys();
    const live = [...keys.keys()].filter((k) => k.startsWith(`fleet${prefixes}:live:`));
    expect(live.some((k) => k.includes(':lease:'))).toBe(false);
    for (const [key, ttl] of keys) expect({ key, ttl: ttl > 0 }).toEqual({ key, ttl: true });
  }, 30_000);
});

describe('a leader shutting down', () => {
  afterAll(cleanup);

  it('gives its lease up at once (SIGTERM): another process takes the feed over before the lease would have run out', async () => {
    const [a, b] = await gatewayPair({ LIVE_LEASE_MS: '9000' });
    const room = 'room_movie01_001';
    const subA = await subscribe(a, room, 'term-a');
    await until(() => pollsOf(room, 'term-a') >= 1);
    const subB = await subscribe(b, room, 'term-b');
    await delay(4 * INTERVAL_MS);
    const leases = async (): Promise<string[]> =>
      [...(await redis.keys()).keys()].filter((k) => k.startsWith(`fleet${prefixes}:live:`) && k.includes(':lease:'));
    expect(await leases()).toHaveLength(1);
    await a.stop();
    expect(subA.completed).toBe(true);
    // Released, not expired (9 s): B takes it on its next claim, every 3 s.
    expect(await leases()).toHaveLength(0);
    const written = await write(room, 2, 'handover');
    await subB.waitFor(2, 20_000);
    expect(idsOf(subB)).toEqual(written);
    expect(pollsOf(room, 'term-b')).toBeGreaterThan(0);
  }, 60_000);
});

describe('experiment activity shared through Redis', () => {
  afterAll(cleanup);

  it('reaches both processes once each, and carries on from the last batch’s state when the leader is killed', async () => {
    const live = sim.live;
    if (!live) throw new Error('no live mode');
    const [a, b] = await gatewayPair();
    const query =
      'subscription($exp: ID!) { experimentActivity(experimentId: $exp) { type room { roomId } participant { participantId } } }';
    type Activity = {
      experimentActivity: { type: string; room: { roomId: string } | null; participant: { participantId: string } | null };
    };
    const open = async (g: GatewayProcess, requestId: string): Promise<SseSubscription<Activity>> => {
      const sub = await subscribeSse<Activity>(g.url, query, { variables: { exp: EXP }, headers: { 'x-request-id': requestId } });
      subs.push(sub);
      return sub;
    };
    const activityPolls = (requestId: string): number =>
      sim.stats.requests.filter((r) => r.path.includes(`/experiment/${EXP}`) && r.requestId?.startsWith(`${requestId}:`)).length;
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

describe('live pollers when Redis goes away', () => {
  afterAll(cleanup);

  it('keep both processes’ subscribers getting each new event once while Redis is down, and after it is back', async () => {
    const [a, b] = await gatewayPair();
    const room = 'room_movie01_001';
    const subA = await subscribe(a, room, 'down-a');
    await until(() => pollsOf(room, 'down-a') >= 1);
    const subB = await subscribe(b, room, 'down-b');
    await delay(4 * INTERVAL_MS);
    const written = await write(room, 3, 'before');
    await subA.waitFor(3);
    await subB.waitFor(3);

    await redis.kill();
    written.push(...(await write(room, 3, 'down')));
    await subA.waitFor(written.length);
    await subB.waitFor(written.length);
    // Each process polls for itself meanwhile.
    await until(() => pollsOf(room, 'down-b') > 0);

    await redis.start();
    await delay(3 * LEASE_MS);
    written.push(...(await write(room, 3, 'back')));
    await subA.waitFor(written.length);
    await subB.waitFor(written.length);
    await delay(3 * INTERVAL_MS);
    expect(idsOf(subA)).toEqual(written);
    expect(idsOf(subB)).toEqual(written);
    // Elected again: one poller.
    const polls = (): [number, number] => [pollsOf(room, 'down-a'), pollsOf(room, 'down-b')];
    const [a0, b0] = polls();
    await delay(6 * INTERVAL_MS);
    const [a1, b1] = polls();
    expect([a1 > a0, b1 > b0].filter(Boolean)).toHaveLength(1);
    for (const g of [a, b]) {
      const lines = g.lines().map((l) => l.msg);
      expect(lines.filter((m) => typeof m === 'string' && m.startsWith('Redis is unavailable'))).toHaveLength(1);
    }
  }, 90_000);
});

describe('live pollers when every connection to Redis drops for a moment', () => {
  afterAll(cleanup);

  it('keep each subscriber getting each event once, in order, while the processes poll for themselves and after they elect again', async () => {
    const [a, b] = await gatewayPair();
    const room = 'room_movie01_003';
    const subA = await subscribe(a, room, 'blink-a');
    await until(() => pollsOf(room, 'blink-a') >= 1);
    const subB = await subscribe(b, room, 'blink-b');
    await delay(4 * INTERVAL_MS);
    const written = await write(room, 2, 'before');
    await subA.waitFor(2);
    await subB.waitFor(2);
    // The stream and the lease stay; both processes lose Redis until their probe reconnects (1 s).
    await redis.client.client('KILL', 'TYPE', 'normal');
    written.push(...(await write(room, 2, 'blink')));
    await subA.waitFor(written.length);
    await subB.waitFor(written.length);
    await delay(3 * LEASE_MS);
    for (let round = 0; round < 3; round++) {
      written.push(...(await write(room, 2, `after${round}`)));
      await subA.waitFor(written.length);
      await subB.waitFor(written.length);
    }
    await delay(3 * INTERVAL_MS);
    expect(idsOf(subA)).toEqual(written);
    expect(idsOf(subB)).toEqual(written);
    for (const g of [a, b]) {
      const said = g.lines().map((l) => String(l.msg));
      expect(said.filter((m) => m.startsWith('Redis is unavailable'))).toHaveLength(1);
      expect(said.filter((m) => m.startsWith('Redis answers again'))).toHaveLength(1);
    }
    // Elected again: the leader's state entry says that it polled for itself meanwhile.
    const [stream = ''] = [...(await redis.keys()).keys()].filter((k) => k.startsWith(`fleet${prefixes}:live:`) && k.includes(':stream:'));
    const entries = await redis.client.xrange(stream, '-', '+');
    expect(entries.some(([, fields]) => fields[fields.indexOf('r') + 1] === '1')).toBe(true);
  }, 60_000);
});

describe('live pacing across processes sharing Redis', () => {
  afterAll(cleanup);

  it('counts the feeds every process leads for a key: two feeds led by two processes report the interval for two', async () => {
    // Half of 7200 an hour is one request a second: one feed every 1000 ms, two every 2000 ms.
    const [a, b] = await gatewayPair({ UPSTREAM_HOURLY_LIMIT: '7200', LIVE_MIN_INTERVAL_MS: '100' });
    const [r1, r2] = ['room_movie01_003', 'room_movie01_004'];
    const subA = await subscribe(a, r1, 'pace-a');
    const subB = await subscribe(b, r2, 'pace-b');
    await until(() => pollsOf(r1, 'pace-a') >= 1 && pollsOf(r2, 'pace-b') >= 1);
    await delay(2 * LEASE_MS);
    await write(r1, 1, 'pace');
    await write(r2, 1, 'pace');
    await subA.waitFor(1);
    await subB.waitFor(1);
    expect(subA.payloads.at(-1)?.extensions?.live).toEqual({ intervalMs: 2_000, pollers: 2, retrying: false });
    expect(subB.payloads.at(-1)?.extensions?.live).toEqual({ intervalMs: 2_000, pollers: 2, retrying: false });
  }, 60_000);
});

describe('a leader whose polls take longer than its lease', () => {
  afterAll(async () => {
    sim.configure({ latencyMs: 0 });
    await cleanup();
  });

  it('keeps the lease (renewed while a poll runs) and delivers what each poll found', async () => {
    const env = {
      ...FAST,
      HYPERSTUDY_API_URL: sim.url,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: `fleet${++prefixes}:`,
      LIVE_LEASE_MS: '600',
    };
    const gateway = await startGatewayProcess(env);
    gateways.push(gateway);
    const room = sim.live?.activeRooms()[0]?.roomId ?? '';
    const sub = await subscribe(gateway, room, 'slow');
    await until(() => pollsOf(room, 'slow') >= 1);
    // Every upstream answer now takes 900 ms: each poll outlasts the 600 ms lease.
    sim.configure({ latencyMs: 900 });
    const written = await write(room, 3, 'slow');
    await sub.waitFor(written.length, 20_000);
    expect(idsOf(sub)).toEqual(written);
    const lease = [...(await redis.keys()).keys()].filter((k) => k.startsWith(env.REDIS_KEY_PREFIX) && k.includes(':lease:'));
    expect(lease).toHaveLength(1);
  }, 40_000);
});
