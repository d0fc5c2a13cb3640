import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Gateway } from '../src/server.ts';
import { DASHBOARD, sequentialRounds } from './helpers/dashboard.ts';
import { startStack, stackPerTest, startGateway, type GqlReply, type Stack } from './helpers/stack.ts';
import { EVENTS_ONLY, FULL, READONLY } from './helpers/simulator.ts';

const EXP = 'exp_movie01';

describe('the dashboard costs 1 + 1 + 1 + Σ ⌈records ÷ 1000⌉ requests', () => {
  it.each([
    [2, 2],
    [20, 4],
    [50, 8],
  ])('%i rooms × %i participants', async (rooms, participants) => {
    const stack = await startStack({ rooms, participantsPerRoom: participants, latencyMs: 150 });
    try {
      const events = (await stack.rest(`/data/events/experiment/${EXP}?limit=1`)).metadata.pagination.total;
      const sparse = (await stack.rest(`/data/ratings/sparse/experiment/${EXP}?limit=1`)).metadata.pagination.total;
      expect(events).toBe(rooms * participants * 30);
      // A key's first request in a process goes alone until the upstream confirms the key (test below).
      await stack.gql(`{ experiment(id: "${EXP}") { name } }`);
      stack.sim.stats.reset();
      const res = await stack.gql(DASHBOARD, { variables: { id: EXP } });
      expect(res.body.errors).toBeUndefined();
      const expected = 3 + Math.ceil(events / 1000) + Math.ceil(sparse / 1000);
      expect(stack.sim.stats.total).toBe(expected);
      expect(res.body.extensions?.upstream?.requests).toBe(expected);
      // One round when every listing fits its first page; the rest of the pages make the second.
      expect(sequentialRounds(stack.sim.stats.requests, 150)).toBe(events > 1000 || sparse > 1000 ? 2 : 1);
      // The root's own record goes upstream first: everything below it waits for it.
      expect(stack.sim.stats.requests[0]?.path).toBe(`/api/v3/experiments/${EXP}`);
      const roomsConn = (
        res.body.data as { experiment: { rooms: { totalCount: number; edges: { node: { participants: { edges: unknown[] } } }[] } } }
      ).experiment.rooms;
      expect(roomsConn.totalCount).toBe(rooms);
      expect(roomsConn.edges.reduce((n, e) => n + e.node.participants.edges.length, 0)).toBe(rooms * participants);
    } finally {
      await stack.close();
    }
  });

  it("takes one round more on a key's first operation: the root's record confirms the key, then the rest go at once", async () => {
    const stack = await startStack({ rooms: 20, participantsPerRoom: 4, latencyMs: 150 });
    try {
      const first = await stack.gql(DASHBOARD, { variables: { id: EXP } });
      expect(first.body.errors).toBeUndefined();
      expect(stack.sim.stats.total).toBe(7);
      expect(sequentialRounds(stack.sim.stats.requests, 150)).toBe(3);
      expect(stack.sim.stats.requests[0]?.path).toBe(`/api/v3/experiments/${EXP}`);
      stack.sim.stats.reset();
      const second = await stack.gql(DASHBOARD, { variables: { id: EXP } });
      expect(second.body.data).toEqual(first.body.data);
      expect(stack.sim.stats.total).toBe(7);
      expect(sequentialRounds(stack.sim.stats.requests, 150)).toBe(2);
    } finally {
      await stack.close();
    }
  });

  it('explains its decisions on request (X-Explain-Plan: 1) and only then', async () => {
    const stack = await startStack({ rooms: 20, participantsPerRoom: 4 });
    try {
      const plain = await stack.gql(DASHBOARD, { variables: { id: EXP } });
      expect(plain.body.extensions).not.toHaveProperty('plan');
      const res = await stack.gql(DASHBOARD, { variables: { id: EXP }, headers: { 'x-explain-plan': '1' } });
      expect((res.body.extensions as { plan?: unknown }).plan).toEqual([
        { listing: { type: 'events', params: {}, scope: { kind: 'experiment', id: EXP } }, decision: 'lifted', parents: 80, total: 2400 },
      ]);
    } finally {
      await stack.close();
    }
  });
});

describe('planned and unplanned answers are identical', () => {
  let stack: Stack;
  let unplanned: Gateway;
  let unplannedUrl: string;
  beforeAll(async () => {
    stack = await startStack({ rooms: 6, participantsPerRoom: 3, eventsPerParticipant: 40 });
    ({ gateway: unplanned, url: unplannedUrl } = await startGateway({
      HYPERSTUDY_API_URL: stack.sim.url,
      PLANNER: 'off',
      CACHE_TTL_MS: '0',
      UPSTREAM_QUOTA_GUARD: 'off',
      UPSTREAM_BUDGET: '5000',
    }));
  });
  afterAll(async () => {
    await unplanned.close();
    await stack.close();
  });

  const ask = async (url: string, query: string, variables: Record<string, unknown> = {}): Promise<GqlReply['body']> => {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': FULL },
      body: JSON.stringify({ query, variables }),
    });
    return (await res.json()) as GqlReply['body'];
  };

  const cursor = (offset: number): string => Buffer.from(`offset:${offset}`).toString('base64url');
  const shapes: [string, string][] = [
    ['dashboard', DASHBOARD],
    [
      'every data type per participant, small windows',
      `{ experiment(id: "${EXP}") { rooms { edges { node { participants { edges { node {
      events(first: 3) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { raw } } }
      recordings(first: 1) { totalCount edges { cursor node { raw } } }
      videoChat(last: 2) { totalCount pageInfo { hasNextPage hasPreviousPage } edges { cursor node { raw } } }
      chatMessages { totalCount edges { cursor node { raw roomId } } }
      continuousRatings(first: 5, after: "${cursor(3)}") { totalCount edges { cursor node { raw } } }
      sparseRatings(last: 1, before: "${cursor(2)}") { totalCount edges { cursor node { raw roomId } } }
      syncMetrics(aggregationWindow: 600000) { totalCount edges { cursor node { raw } } }
      components(completed: true) { totalCount edges { cursor node { raw } } }
    } } } } } } } }`,
    ],
    [
      'filters and sort per participant',
      `{ experiment(id: "${EXP}") { rooms(first: 4, after: "${cursor(0)}") { edges { node { participants(sort: EMAIL, order: DESC) { edges { node {
      media: events(category: MEDIA, sort: ONSET, order: DESC, first: 4) { totalCount edges { cursor node { id onset } } }
      later: events(startTime: "2024-10-01T09:40:00Z", first: 10) { totalCount edges { node { id timestamp } } }
      video: components(componentType: "ShowVideo", stateId: "state_welcome") { totalCount edges { node { raw } } }
      ratings: sparseRatings(sort: VALUE, order: DESC) { totalCount edges { node { ratingId value } } }
    } } } } } } } }`,
    ],
    [
      'room-level data and participants filters',
      `{ experiment(id: "${EXP}") { rooms(sort: STARTED_AT, order: DESC) { edges { node {
      roomId events(first: 7, category: STATE) { totalCount edges { cursor node { id participant { participantId } } } }
      chatMessages(last: 3) { totalCount edges { cursor node { messageId roomId } } }
      participants(completionCode: SUCCESS) { totalCount edges { node { participantId } } }
    } } } participants(first: 5) { edges { node { participantId sparseRatings { totalCount edges { node { ratingId } } } } } } } }`,
    ],
    [
      'a room root',
      `{ room(id: "room_movie01_003") { participants { edges { node { participantId
      events(first: 2, after: "${cursor(4)}") { totalCount edges { cursor node { id } } }
      continuousRatings(last: 4) { totalCount edges { node { value } } }
    } } } events(first: 5) { totalCount edges { node { id } } } } }`,
    ],
    [
      'one participant',
      `{ participant(id: "$P", roomId: "room_movie01_002") { events(first: 6) { totalCount edges { cursor node { id } } } room { roomId } } }`,
    ],
  ];

  it.each(shapes)('%s', async (_name, query) => {
    let text = query;
    if (text.includes('$P')) {
      const p = await stack.rest('/data/participants/room/room_movie01_002?limit=1');
      text = text.replace('$P', String(p.data[0]?.id));
    }
    const variables = text.includes('$id') ? { id: EXP } : {};
    const planned = await ask(stack.url, text, variables);
    const naive = await ask(unplannedUrl, text, variables);
    expect(planned.errors).toBeUndefined();
    expect(planned.data).toEqual(naive.data);
    expect(planned.extensions?.upstream?.requests).toBeLessThanOrEqual((naive.extensions?.upstream?.requests ?? 0) + 1);
  });

  it('costs 1 + 1 + 2 + 4 × 2 = 12 requests for the 2 × 2 dashboard without the planner', async () => {
    const small = await startStack({ rooms: 2, participantsPerRoom: 2 }, { PLANNER: 'off' });
    try {
      const res = await small.gql(DASHBOARD, { variables: { id: EXP } });
      expect(res.body.errors).toBeUndefined();
      expect(small.sim.stats.total).toBe(12);
    } finally {
      await small.close();
    }
  });
});

describe('choosing the cheaper plan', () => {
  it('asks per participant when the wider listing would cost more, spending at most one probe', async () => {
    const stack = await startStack({ rooms: 2, participantsPerRoom: 2, eventsPerParticipant: 3000 });
    try {
      const query = `{ experiment(id: "${EXP}") { rooms { edges { node { participants { edges { node { events(first: 10) { totalCount edges { node { id } } } } } } } } } } }`;
      const res = await stack.gql(query);
      expect(res.body.errors).toBeUndefined();
      // experiment, rooms, participants, one events probe at experiment scope (12,000 events: 12 pages
      // > 4 participants), then one window per participant.
      expect(stack.sim.stats.total).toBe(8);
      const windows = stack.sim.stats.requests.filter((r) => r.path.includes('/data/events/participant/'));
      expect(windows).toHaveLength(4);
      expect(windows.every((r) => r.query.includes('limit=10'))).toBe(true);
      const counts = (
        res.body.data as {
          experiment: { rooms: { edges: { node: { participants: { edges: { node: { events: { totalCount: number } } }[] } } }[] } };
        }
      ).experiment.rooms.edges.flatMap((r) => r.node.participants.edges.map((p) => p.node.events.totalCount));
      expect(counts).toEqual([3000, 3000, 3000, 3000]);
    } finally {
      await stack.close();
    }
  });
});

describe('shared reads, scopes, quota and budget', () => {
  const ownStack = stackPerTest();

  it('answers repeats from the short-lived cache per key, and forgets the key after it writes', async () => {
    const stack = await ownStack({}, { CACHE_TTL_MS: '60000' });
    const query = `{ experiment(id: "${EXP}") { name events(first: 2) { totalCount } } }`;
    const first = await stack.gql(query);
    const second = await stack.gql(query);
    expect(first.body.data).toEqual(second.body.data);
    expect(second.body.extensions?.upstream).toMatchObject({ requests: 0, cacheHits: 2 });
    const other = await stack.gql(query, { key: READONLY });
    expect(other.body.extensions?.upstream).toMatchObject({ requests: 2, cacheHits: 0 });
    await stack.gql('mutation { validateExperiment(input: { name: "x" }) { valid } }');
    const after = await stack.gql(query);
    expect(after.body.extensions?.upstream).toMatchObject({ requests: 2, cacheHits: 0 });
    expect(stack.sim.stats.byKey()).toEqual({ demo_full: 5, demo_readonly: 2 });
  });

  it('sends identical GETs of concurrent operations of one key once, never joining another key', async () => {
    const stack = await ownStack({ latencyMs: 100 });
    const query = `{ experiment(id: "${EXP}") { name events(first: 2) { totalCount } } }`;
    const replies = await Promise.all([...Array.from({ length: 5 }, () => stack.gql(query)), stack.gql(query, { key: READONLY })]);
    for (const r of replies) expect(r.body.data).toEqual(replies[0]?.body.data);
    const full = replies.slice(0, 5).map((r) => r.body.extensions?.upstream);
    expect(full.reduce((n, c) => n + (c?.requests ?? 0), 0)).toBe(2);
    expect(full.reduce((n, c) => n + (c?.coalesced ?? 0), 0)).toBe(8);
    expect(replies[5]?.body.extensions?.upstream).toMatchObject({ requests: 2, coalesced: 0 });
    expect(stack.sim.stats.byKey()).toEqual({ demo_full: 2, demo_readonly: 2 });
  });

  it('mirrors a missing scope: the next request needing it is FORBIDDEN without asking', async () => {
    const stack = await ownStack();
    const query = `{ room(id: "room_movie01_001") { recordings(first: 1) { totalCount } } }`;
    const first = await stack.gql(query, { key: EVENTS_ONLY });
    expect(first.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const second = await stack.gql(query, { key: EVENTS_ONLY });
    expect(second.body.errors?.[0]?.extensions).toMatchObject({
      code: 'FORBIDDEN',
      upstream: { details: { required: ['read:recordings'], mirrored: true } },
    });
    expect(stack.sim.stats.byPath()).toEqual({
      '/api/v3/data/rooms/room/room_movie01_001': 2,
      '/api/v3/data/recordings/room/room_movie01_001': 1,
    });
    const full = await stack.gql(query);
    expect(full.body.errors).toBeUndefined();
  });

  it('refuses locally what would exceed the per-endpoint limit', async () => {
    const stack = await ownStack({}, { UPSTREAM_QUOTA_GUARD: 'on', UPSTREAM_MINUTE_LIMIT: '2' });
    const query = `{ experiment(id: "${EXP}") { name } }`;
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await stack.gql(query)).body.errors?.[0]?.extensions?.code ?? 'ok');
    expect(codes).toEqual(['ok', 'ok', 'RATE_LIMITED']);
    expect(stack.sim.stats.total).toBe(2);
  });

  it("honours the upstream's Retry-After for every operation of the key", async () => {
    const stack = await ownStack({ rateLimit: { enabled: true, perHour: 1000, perMinute: 1 } });
    const query = `{ experiment(id: "${EXP}") { name } }`;
    await stack.gql(query);
    const limited = await stack.gql(query);
    expect(limited.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', upstream: { status: 429 } });
    const others = await Promise.all([stack.gql(query), stack.gql(`{ experiments { totalCount } }`)]);
    for (const res of others)
      expect(res.body.errors?.[0]?.extensions).toMatchObject({
        code: 'RATE_LIMITED',
        retryAfter: expect.any(Number),
        upstream: { status: null },
      });
    expect(stack.sim.stats.total).toBe(2);
    const otherKey = await stack.gql(query, { key: READONLY });
    expect(otherKey.body.errors).toBeUndefined();
  });

  it('stops a runaway operation at its budget with UPSTREAM_BUDGET_EXCEEDED on the fields it could not afford', async () => {
    const stack = await ownStack({ rooms: 3, participantsPerRoom: 2 }, { PLANNER: 'off', UPSTREAM_BUDGET: '6' });
    const res = await stack.gql(DASHBOARD, { variables: { id: EXP } });
    expect(stack.sim.stats.total).toBe(6);
    const codes = new Set(res.body.errors?.map((e) => e.extensions?.code));
    expect(codes).toEqual(new Set(['UPSTREAM_BUDGET_EXCEEDED']));
    expect((res.body.data as { experiment: { name: string } }).experiment.name).toBe('Movie Watching Study');
  });

  it('refuses before execution an operation that could never fit the budget', async () => {
    const stack = await ownStack({}, { UPSTREAM_BUDGET: '3' });
    const res = await stack.gql(
      `{ experiment(id: "${EXP}") { a: events(category: MEDIA) { totalCount } b: events(category: STATE) { totalCount } c: chatMessages { totalCount } } }`,
    );
    expect(res.body.errors).toEqual([
      {
        message: 'This operation needs at least 4 upstream requests; the budget of one operation is 3',
        extensions: { code: 'UPSTREAM_BUDGET_EXCEEDED', needed: 4, budget: 3 },
      },
    ]);
    expect(stack.sim.stats.total).toBe(0);
  });
});
