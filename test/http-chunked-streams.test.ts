/**
 * Streamed answers (SSE subscriptions, @defer over multipart) to requests whose body is chunked, which
 * the body limit reads and replays through Yoga: they must stream and end as with a Content-Length.
 */
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator } from '../src/simulator/server.ts';
import { FAST_LIVE, PAUSED_LIVE } from './helpers/live.ts';
import { mergePayloads, multipartPayloads, ssePayloads } from './helpers/incremental.ts';
import { json, startScripted } from './helpers/scripted.ts';
import { subscribeSse, type SseSubscription } from './helpers/sse.ts';
import { startStack, type Stack, startGateway } from './helpers/stack.ts';
import { FULL, NO_RATE_LIMIT } from './helpers/simulator.ts';

const ROOM_EVENTS = 'subscription($room: ID!) { roomEvents(roomId: $room) { id } }';

let stack: Stack | null = null;
const subs: SseSubscription[] = [];
const posts: Chunked[] = [];
/** What a test started besides `stack`, closed in reverse order. */
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of subs.splice(0)) s.close();
  for (const p of posts.splice(0)) p.destroy();
  await stack?.close();
  stack = null;
  for (const close of closers.splice(0).reverse()) await close();
});

const settle = async (until: () => boolean): Promise<void> => {
  for (let i = 0; i < 250 && !until(); i++) await new Promise((r) => setTimeout(r, 20));
};

interface Chunked {
  /** What arrived so far. */
  readonly text: string;
  readonly contentType: string;
  readonly ended: boolean;
  /** Resolves whether `done` held within `timeoutMs` (false at the timeout or when the answer ended without it). */
  until(done: () => boolean, timeoutMs?: number): Promise<boolean>;
  /** The client goes away: its socket is destroyed. */
  destroy(): void;
}

/** POSTs `body` to /graphql in two chunks (`Transfer-Encoding: chunked`, no Content-Length) and reads the answer as it comes. */
function postChunked(url: string, body: string, headers: Record<string, string>): Chunked {
  const target = new URL(`${url}/graphql`);
  let text = '';
  let contentType = '';
  let ended = false;
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const w of [...waiters]) w();
  };
  const req = request(
    {
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': FULL, ...headers, 'transfer-encoding': 'chunked' },
    },
    (res) => {
      contentType = res.headers['content-type'] ?? '';
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        notify();
      });
      res.on('error', () => undefined);
      res.on('close', () => {
        ended = true;
        notify();
      });
    },
  );
  req.on('error', () => {
    ended = true;
    notify();
  });
  req.write(body.slice(0, 7));
  req.end(body.slice(7));
  const chunked: Chunked = {
    get text() {
      return text;
    },
    get contentType() {
      return contentType;
    },
    get ended() {
      return ended;
    },
    until: (done, timeoutMs = 5_000) =>
      new Promise((resolve) => {
        const check = (): void => {
          if (!done() && !ended) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(done());
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          resolve(done());
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    destroy: () => req.destroy(),
  };
  posts.push(chunked);
  return chunked;
}

/** The ids of the events an SSE answer delivered, of its complete events only. */
const deliveredIds = (text: string): string[] =>
  ssePayloads(text.slice(0, text.lastIndexOf('\n\n') + 2)).map((p) => (p.data as { roomEvents: { id: string } }).roomEvents.id);

const startLive = async (): Promise<Stack> => (stack = await startStack({ live: PAUSED_LIVE }, FAST_LIVE));
const activeRoom = (s: Stack): string => s.sim.live?.activeRooms()[0]?.roomId ?? '';
const subscription = (room: string): string => JSON.stringify({ query: ROOM_EVENTS, variables: { room } });

describe('a subscription over SSE sent with a chunked body', () => {
  it('receives its events exactly as one sent with Content-Length does', async () => {
    const s = await startLive();
    const room = activeRoom(s);
    const plain = await subscribeSse<{ roomEvents: { id: string } }>(s.url, ROOM_EVENTS, { variables: { room } });
    subs.push(plain);
    const chunked = postChunked(s.url, subscription(room), { accept: 'text/event-stream' });
    await settle(() => s.gateway.live.pollers()[0]?.subscribers === 2);
    // The poller's first read is done: what the simulator appends next is new.
    await settle(() => s.sim.stats.requests.some((r) => r.path.endsWith(`/data/events/room/${room}`)));
    await new Promise((r) => setTimeout(r, 100));
    const expected = (s.sim.live?.tick(6) ?? []).filter((c) => c.kind === 'record' && c.roomId === room && c.type === 'events');
    expect(expected.length).toBeGreaterThan(0);
    await plain.waitFor(expected.length);
    const arrived = await chunked.until(() => deliveredIds(chunked.text).length >= expected.length);
    expect([arrived, chunked.contentType, chunked.ended]).toEqual([true, 'text/event-stream', false]);
    const plainIds = plain.payloads.map((p) => p.data?.roomEvents.id);
    expect(deliveredIds(chunked.text)).toEqual(plainIds);
    expect(new Set(plainIds)).toEqual(new Set(expected.map((c) => ('id' in c ? c.id : null))));
  });

  it('ends, with its poller, when the client goes away, as one sent with Content-Length does', async () => {
    const s = await startLive();
    const room = activeRoom(s);
    const plain = await subscribeSse(s.url, ROOM_EVENTS, { variables: { room } });
    const chunked = postChunked(s.url, subscription(room), { accept: 'text/event-stream' });
    await settle(() => s.gateway.live.pollers()[0]?.subscribers === 2);
    expect(s.gateway.live.pollers().map((p) => p.subscribers)).toEqual([2]);
    chunked.destroy();
    await settle(() => s.gateway.live.pollers()[0]?.subscribers === 1);
    expect(s.gateway.live.pollers().map((p) => p.subscribers)).toEqual([1]);
    plain.close();
    await settle(() => s.gateway.live.size === 0);
    expect(s.gateway.live.pollers()).toEqual([]);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toContain('hsgql_live_pollers{what="subscribers"} 0');
    expect(metrics).toContain('hsgql_live_pollers{what="pollers"} 0');
    // Nothing polls any more.
    const polls = s.sim.stats.total;
    await new Promise((r) => setTimeout(r, 400));
    expect(s.sim.stats.total).toBe(polls);
  });
});

describe('@defer over multipart sent with a chunked body', () => {
  it('sends the first part at once and every deferred part as it comes', async () => {
    // A proxy in front of the simulator holds the deferred read until the test lets it go.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const sim = await startSimulator({ rateLimit: NO_RATE_LIMIT });
    closers.push(() => sim.close());
    const upstream = await startScripted(async (req, res, seen) => {
      if (seen.path.includes('/rooms')) await held;
      const answer = await fetch(`${sim.url}${seen.path}?${seen.query.toString()}`, {
        headers: { 'x-api-key': String(req.headers['x-api-key']) },
      });
      json(res, answer.status, await answer.json());
    });
    closers.push(() => upstream.close());
    const { gateway, url } = await startGateway({ HYPERSTUDY_API_URL: upstream.url, CACHE_TTL_MS: '0' });
    closers.push(() => gateway.close());
    // The key is confirmed first: a key's first request goes alone (src/upstream/key-gate.ts), which
    // would hold the deferred read back until the first part's read is answered.
    await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': FULL },
      body: JSON.stringify({ query: '{ experiment(id: "exp_movie01") { name } }' }),
    });
    const query = '{ experiment(id: "exp_movie01") { name ... @defer { rooms(first: 2) { totalCount edges { node { roomId } } } } } }';
    const answer = postChunked(url, JSON.stringify({ query }), { accept: 'multipart/mixed' });
    const firstWhileHeld = await answer.until(() => multipartPayloads(answer.contentType, answer.text).length >= 1);
    const heldThen = upstream.seen.filter((r) => r.path.includes('/rooms') && r.end === null).length;
    release();
    await answer.until(() => answer.ended, 10_000);
    const payloads = multipartPayloads(answer.contentType, answer.text);
    expect([firstWhileHeld, heldThen]).toEqual([true, 1]);
    expect(answer.contentType).toBe('multipart/mixed; boundary="-"');
    expect(payloads.map((p) => p.hasNext)).toEqual([true, false]);
    expect(payloads[0]?.data).toEqual({ experiment: { name: 'Movie Watching Study' } });
    const rooms = (await (
      await fetch(`${sim.url}/data/rooms/experiment/exp_movie01?limit=2`, { headers: { 'x-api-key': FULL } })
    ).json()) as {
      data: { id: string }[];
      metadata: { pagination: { total: number } };
    };
    expect(mergePayloads(payloads)).toEqual({
      experiment: {
        name: 'Movie Watching Study',
        rooms: { totalCount: rooms.metadata.pagination.total, edges: rooms.data.map((r) => ({ node: { roomId: r.id } })) },
      },
    });
  });
});
