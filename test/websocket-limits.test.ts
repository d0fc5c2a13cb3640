/** GraphQL over WebSocket: connection caps per process and per key, idle connections, sockets that never initialise. */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FAST_LIVE, PAUSED_LIVE } from './helpers/live.ts';
import { startStack, type Stack } from './helpers/stack.ts';
import { FULL, READONLY, EVENTS_ONLY } from './helpers/simulator.ts';

let stack: Stack | null = null;
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  await stack?.close();
  stack = null;
});

const start = async (env: Record<string, string>): Promise<Stack> =>
  (stack = await startStack({ live: PAUSED_LIVE }, { ...FAST_LIVE, ...env }));

interface Closed {
  code: number;
  reason: string;
}

/** Resolves with the close code and reason once the socket is closed (listen before it may close). */
const closed = (socket: WebSocket): Promise<Closed> =>
  new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));

/**
 * A graphql-ws socket that sends connection_init with `key`: resolves at connection_ack, or with how it
 * was closed. With `key` null it sends nothing and resolves once open.
 */
async function connect(
  s: Stack,
  key: string | null,
): Promise<{ socket: WebSocket; outcome: 'ack' | 'open' | Closed; closed: Promise<Closed> }> {
  const socket = new WebSocket(`${s.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
  sockets.push(socket);
  const ending = closed(socket);
  const opened = new Promise<'open'>((resolve) => socket.once('open', () => resolve('open')));
  if (key === null) return { socket, outcome: await Promise.race([opened, ending]), closed: ending };
  socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { 'X-API-Key': key } })));
  const acked = new Promise<'ack'>((resolve) =>
    socket.on('message', (data: Buffer) => {
      if ((JSON.parse(data.toString()) as { type: string }).type === 'connection_ack') resolve('ack');
    }),
  );
  return { socket, outcome: await Promise.race([acked, ending]), closed: ending };
}

/** The gateway's WebSocket gauge from /metrics: open connections and the distinct keys holding them. */
async function counts(s: Stack): Promise<{ connections: number; keys: number }> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const value = (what: string): number =>
    Number(new RegExp(`^hsgql_websocket_connections\\{what="${what}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
  return { connections: value('connections'), keys: value('keys') };
}

const settle = async (until: () => Promise<boolean>): Promise<void> => {
  for (let i = 0; i < 100 && !(await until()); i++) await new Promise((r) => setTimeout(r, 20));
};

const PER_KEY = { code: 1013, reason: 'This key has 2 WebSocket connections open, the most one key may' };

describe('WebSocket connection caps', () => {
  it('closes a key’s connection past WEBSOCKET_MAX_CONNECTIONS_PER_KEY with 1013 at connection_init; another key still connects', async () => {
    const s = await start({ WEBSOCKET_MAX_CONNECTIONS_PER_KEY: '2' });
    const outcomes = [];
    for (let i = 0; i < 3; i++) outcomes.push((await connect(s, FULL)).outcome);
    expect(outcomes).toEqual(['ack', 'ack', PER_KEY]);
    expect((await connect(s, READONLY)).outcome).toBe('ack');
    await settle(async () => (await counts(s)).connections === 3);
    expect(await counts(s)).toEqual({ connections: 3, keys: 2 });
  });

  it('closes a socket past WEBSOCKET_MAX_CONNECTIONS with 1013 at once, before connection_init', async () => {
    const s = await start({ WEBSOCKET_MAX_CONNECTIONS: '2' });
    expect((await connect(s, FULL)).outcome).toBe('ack');
    // A socket that has not initialised yet holds a place too.
    const { socket: waiting } = await connect(s, null);
    expect(await (await connect(s, null)).closed).toEqual({
      code: 1013,
      reason: 'The gateway holds 2 WebSocket connections, the most it takes',
    });
    expect(waiting.readyState).toBe(WebSocket.OPEN);
    expect(await counts(s)).toEqual({ connections: 2, keys: 1 });
  });

  it('frees the place of a connection that closes, for its key and for the process', async () => {
    const s = await start({ WEBSOCKET_MAX_CONNECTIONS_PER_KEY: '2', WEBSOCKET_MAX_CONNECTIONS: '3' });
    const first = await connect(s, FULL);
    await connect(s, FULL);
    await connect(s, READONLY);
    expect(await counts(s)).toEqual({ connections: 3, keys: 2 });
    const full = { code: 1013, reason: 'The gateway holds 3 WebSocket connections, the most it takes' };
    expect((await connect(s, EVENTS_ONLY)).outcome).toEqual(full);
    first.socket.close(1000);
    await first.closed;
    await settle(async () => (await counts(s)).connections === 2);
    expect(await counts(s)).toEqual({ connections: 2, keys: 2 });
    expect((await connect(s, FULL)).outcome).toBe('ack');
    expect((await connect(s, FULL)).outcome).toEqual({
      code: 1013,
      reason: 'The gateway holds 3 WebSocket connections, the most it takes',
    });
    expect(await counts(s)).toEqual({ connections: 3, keys: 2 });
  });
});

describe('WebSocket timeouts', () => {
  it('closes a connection with no operation running after WEBSOCKET_IDLE_TIMEOUT_MS with 1000, not one running a subscription', async () => {
    const s = await start({ WEBSOCKET_IDLE_TIMEOUT_MS: '300' });
    const idle = await connect(s, FULL);
    const busy = await connect(s, FULL);
    const room = s.sim.live?.activeRooms()[0]?.roomId ?? '';
    busy.socket.send(
      JSON.stringify({
        id: 'watch',
        type: 'subscribe',
        payload: { query: 'subscription($room: ID!) { roomEvents(roomId: $room) { id } }', variables: { room } },
      }),
    );
    expect(await idle.closed).toEqual({ code: 1000, reason: 'No operation for 300 ms' });
    await new Promise((r) => setTimeout(r, 600));
    expect(busy.socket.readyState).toBe(WebSocket.OPEN);
    expect(s.gateway.live.pollers().map((p) => p.subscribers)).toEqual([1]);
    // Once its subscription ends, it is idle too.
    busy.socket.send(JSON.stringify({ id: 'watch', type: 'complete' }));
    expect(await busy.closed).toEqual({ code: 1000, reason: 'No operation for 300 ms' });
    expect(s.gateway.live.size).toBe(0);
  });

  it('closes a socket that sends no connection_init within WEBSOCKET_INIT_TIMEOUT_MS with 4408', async () => {
    const s = await start({ WEBSOCKET_INIT_TIMEOUT_MS: '200' });
    const silent = await connect(s, null);
    // Well before graphql-ws's own default of 3 s.
    const outcome = await Promise.race([silent.closed, new Promise((r) => setTimeout(() => r('still open'), 1_500))]);
    expect(outcome).toEqual({ code: 4408, reason: 'Connection initialisation timeout' });
    await settle(async () => (await counts(s)).connections === 0);
    expect(await counts(s)).toEqual({ connections: 0, keys: 0 });
  });
});
