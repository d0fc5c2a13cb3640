/** Live data against careless and hostile callers (each case was reproduced against the first version). */
import { Writable } from 'node:stream';
import { createClient } from 'graphql-ws';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { type Gateway } from '../src/server.ts';
import { startSimulator, type Simulator } from '../src/simulator/server.ts';
import { FAST_LIVE, PAUSED_LIVE } from './helpers/live.ts';
import { subscribeSse, type SseSubscription } from './helpers/sse.ts';
import { startStack, startGateway, type Stack } from './helpers/stack.ts';
import { FULL, NO_RATE_LIMIT, READONLY, EVENTS_ONLY } from './helpers/simulator.ts';

const ROOM_EVENTS = 'subscription($room: ID!) { roomEvents(roomId: $room) { id } }';

let stack: Stack | null = null;
const subs: SseSubscription[] = [];
afterEach(async () => {
  for (const s of subs.splice(0)) s.close();
  await stack?.close();
  stack = null;
});
const start = async (env: Record<string, string> = {}, sim: Record<string, unknown> = {}): Promise<Stack> =>
  (stack = await startStack({ live: PAUSED_LIVE, ...sim }, { ...FAST_LIVE, ...env }));
const activeRoom = (s: Stack): string => s.sim.live?.activeRooms()[0]?.roomId ?? '';
/** Waits for `until` (every 20 ms, up to 10 s: on a busy machine a poll or two may take seconds). */
const settle = async (until: () => boolean): Promise<void> => {
  for (const end = Date.now() + 10_000; Date.now() < end && !until();) await new Promise((r) => setTimeout(r, 20));
};
const wsClient = (s: Stack, params: Record<string, unknown> = { 'X-API-Key': FULL }) =>
  createClient({
    url: `${s.url.replace('http', 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: params,
    retryAttempts: 0,
    lazy: false,
    // A refused connection is what some tests expect: they read its close event themselves.
    onNonLazyError: () => undefined,
  });

describe('live limits', () => {
  it('bound the subscriptions of one key, of the process and of one WebSocket connection', async () => {
    const s = await start({ LIVE_MAX_SUBSCRIPTIONS_PER_KEY: '3', LIVE_MAX_SUBSCRIPTIONS: '4' });
    const room = activeRoom(s);
    for (let i = 0; i < 3; i++) subs.push(await subscribeSse(s.url, ROOM_EVENTS, { variables: { room } }));
    await settle(() => s.gateway.live.pollers()[0]?.subscribers === 3);
    const fourth = await subscribeSse(s.url, ROOM_EVENTS, { variables: { room } });
    subs.push(fourth);
    await fourth.waitFor(1);
    expect(fourth.payloads[0]?.errors?.[0]?.extensions).toMatchObject({
      code: 'RATE_LIMITED',
      upstream: { details: { maxSubscriptionsPerKey: 3 } },
    });
    subs.push(await subscribeSse(s.url, ROOM_EVENTS, { key: READONLY, variables: { room } }));
    await settle(() => s.gateway.live.size === 2);
    const overall = await subscribeSse(s.url, ROOM_EVENTS, { key: EVENTS_ONLY, variables: { room } });
    subs.push(overall);
    await overall.waitFor(1);
    expect(overall.payloads[0]?.errors?.[0]?.extensions).toMatchObject({
      code: 'RATE_LIMITED',
      upstream: { details: { maxSubscriptions: 4 } },
    });
  });

  it('refuses a WebSocket message larger than MAX_BODY_BYTES, and a connection without a usable key, echoing nothing', async () => {
    const s = await start({ MAX_BODY_BYTES: '2048' });
    const printed = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const closed = await new Promise<number>((resolve) => {
      const socket = new WebSocket(`${s.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
      socket.on('open', () =>
        socket.send(JSON.stringify({ type: 'connection_init', payload: { 'X-API-Key': FULL, pad: 'x'.repeat(10_000) } })),
      );
      socket.on('close', (code) => resolve(code));
    });
    expect(closed).toBe(1009);
    // The caller's fault, answered with 1009: nothing printed as an implementation error.
    expect(printed).not.toHaveBeenCalled();
    printed.mockRestore();
    const bad = await new Promise<{ code: number; reason: string }>((resolve) => {
      const client = wsClient(s, { 'X-API-Key': 'hst_live_S3CRETKEY\u0000' });
      client.on('closed', (event) =>
        resolve({ code: (event as { code: number }).code, reason: String((event as { reason?: unknown }).reason) }),
      );
    });
    expect(bad.code).toBe(4403);
    expect(bad.reason).not.toContain('S3CRET');
  });

  it('answers an operation over the limits with its code, and keeps the socket and its other subscriptions', async () => {
    const s = await start();
    const room = activeRoom(s);
    const client = wsClient(s);
    const got: string[] = [];
    client.subscribe(
      { query: ROOM_EVENTS, variables: { room } },
      { next: (v) => got.push(JSON.stringify(v)), error: () => got.push('error'), complete: () => got.push('complete') },
    );
    // The first read is done (what it finds is not new).
    await settle(() => s.sim.stats.requests.some((r) => r.path.endsWith(`/data/events/room/${room}`)));
    await new Promise((r) => setTimeout(r, 100));
    const nest = (n: number): string => (n === 0 ? 'roomId' : `participant { room { ${nest(n - 1)} } }`);
    const deep = `subscription { roomEvents(roomId: "${room}") { ${nest(10)} } }`;
    const refused = await new Promise<unknown>((resolve) =>
      client.subscribe({ query: deep }, { next: resolve, error: resolve, complete: () => undefined }),
    );
    expect(refused).toEqual([
      expect.objectContaining({ extensions: expect.objectContaining({ code: 'OPERATION_LIMIT_EXCEEDED', limit: 'depth' }) }),
    ]);
    const expected = (s.sim.live?.tick(6) ?? []).filter((c) => c.kind === 'record' && c.roomId === room && c.type === 'events').length;
    await settle(() => got.length >= expected);
    expect(got.length).toBe(expected);
    await client.dispose();
  });

  it('refuses an X-Organization-Id that is not an id on a subscription too', async () => {
    const s = await start();
    const sub = await subscribeSse(s.url, ROOM_EVENTS, {
      variables: { room: activeRoom(s) },
      headers: { 'x-organization-id': 'bad org!' },
    });
    subs.push(sub);
    await sub.waitFor(1);
    expect(sub.payloads[0]?.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'X-Organization-Id' });
    expect(s.gateway.live.size).toBe(0);
  });

  it('gives different filters different pollers, whatever their values hold', async () => {
    const s = await start();
    const room = activeRoom(s);
    const tricky = 'subscription($room: ID!) { roomEvents(roomId: $room, category: "system&deploymentId=dep_movie01_b") { id } }';
    const plain = 'subscription($room: ID!) { roomEvents(roomId: $room, category: SYSTEM, deploymentId: "dep_movie01_b") { id } }';
    subs.push(await subscribeSse(s.url, tricky, { variables: { room } }), await subscribeSse(s.url, plain, { variables: { room } }));
    await settle(() => s.gateway.live.size === 2);
    expect(s.gateway.live.pollers().map((p) => p.subscribers)).toEqual([1, 1]);
  });
});

describe('live pollers and their callers', () => {
  it('leaves no poller behind when the caller goes away while the first read is under way', async () => {
    const s = await start({}, { latencyMs: 300 });
    const room = activeRoom(s);
    for (let i = 0; i < 3; i++) {
      const sub = await subscribeSse(s.url, ROOM_EVENTS, { variables: { room } });
      sub.close();
    }
    await new Promise((r) => setTimeout(r, 700));
    expect(s.gateway.live.size).toBe(0);
    const polls = s.sim.stats.total;
    await new Promise((r) => setTimeout(r, 500));
    expect(s.sim.stats.total).toBe(polls);
  });

  it('counts first reads against the key’s live share: queries keep their half', async () => {
    const s = await start({ UPSTREAM_HOURLY_LIMIT: '20', LIVE_QUOTA_SHARE: '0.5' });
    const room = activeRoom(s);
    const codes: unknown[] = [];
    for (let i = 0; i < 12; i++) {
      const sub = await subscribeSse(s.url, ROOM_EVENTS, { variables: { room } });
      await Promise.race([sub.waitFor(1, 400).catch(() => undefined), new Promise((r) => setTimeout(r, 400))]);
      codes.push(sub.payloads[0]?.errors?.[0]?.extensions?.code ?? 'subscribed');
      sub.close();
      await settle(() => s.gateway.live.size === 0);
    }
    expect(codes.filter((c) => c === 'subscribed')).toHaveLength(10);
    expect(codes.slice(10)).toEqual(['RATE_LIMITED', 'RATE_LIMITED']);
    for (let i = 0; i < 10; i++)
      expect((await s.gql('{ experiment(id: "exp_movie01") { name } }')).body.errors, `query ${i}`).toBeUndefined();
  });

  it('forgets the keys that only passed by (refused keys)', async () => {
    const s = await start();
    const room = activeRoom(s);
    for (let i = 0; i < 20; i++) {
      const sub = await subscribeSse(s.url, ROOM_EVENTS, { key: `hst_live_random_${i}`, variables: { room } });
      await sub.waitFor(1);
      expect(sub.payloads[0]?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      sub.close();
    }
    await new Promise((r) => setTimeout(r, 1_100));
    subs.push(await subscribeSse(s.url, ROOM_EVENTS, { variables: { room } }));
    await settle(() => s.gateway.live.size === 1);
    expect(s.gateway.live.keys).toBe(1);
  });

  it('paces live polling by the configured limits also with the quota guard off', async () => {
    const s = await start({
      UPSTREAM_QUOTA_GUARD: 'off',
      UPSTREAM_HOURLY_LIMIT: '1000000',
      UPSTREAM_MINUTE_LIMIT: '100000',
      LIVE_MIN_INTERVAL_MS: '100',
    });
    subs.push(await subscribeSse(s.url, ROOM_EVENTS, { variables: { room: activeRoom(s) } }));
    await settle(() => s.gateway.live.size === 1);
    expect(s.gateway.live.pollers()[0]?.status.intervalMs).toBe(100);
  });
});

describe('subscription payloads', () => {
  it('resolve their nested fields afresh each time, also after the first operation’s deadline', async () => {
    const s = await start({ OPERATION_DEADLINE_MS: '300' });
    const live = s.sim.live;
    if (!live) throw new Error('no live mode');
    const sub = await subscribeSse<{ experimentActivity: { type: string; room: { roomId: string; status: string } | null } }>(
      s.url,
      'subscription { experimentActivity(experimentId: "exp_movie01") { type room { roomId status } participant { participantId room { roomId } } } }',
    );
    subs.push(sub);
    await settle(() => s.gateway.live.size === 1);
    await new Promise((r) => setTimeout(r, 500));
    const roomId = live.startRoom('exp_movie01');
    live.tick(20);
    await settle(() => sub.payloads.some((p) => p.data?.experimentActivity.type === 'PARTICIPANT_JOINED'));
    const joined = sub.payloads.filter((p) => p.data?.experimentActivity.type === 'PARTICIPANT_JOINED');
    expect(joined.length).toBeGreaterThan(0);
    expect(joined.flatMap((p) => p.errors ?? [])).toEqual([]);
    expect(sub.payloads.find((p) => p.data?.experimentActivity.type === 'ROOM_STARTED')?.data?.experimentActivity.room?.roomId).toBe(
      roomId,
    );
  });

  it('deliver a burst larger than any page between two polls, all of it', async () => {
    const s = await start({ LIVE_MIN_INTERVAL_MS: '400' });
    const room = activeRoom(s);
    const participantId = String((await s.rest(`/data/participants/room/${room}?limit=1`)).data[0]?.id);
    const sub = await subscribeSse<{ roomEvents: { id: string } }>(s.url, ROOM_EVENTS, { variables: { room } });
    subs.push(sub);
    await settle(() => s.gateway.live.size === 1);
    await new Promise((r) => setTimeout(r, 450));
    const at = Date.now() + 60_000;
    await Promise.all(
      Array.from({ length: 25 }, (_, b) =>
        fetch(`${s.sim.url}/data/events/batch`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': FULL },
          body: JSON.stringify({
            events: Array.from({ length: 100 }, (_, i) => ({
              experimentId: 'exp_movie01',
              roomId: room,
              participantId,
              eventType: `burst.${b}.${i}`,
              timestamp: new Date(at + b).toISOString(),
            })),
          }),
        }),
      ),
    );
    await sub.waitFor(2_500, 15_000);
    expect(new Set(sub.payloads.map((p) => p.data?.roomEvents.id)).size).toBe(2_500);
    expect(sub.completed).toBe(false);
  });
});

describe('node ids and JSON inputs', () => {
  it('take a Room node id in a subscription and a Persona node id in its mutations', async () => {
    const s = await start();
    const room = activeRoom(s);
    const roomNode = Buffer.from(`Room:${room}`).toString('base64');
    subs.push(await subscribeSse(s.url, ROOM_EVENTS, { variables: { room: roomNode } }));
    await settle(() => s.gateway.live.size === 1);
    expect(JSON.parse(s.gateway.live.pollers()[0]?.feed ?? '[]')[1]).toEqual({ kind: 'room', id: room });
    const made = await s.gql<{ createPersona: { id: string } }>('mutation { createPersona(input: { name: "Node id" }) { id } }');
    const res = await s.gql(
      `mutation { duplicatePersona(id: "${made.body.data?.createPersona.id}") { name } deletePersona(id: "${made.body.data?.createPersona.id}") { deleted } }`,
    );
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data).toEqual({ duplicatePersona: { name: 'Node id (copy)' }, deletePersona: { deleted: true } });
  });

  it('refuses __proto__ in a JSON input, as a variable and as a literal, before any upstream call', async () => {
    const s = await start();
    s.sim.stats.reset();
    const asVariable = await s.gql(
      'mutation($c: JSON) { createDeployment(input: { experimentId: "exp_joint02", name: "x", rooms: 1, budgetUsd: 1, config: $c }) { deploymentId } }',
      {
        variables: { c: JSON.parse('{"__proto__": {"isAdmin": true}}') as unknown },
      },
    );
    expect(asVariable.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const literal = await s.gql(
      'mutation { createPersona(input: { name: "x", extraParams: { constructor: { prototype: { isAdmin: true } } } }) { personaId } }',
    );
    expect(literal.status).toBe(400);
    expect(literal.body.errors?.[0]?.message).toMatch(/may not hold the key 'constructor.prototype'/);
    expect(s.sim.stats.total).toBe(0);
  });
});

describe('shutting down', () => {
  let sim: Simulator | null = null;
  let gateway: Gateway | null = null;
  afterEach(async () => {
    await gateway?.close(0).catch(() => undefined);
    await sim?.close();
  });

  it('ends subscriptions over SSE and over WebSocket with SHUTTING_DOWN, not an upstream fault', async () => {
    sim = await startSimulator({ live: PAUSED_LIVE, rateLimit: NO_RATE_LIMIT });
    const { gateway: g, url } = await startGateway({ HYPERSTUDY_API_URL: sim.url, ...FAST_LIVE });
    gateway = g;
    const room = sim.live?.activeRooms()[0]?.roomId ?? '';
    const sse = await subscribeSse(url, ROOM_EVENTS, { variables: { room } });
    subs.push(sse);
    const client = createClient({
      url: `${url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { 'X-API-Key': FULL },
      retryAttempts: 0,
    });
    const overSocket: unknown[] = [];
    const socketEnded = new Promise<string>((resolve) =>
      client.subscribe(
        { query: ROOM_EVENTS, variables: { room } },
        { next: (v) => overSocket.push(v), error: (e) => (overSocket.push(e), resolve('error')), complete: () => resolve('complete') },
      ),
    );
    await settle(() => g.live.pollers()[0]?.subscribers === 2);
    await g.close(1_000);
    gateway = null;
    await sse.waitFor(1);
    const error = {
      message: 'The gateway is shutting down',
      extensions: { code: 'SHUTTING_DOWN', upstream: { status: null, code: null, details: { source: 'gateway' } } },
    };
    expect(sse.payloads).toEqual([{ errors: [{ ...error, locations: [{ line: 1, column: 1 }] }] }]);
    expect(sse.completed).toBe(true);
    // Over WebSocket, before the socket closes: the operation's error message.
    expect(await socketEnded).toBe('error');
    expect(overSocket).toEqual([[error]]);
  });

  it('lets a query in flight over WebSocket answer within the grace period', async () => {
    sim = await startSimulator({ latencyMs: 1_000, rateLimit: NO_RATE_LIMIT });
    const lines: string[] = [];
    const { gateway: g, url } = await startGateway(
      { HYPERSTUDY_API_URL: sim.url },
      { logger: pino(new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()) })) },
    );
    gateway = g;
    const client = createClient({
      url: `${url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { 'X-API-Key': FULL },
      retryAttempts: 0,
    });
    const answer = new Promise<unknown>((resolve) =>
      client.subscribe(
        { query: '{ experiment(id: "exp_movie01") { name } }' },
        { next: resolve, error: resolve, complete: () => undefined },
      ),
    );
    await new Promise((r) => setTimeout(r, 300));
    const closing = gateway.close(5_000);
    expect(await answer).toEqual({ data: { experiment: { name: 'Movie Watching Study' } }, extensions: expect.any(Object) });
    await closing;
    gateway = null;
    expect(lines.join('')).not.toContain('unexpected error');
  });
});
