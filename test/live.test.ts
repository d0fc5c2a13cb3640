import { Writable } from 'node:stream';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { LiveChange } from '../src/simulator/live.ts';
import { startStack, type Stack } from './helpers/stack.ts';
import { EVENTS_ONLY, FULL, READONLY, OTHER } from './helpers/simulator.ts';
import { FAST_LIVE, PAUSED_LIVE } from './helpers/live.ts';
import { subscribeSse, type SseSubscription } from './helpers/sse.ts';
import { NOT_TRUSTED, ONLY_TRUSTED } from '../src/plugins/use-trusted-documents.ts';

const EXP = 'exp_movie01';

let stack: Stack | null = null;
const subs: SseSubscription[] = [];
afterEach(async () => {
  for (const s of subs.splice(0)) s.close();
  await stack?.close();
  stack = null;
});

async function start(env: Record<string, string> = {}): Promise<Stack> {
  stack = await startStack({ live: PAUSED_LIVE }, { ...FAST_LIVE, ...env });
  return stack;
}

const ROOM_EVENTS = `subscription($room: ID!) { roomEvents(roomId: $room) { id timestamp eventType roomId } }`;

/** The live records the simulator appended to a room, by type, in the order it appended them. */
function appended(changes: readonly LiveChange[], roomId: string, type: string): string[] {
  return changes.flatMap((c) => (c.kind === 'record' && c.roomId === roomId && c.type === type ? [c.id] : []));
}

/** Waits until the simulator has served `n` requests to paths containing `part`. */
async function requestsTo(s: Stack, part: string, n: number): Promise<void> {
  for (let i = 0; i < 200 && s.sim.stats.requests.filter((r) => r.path.includes(part)).length < n; i++)
    await new Promise((r) => setTimeout(r, 25));
}

describe('subscriptions', () => {
  it('delivers each new event of a room once, in order, shared timestamps and late records included', async () => {
    const s = await start();
    const room = s.sim.live?.activeRooms()[0]?.roomId ?? '';
    expect(room).not.toBe('');
    const sub = await subscribeSse<{ roomEvents: { id: string; timestamp: string; roomId: string } }>(s.url, ROOM_EVENTS, {
      variables: { room },
    });
    subs.push(sub);
    await requestsTo(s, `/data/events/room/${room}`, 1);
    const changes = s.sim.live?.tick(20) ?? [];
    const expected = appended(changes, room, 'events');
    expect(expected.length).toBeGreaterThan(5);
    expect(changes.some((c) => c.kind === 'record' && c.roomId === room && c.type === 'events' && c.shared)).toBe(true);
    await sub.waitFor(expected.length);
    const got = sub.payloads.map((p) => p.data?.roomEvents.id);
    expect(new Set(got).size).toBe(got.length);
    expect(new Set(got)).toEqual(new Set(expected));
    expect(sub.payloads.every((p) => p.data?.roomEvents.roomId === room)).toBe(true);
    // In the upstream's order (all arrived before one poll): as the room's listing has them.
    const listing = (
      await s.rest(`/data/events/room/${room}?sort=timestamp&limit=1000&startTime=${new Date(Date.now() - 3_600_000).toISOString()}`)
    ).data;
    expect(got).toEqual(listing.map((r) => r.id).filter((id) => expected.includes(String(id))));
    expect(sub.payloads[0]?.extensions?.live).toEqual({ intervalMs: 100, pollers: 1, retrying: false });
  });

  it('serves 10 subscribers of one key and room with one poller: the upstream sees what one costs', async () => {
    const s = await start({ LIVE_MIN_INTERVAL_MS: '300' });
    const room = s.sim.live?.activeRooms()[0]?.roomId ?? '';
    const many = await Promise.all(
      Array.from({ length: 10 }, () => subscribeSse<{ roomEvents: { id: string } }>(s.url, ROOM_EVENTS, { variables: { room } })),
    );
    subs.push(...many);
    await requestsTo(s, `/data/events/room/${room}`, 1);
    expect(s.gateway.live.size).toBe(1);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toContain('hsgql_live_pollers{what="pollers"} 1');
    expect(metrics).toContain('hsgql_live_pollers{what="subscribers"} 10');
    const expected = appended(s.sim.live?.tick(8) ?? [], room, 'events');
    for (const sub of many) await sub.waitFor(expected.length);
    for (const sub of many)
      expect(sub.payloads.map((p) => p.data?.roomEvents.id)).toEqual(many[0]?.payloads.map((p) => p.data?.roomEvents.id));
    // One baseline, then one poll per interval whoever listens: polls at least an interval apart.
    const starts = s.sim.stats.requests.filter((r) => r.path.endsWith(`/data/events/room/${room}`)).map((r) => r.startedAt);
    expect(starts.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < starts.length; i++) expect((starts[i] ?? 0) - (starts[i - 1] ?? 0)).toBeGreaterThanOrEqual(250);
    expect(many[0]?.payloads[0]?.extensions?.live).toEqual({ intervalMs: 300, pollers: 1, retrying: false });
  });

  it('stops polling upstream when the last subscriber leaves', async () => {
    const s = await start();
    const room = s.sim.live?.activeRooms()[0]?.roomId ?? '';
    const a = await subscribeSse(s.url, ROOM_EVENTS, { variables: { room } });
    const b = await subscribeSse(s.url, ROOM_EVENTS, { variables: { room } });
    subs.push(a, b);
    await requestsTo(s, `/data/events/room/${room}`, 3);
    a.close();
    await new Promise((r) => setTimeout(r, 300));
    expect(s.gateway.live.size).toBe(1);
    b.close();
    for (let i = 0; i < 100 && s.gateway.live.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(s.gateway.live.size).toBe(0);
    const before = s.sim.stats.total;
    await new Promise((r) => setTimeout(r, 600));
    expect(s.sim.stats.total).toBe(before);
  });

  it('fails at once with FORBIDDEN when the key lacks the scope, and keeps no poller', async () => {
    const s = await start();
    const room = s.sim.live?.activeRooms()[0]?.roomId ?? '';
    const sub = await subscribeSse(s.url, 'subscription($room: ID!) { roomChatMessages(roomId: $room) { messageId } }', {
      key: EVENTS_ONLY,
      variables: { room },
    });
    subs.push(sub);
    await sub.waitFor(1);
    expect(sub.payloads[0]?.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(s.gateway.live.size).toBe(0);
    const none = await subscribeSse(s.url, ROOM_EVENTS, { key: null, variables: { room } });
    subs.push(none);
    await none.waitFor(1);
    expect(none.payloads[0]?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('subscriptions within the quota', () => {
  it('slow down with a small hourly limit, sharing the live half between pollers, and leave the rest to queries', async () => {
    const s = await start({ UPSTREAM_HOURLY_LIMIT: '40', LIVE_QUOTA_SHARE: '0.5' });
    const rooms = s.sim.live?.activeRooms().map((r) => r.roomId) ?? [];
    expect(rooms.length).toBeGreaterThanOrEqual(1);
    const one = await subscribeSse(s.url, ROOM_EVENTS, { variables: { room: rooms[0] } });
    subs.push(one);
    await requestsTo(s, '/data/events/room/', 1);
    // 20 live requests an hour for the key: one poller polls every 3 minutes…
    expect(s.gateway.live.pollers().map((p) => p.status.intervalMs)).toEqual([180_000]);
    const two = await subscribeSse(s.url, 'subscription($room: ID!) { roomChatMessages(roomId: $room) { messageId } }', {
      variables: { room: rooms[0] },
    });
    subs.push(two);
    await requestsTo(s, '/data/chat/room/', 1);
    // …and two share them: every 6 minutes each.
    expect(s.gateway.live.pollers().map((p) => p.status.intervalMs)).toEqual([360_000, 360_000]);
    // The key's queries still have their half.
    for (let i = 0; i < 18; i++) {
      const res = await s.gql(`{ experiment(id: "${EXP}") { name } }`);
      expect(res.body.errors, `query ${i}`).toBeUndefined();
    }
    expect(s.sim.stats.requests.filter((r) => r.path.includes('/data/')).length).toBe(2);
  });

  it('backs off on upstream faults without ending subscriptions, and delivers once the upstream is back', async () => {
    const s = await start({ UPSTREAM_RETRIES: '0', LIVE_MAX_BACKOFF_MS: '400', BREAKER_THRESHOLD: '1000' });
    const room = s.sim.live?.activeRooms()[0]?.roomId ?? '';
    const sub = await subscribeSse<{ roomEvents: { id: string } }>(s.url, ROOM_EVENTS, { variables: { room } });
    subs.push(sub);
    await requestsTo(s, `/data/events/room/${room}`, 1);
    s.sim.configure({ faults: { rate: 1, modes: ['http503'] } });
    const expected = appended(s.sim.live?.tick(6) ?? [], room, 'events');
    await requestsTo(s, `/data/events/room/${room}`, 4);
    expect(s.gateway.live.pollers()[0]?.status.retrying).toBe(true);
    expect(sub.completed).toBe(false);
    s.sim.configure({ faults: { rate: 0 } });
    await sub.waitFor(expected.length);
    expect(new Set(sub.payloads.map((p) => p.data?.roomEvents.id))).toEqual(new Set(expected));
    expect(sub.payloads.at(-1)?.extensions?.live).toMatchObject({ retrying: false });
  });
});

describe('subscriptions over time', () => {
  it('delivers records that arrive late, between polls, exactly once', async () => {
    const s = await start({ LIVE_LATE_MS: '1000' });
    const room = s.sim.live?.activeRooms()[0]?.roomId ?? '';
    const sub = await subscribeSse<{ roomEvents: { id: string } }>(s.url, ROOM_EVENTS, { variables: { room } });
    subs.push(sub);
    const path = `/data/events/room/${room}`;
    await requestsTo(s, path, 1);
    const expected: string[] = [];
    let late = 0;
    for (let round = 0; round < 12; round++) {
      const changes = s.sim.live?.tick(1) ?? [];
      expected.push(...appended(changes, room, 'events'));
      late += changes.filter((c) => c.kind === 'record' && c.roomId === room && c.type === 'events' && c.late).length;
      const polls = s.sim.stats.requests.filter((r) => r.path.endsWith(path)).length;
      await requestsTo(s, path, polls + 1);
    }
    expect(late).toBeGreaterThan(0);
    await sub.waitFor(expected.length);
    await new Promise((r) => setTimeout(r, 300));
    const got = sub.payloads.map((p) => p.data?.roomEvents.id);
    expect(got.length).toBe(expected.length);
    expect(new Set(got)).toEqual(new Set(expected));
  });

  it('tells an experiment’s rooms starting and ending and participants joining and completing', async () => {
    const s = await start();
    const sub = await subscribeSse<{
      experimentActivity: { type: string; room: { roomId: string } | null; participant: { participantId: string } | null };
    }>(s.url, `subscription { experimentActivity(experimentId: "${EXP}") { type at room { roomId } participant { participantId } } }`);
    subs.push(sub);
    await requestsTo(s, `/data/participants/experiment/${EXP}`, 2);
    const live = s.sim.live;
    if (!live) throw new Error('no live mode');
    const changes: LiveChange[] = [];
    const stop = live.onChange((c) => changes.push(...c));
    const roomId = live.startRoom(EXP);
    live.tick(40);
    live.endRoom(roomId);
    stop();
    const want = changes.flatMap((c) =>
      c.roomId !== roomId
        ? []
        : c.kind === 'room-started'
          ? [`ROOM_STARTED ${roomId}`]
          : c.kind === 'room-ended'
            ? [`ROOM_ENDED ${roomId}`]
            : c.kind === 'participant-joined'
              ? [`PARTICIPANT_JOINED ${c.participantId}`]
              : c.kind === 'participant-completed'
                ? [`PARTICIPANT_COMPLETED ${c.participantId}`]
                : [],
    );
    expect(want).toContain(`ROOM_STARTED ${roomId}`);
    expect(want.some((w) => w.startsWith('PARTICIPANT_JOINED'))).toBe(true);
    expect(want.some((w) => w.startsWith('PARTICIPANT_COMPLETED'))).toBe(true);
    await sub.waitFor(want.length);
    const got = sub.payloads.map((p) => {
      const a = p.data?.experimentActivity;
      return `${a?.type} ${a?.participant?.participantId ?? a?.room?.roomId}`;
    });
    expect(got.sort()).toEqual([...want].sort());
  });
});

describe('subscriptions over WebSocket (graphql-ws)', () => {
  it('delivers live events to a WebSocket client with the key in connection_init, and refuses a missing key', async () => {
    const s = await start();
    const room = s.sim.live?.activeRooms()[0]?.roomId ?? '';
    const wsUrl = `${s.url.replace('http', 'ws')}/graphql`;
    const client = createClient({
      url: wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: { 'X-API-Key': FULL },
      retryAttempts: 0,
    });
    const got: { id: string }[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const dispose = client.subscribe<{ roomEvents: { id: string } }>(
        { query: 'subscription($room: ID!) { roomEvents(roomId: $room) { id } }', variables: { room } },
        {
          next: (value) => {
            if (value.data) got.push(value.data.roomEvents);
            if (got.length >= expectedCount) {
              dispose();
              resolve();
            }
          },
          error: reject,
          complete: () => undefined,
        },
      );
    });
    let expectedCount = Number.POSITIVE_INFINITY;
    await requestsTo(s, `/data/events/room/${room}`, 1);
    const expected = appended(s.sim.live?.tick(6) ?? [], room, 'events');
    expectedCount = expected.length;
    await done;
    expect(new Set(got.map((e) => e.id))).toEqual(new Set(expected));
    await client.dispose();

    // A socket is for live data, which needs a key: without one, connection_init is refused (4403).
    const anonymous = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
    const refused = await new Promise<unknown>((resolve) => {
      anonymous.subscribe(
        { query: 'subscription($room: ID!) { roomEvents(roomId: $room) { id } }', variables: { room } },
        {
          next: resolve,
          error: resolve,
          complete: () => undefined,
        },
      );
    });
    expect((refused as { code?: number }).code).toBe(4403);
    await anonymous.dispose();
  });

  it('runs only trusted documents over WebSocket when TRUSTED_DOCUMENTS is set', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trusted-'));
    const file = join(dir, 'documents.json');
    writeFileSync(file, JSON.stringify({ exp: '{ experiment(id: "exp_movie01") { name } }' }));
    const s = await start({ TRUSTED_DOCUMENTS: file });
    const client = createClient({
      url: `${s.url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { apiKey: FULL },
      retryAttempts: 0,
    });
    const run = (payload: Record<string, unknown>) =>
      new Promise<unknown>((resolve) => {
        client.subscribe(payload as never, { next: resolve, error: resolve, complete: () => undefined });
      });
    expect(await run({ query: '{ experiments { totalCount } }' })).toEqual([
      expect.objectContaining({ message: ONLY_TRUSTED.message, extensions: { code: 'PERSISTED_QUERY_ONLY' } }),
    ]);
    expect(await run({ query: '', extensions: { persistedQuery: { version: 1, sha256Hash: 'nope' } } })).toEqual([
      expect.objectContaining({ message: NOT_TRUSTED.message, extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } }),
    ]);
    expect(await run({ query: '', extensions: { persistedQuery: { version: 1, sha256Hash: 'exp' } } })).toEqual(
      expect.objectContaining({ data: { experiment: { name: 'Movie Watching Study' } } }),
    );
    await client.dispose();
  });
});

describe('the live interval with the documented limits', () => {
  it('is 7.2 s for one room feed of a key and 14.4 s each for two (half of 1000 requests an hour)', async () => {
    const s = await start({ UPSTREAM_HOURLY_LIMIT: '1000', UPSTREAM_MINUTE_LIMIT: '100', LIVE_MIN_INTERVAL_MS: '2000' });
    const room = s.sim.live?.activeRooms()[0]?.roomId ?? '';
    subs.push(await subscribeSse(s.url, ROOM_EVENTS, { variables: { room } }));
    await requestsTo(s, '/data/events/room/', 1);
    expect(s.gateway.live.pollers().map((p) => p.status.intervalMs)).toEqual([7_200]);
    subs.push(
      await subscribeSse(s.url, 'subscription($room: ID!) { roomSparseRatings(roomId: $room) { ratingId } }', { variables: { room } }),
    );
    await requestsTo(s, '/data/ratings/sparse/room/', 1);
    expect(s.gateway.live.pollers().map((p) => p.status.intervalMs)).toEqual([14_400, 14_400]);
  });

  it('is twice as long with REPLICAS=2 and no Redis: each process paces by its half of the limits', async () => {
    const s = await start({ UPSTREAM_HOURLY_LIMIT: '1000', UPSTREAM_MINUTE_LIMIT: '100', LIVE_MIN_INTERVAL_MS: '2000', REPLICAS: '2' });
    const room = s.sim.live?.activeRooms()[0]?.roomId ?? '';
    subs.push(await subscribeSse(s.url, ROOM_EVENTS, { variables: { room } }));
    await requestsTo(s, '/data/events/room/', 1);
    expect(s.gateway.live.pollers().map((p) => p.status.intervalMs)).toEqual([14_400]);
  });
});

describe('events written straight to the upstream', () => {
  it('arrive once each, in order, within two polls, also when they share one timestamp', async () => {
    const s = await start({ LIVE_MIN_INTERVAL_MS: '200' });
    const room = s.sim.live?.activeRooms()[0]?.roomId ?? '';
    const participantId = String((await s.rest(`/data/participants/room/${room}?limit=1`)).data[0]?.id);
    const sub = await subscribeSse<{ roomEvents: { id: string; eventType: string } }>(s.url, ROOM_EVENTS, { variables: { room } });
    subs.push(sub);
    const path = `/data/events/room/${room}`;
    await requestsTo(s, path, 1);
    const at = new Date(Date.now() + 60_000).toISOString();
    const events = Array.from({ length: 5 }, (_, i) => ({
      experimentId: EXP,
      roomId: room,
      participantId,
      eventType: `custom.same_${i}`,
      timestamp: at,
    }));
    const written = await fetch(`${s.sim.url}/data/events/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': FULL },
      body: JSON.stringify({ events }),
    });
    const ids = ((await written.json()) as { data: { eventIds: string[] }[] }).data[0]?.eventIds ?? [];
    const pollsAtWrite = s.sim.stats.requests.filter((r) => r.path.endsWith(path)).length;
    await sub.waitFor(5);
    expect(s.sim.stats.requests.filter((r) => r.path.endsWith(path)).length).toBeLessThanOrEqual(pollsAtWrite + 2);
    await new Promise((r) => setTimeout(r, 500));
    expect(sub.payloads.map((p) => p.data?.roomEvents.id)).toEqual(ids);
    expect(sub.payloads.map((p) => p.data?.roomEvents.eventType)).toEqual(events.map((e) => e.eventType));
  });
});

describe('live feeds per key', () => {
  it('are bounded: past LIVE_MAX_FEEDS_PER_KEY a subscription is RATE_LIMITED, and another key is not affected', async () => {
    const s = await start({ LIVE_MAX_FEEDS_PER_KEY: '2' });
    const room = s.sim.live?.activeRooms()[0]?.roomId ?? '';
    const feed = (field: string, key?: string) =>
      subscribeSse(s.url, `subscription($room: ID!) { ${field}(roomId: $room) { __typename } }`, { key, variables: { room } });
    subs.push(await feed('roomEvents'), await feed('roomChatMessages'));
    await requestsTo(s, '/data/chat/room/', 1);
    const third = await feed('roomSparseRatings');
    subs.push(third);
    await third.waitFor(1);
    expect(third.payloads[0]?.errors?.[0]).toMatchObject({
      message: 'This key follows 2 live feeds already, the most one key may; end one first',
      extensions: { code: 'RATE_LIMITED', upstream: { details: { source: 'gateway', maxFeedsPerKey: 2 } } },
    });
    const other = await feed('roomSparseRatings', READONLY);
    subs.push(other);
    await requestsTo(s, '/data/ratings/sparse/room/', 1);
    expect(s.gateway.live.size).toBe(3);
  });
});

describe('subscription reports', () => {
  it('logs and counts each subscription once, when it ends, with the payloads it delivered; a refused one at once', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    stack = await startStack({ live: PAUSED_LIVE }, FAST_LIVE, { logger: pino({ level: 'info' }, sink) });
    const s = stack;
    const room = s.sim.live?.activeRooms()[0]?.roomId ?? '';
    const watch = `subscription Watch($room: ID!) { roomEvents(roomId: $room) { id } }`;
    const sub = await subscribeSse<{ roomEvents: { id: string } }>(s.url, watch, {
      variables: { room },
      headers: { 'x-request-id': 'watch-1' },
    });
    await requestsTo(s, `/data/events/room/${room}`, 1);
    const expected = appended(s.sim.live?.tick(8) ?? [], room, 'events');
    expect(expected.length).toBeGreaterThan(0);
    await sub.waitFor(expected.length);
    expect(lines.filter((l) => l.requestId === 'watch-1')).toEqual([]);
    sub.close();
    for (let i = 0; i < 100 && !lines.some((l) => l.requestId === 'watch-1'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(lines.filter((l) => l.requestId === 'watch-1')).toMatchObject([
      { msg: 'subscription', operation: 'Watch', outcome: 'ok', payloads: expected.length, errors: [] },
    ]);

    const refused = await subscribeSse(s.url, watch, {
      key: OTHER,
      variables: { room },
      headers: { 'x-request-id': 'watch-2' },
    });
    subs.push(refused);
    await refused.waitFor(1);
    expect(refused.payloads[0]?.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(lines.filter((l) => l.requestId === 'watch-2')).toMatchObject([
      { msg: 'subscription', operation: 'Watch', outcome: 'error', payloads: 0, errors: [{ code: 'FORBIDDEN' }] },
    ]);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toContain('hsgql_subscriptions_total{operation="Watch",outcome="ok"} 1\n');
    expect(metrics).toContain('hsgql_subscriptions_total{operation="Watch",outcome="error"} 1\n');
    expect(metrics).toContain(`hsgql_subscription_payloads_total{operation="Watch"} ${expected.length}\n`);
    expect(metrics).not.toMatch(/hsgql_operations_total\{operation="Watch"/);
  });
});
