import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Gateway } from '../src/server.ts';
import { startSimulator, type Simulator } from '../src/simulator/server.ts';
import { DASHBOARD, sequentialRounds } from './helpers/dashboard.ts';
import { mergePayloads, multipartPayloads, ssePayloads, type Payload } from './helpers/incremental.ts';
import { FULL, NO_RATE_LIMIT } from './helpers/simulator.ts';
import { startGateway } from './helpers/stack.ts';

const EXP = 'exp_movie01';
const LATENCY = 150;
const EVENTS = 'events(first: 1000) { totalCount edges { cursor node { id eventType onset roomId } } }';
/** The dashboard with each participant's events deferred. */
const DEFERRED = DASHBOARD.replace(EVENTS, `... @defer { ${EVENTS} }`);

let sim: Simulator;
let gateway: Gateway;
let url: string;
const lines: Record<string, unknown>[] = [];
beforeAll(async () => {
  sim = await startSimulator({
    rooms: 20,
    participantsPerRoom: 4,
    latencyMs: LATENCY,
    rateLimit: NO_RATE_LIMIT,
  });
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  ({ gateway, url } = await startGateway(
    { HYPERSTUDY_API_URL: sim.url, CACHE_TTL_MS: '0', UPSTREAM_QUOTA_GUARD: 'off' },
    { logger: pino({ level: 'info' }, sink) },
  ));
  // The key's first request in a process goes alone until the upstream confirms the key
  // (src/upstream/key-gate.ts): confirmed here, so that each test counts the rounds of a known key.
  await post('{ experiment(id: "exp_movie01") { name } }', 'application/graphql-response+json');
});
afterAll(async () => {
  await gateway.close();
  await sim.close();
});
beforeEach(() => sim.stats.reset());

async function post(query: string, accept: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept, 'x-api-key': FULL, ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return { contentType: res.headers.get('content-type') ?? '', body: await res.text() };
}

/** The answer and the upstream requests (with their query strings) of the same query without @defer/@stream. */
async function baseline(query: string, variables: Record<string, unknown> = {}) {
  const res = await post(query, 'application/graphql-response+json', variables);
  const answer = JSON.parse(res.body) as Payload;
  expect(answer.errors).toBeUndefined();
  const requests = sim.stats.byPath(true);
  const rounds = sequentialRounds(sim.stats.requests, LATENCY);
  sim.stats.reset();
  return { answer, requests, rounds };
}

describe('@defer', () => {
  it.each([
    ['multipart HTTP', 'multipart/mixed', multipartPayloads],
    ['SSE', 'text/event-stream', (_type: string, body: string) => ssePayloads(body)],
  ])(
    'over %s: the 20×4 dashboard with deferred events costs exactly the same upstream requests and rounds',
    async (_name, accept, parse) => {
      const plain = await baseline(DASHBOARD, { id: EXP });
      expect(plain.rounds).toBe(2);
      const res = await post(DEFERRED, accept, { id: EXP });
      expect(res.contentType).toContain(accept);
      const payloads = parse(res.contentType, res.body);
      expect(payloads.length).toBeGreaterThan(1);
      // The top arrives first, without the events; 80 deferred parts follow.
      const first = payloads[0];
      expect(first?.hasNext).toBe(true);
      const rooms = (first?.data as { experiment: { rooms: { edges: { node: { participants: { edges: { node: object }[] } } }[] } } })
        .experiment.rooms.edges;
      expect(rooms[0]?.node.participants.edges[0]?.node).not.toHaveProperty('events');
      expect(payloads.flatMap((p) => p.incremental ?? [])).toHaveLength(80);
      expect(mergePayloads(payloads)).toEqual(plain.answer.data);
      // What it cost is known at the end: on the final payload only.
      expect(payloads.at(-1)?.hasNext).toBe(false);
      expect(payloads.at(-1)?.extensions?.upstream?.requests).toBe(7);
      expect(payloads.slice(0, -1).every((p) => p.extensions?.upstream === undefined)).toBe(true);
      // The lookahead (which walks fragments, deferred ones too) started the events at once.
      expect(sim.stats.byPath(true)).toEqual(plain.requests);
      expect(sequentialRounds(sim.stats.requests, LATENCY)).toBe(2);
    },
  );

  it('the planner explains the same decisions, and the operation is logged once, with what it cost in all', async () => {
    const res = await post(DEFERRED, 'multipart/mixed', { id: EXP }, { 'x-explain-plan': '1', 'x-request-id': 'deferred-dashboard' });
    const last = multipartPayloads(res.contentType, res.body).at(-1);
    expect(last?.extensions?.plan).toEqual([
      { listing: { type: 'events', params: {}, scope: { kind: 'experiment', id: EXP } }, decision: 'lifted', parents: 80, total: 2400 },
    ]);
    const logged = lines.filter((l) => l.requestId === 'deferred-dashboard');
    expect(logged).toEqual([
      expect.objectContaining({
        msg: 'operation',
        operation: 'Dashboard',
        outcome: 'ok',
        upstream: expect.objectContaining({ requests: 7 }),
      }),
    ]);
  });
});

describe('@stream', () => {
  it("streams a connection's edges: the first two at once, the rest after, for the same upstream requests", async () => {
    const query = (stream: string) =>
      `{ room(id: "room_movie01_003") { roomId events(first: 10, category: MEDIA) { totalCount edges ${stream} { cursor node { id eventType } } } } }`;
    const plain = await baseline(query(''));
    const res = await post(query('@stream(initialCount: 2)'), 'multipart/mixed');
    const payloads = multipartPayloads(res.contentType, res.body);
    const edges = (payloads[0]?.data as { room: { events: { edges: unknown[] } } }).room.events.edges;
    expect(edges).toHaveLength(2);
    // The other eight follow (items already in hand may arrive together).
    expect(payloads.flatMap((p) => p.incremental ?? []).reduce((n, part) => n + (part.items?.length ?? 0), 0)).toBe(8);
    expect(mergePayloads(payloads)).toEqual(plain.answer.data);
    expect((plain.answer.data as { room: { events: { edges: unknown[] } } }).room.events.edges).toHaveLength(10);
    expect(sim.stats.byPath(true)).toEqual(plain.requests);
    expect(payloads.at(-1)?.extensions?.upstream?.requests).toBe(2);
  });
});
