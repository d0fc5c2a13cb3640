import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LISTINGS } from '../src/spec/data-types.ts';
import { nodes, startStack, type Stack } from './helpers/stack.ts';
import { READONLY, EVENTS_ONLY } from './helpers/simulator.ts';

const EXP = 'exp_movie01';
const ROOM = 'room_movie01_002';
const DATA_FIELDS = Object.fromEntries(LISTINGS.filter((s) => s.scopes.includes('participant')).map((s) => [s.field, s.path]));

let stack: Stack;
let participant: { id: string; roomId: string };
beforeAll(async () => {
  stack = await startStack();
  const p = (await stack.rest(`/data/participants/room/${ROOM}?limit=1&offset=1`)).data[0];
  participant = { id: String(p?.id), roomId: String(p?.roomId) };
});
afterAll(() => stack.close());
beforeEach(() => stack.sim.stats.reset());

describe('roots', () => {
  it('lists experiments with search and pagination', async () => {
    const res = await stack.gql(`{
      all: experiments { totalCount edges { node { experimentId name roomCount participantCount } } }
      found: experiments(search: "joint") { totalCount edges { node { experimentId } } }
      page: experiments(first: 1) { pageInfo { hasNextPage hasPreviousPage } edges { node { experimentId } } }
    }`);
    expect(res.body.errors).toBeUndefined();
    const data = res.body.data as Record<string, unknown>;
    expect(data.all).toEqual({
      totalCount: 2,
      edges: [
        { node: { experimentId: 'exp_movie01', name: 'Movie Watching Study', roomCount: 4, participantCount: 12 } },
        { node: { experimentId: 'exp_joint02', name: 'Joint Attention Pilot', roomCount: 1, participantCount: 3 } },
      ],
    });
    expect(nodes(data.found)).toEqual([{ experimentId: 'exp_joint02' }]);
    expect(data.page).toEqual({
      pageInfo: { hasNextPage: true, hasPreviousPage: false },
      edges: [{ node: { experimentId: 'exp_movie01' } }],
    });
  });

  it('answers experiment, room and participant by id, and node() for each', async () => {
    const res = await stack.gql<Record<string, Record<string, unknown>>>(
      `query($p: ID!, $r: ID!) {
        experiment(id: "${EXP}") { id experimentId name states }
        room(id: "${ROOM}") { id roomId experimentId deploymentId deploymentName participantCount }
        participant(id: $p, roomId: $r) { id participantId roomId experimentId completionCode }
      }`,
      { variables: { p: participant.id, r: participant.roomId } },
    );
    expect(res.body.errors).toBeUndefined();
    const { experiment, room, participant: p } = res.body.data ?? {};
    expect(experiment).toMatchObject({ experimentId: EXP, name: 'Movie Watching Study' });
    expect(Array.isArray(experiment?.states)).toBe(true);
    expect(room).toMatchObject({
      roomId: ROOM,
      experimentId: EXP,
      deploymentId: 'dep_movie01_b',
      deploymentName: 'Online wave 1',
      participantCount: 3,
    });
    expect(p).toMatchObject({ participantId: participant.id, roomId: ROOM, experimentId: EXP });

    const again = await stack.gql<Record<string, Record<string, unknown>>>(
      `query($a: ID!, $b: ID!, $c: ID!) {
      a: node(id: $a) { __typename ... on Experiment { experimentId } }
      b: node(id: $b) { __typename ... on Room { roomId } }
      c: node(id: $c) { __typename ... on Participant { participantId roomId } }
    }`,
      { variables: { a: experiment?.id, b: room?.id, c: p?.id } },
    );
    expect(again.body.data).toEqual({
      a: { __typename: 'Experiment', experimentId: EXP },
      b: { __typename: 'Room', roomId: ROOM },
      c: { __typename: 'Participant', participantId: participant.id, roomId: ROOM },
    });

    // The same ids through node and nodes in one operation (the records are shared by both).
    const both = await stack.gql<Record<string, unknown>>(
      `query($a: ID!, $b: ID!, $c: ID!) {
      one: node(id: $a) { __typename }
      many: nodes(ids: [$a, $b, $c, $a]) { __typename id }
    }`,
      { variables: { a: experiment?.id, b: room?.id, c: p?.id } },
    );
    expect(both.body.errors).toBeUndefined();
    expect(both.body.data).toEqual({
      one: { __typename: 'Experiment' },
      many: [
        { __typename: 'Experiment', id: experiment?.id },
        { __typename: 'Room', id: room?.id },
        { __typename: 'Participant', id: p?.id },
        { __typename: 'Experiment', id: experiment?.id },
      ],
    });
  });

  it('answers NOT_FOUND for unknown ids, with null data', async () => {
    const res = await stack.gql(`{ experiment(id: "exp_nope") { name } room(id: "room_nope") { roomId } }`);
    expect(res.body.data).toEqual({ experiment: null, room: null });
    expect(res.body.errors?.map((e) => [e.path?.[0], e.extensions?.code])).toEqual([
      ['experiment', 'NOT_FOUND'],
      ['room', 'NOT_FOUND'],
    ]);
    const missing = await stack.gql(`{ participant(id: "ppt_nope", roomId: "${ROOM}") { name } }`);
    expect(missing.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('data connections at every level', () => {
  const levels = () => ({
    experiment: { query: `experiment(id: "${EXP}")`, rest: `experiment/${EXP}` },
    room: { query: `room(id: "${ROOM}")`, rest: `room/${ROOM}` },
    participant: { query: `participant(id: "${participant.id}", roomId: "${ROOM}")`, rest: `participant/${participant.id}?roomId=${ROOM}` },
  });

  for (const [field, path] of Object.entries(DATA_FIELDS)) {
    it(`${field} matches the upstream ${path} records at experiment, room and participant level`, async () => {
      for (const [level, { query, rest }] of Object.entries(levels())) {
        const res = await stack.gql<Record<string, Record<string, unknown>>>(
          `{ x: ${query} { ${field}(first: 1000) { totalCount edges { node { raw } } } } }`,
        );
        expect(res.body.errors, `${field} at ${level}`).toBeUndefined();
        const expected = await stack.rest(`/data/${path}/${rest}`);
        const connection = res.body.data?.x?.[field] as { totalCount: number };
        expect(connection.totalCount).toBe(expected.metadata.pagination.total);
        expect(nodes<{ raw: unknown }>(connection).map((n) => n.raw)).toEqual(expected.data);
      }
    });
  }

  it('rooms and participants connections match the upstream at their levels', async () => {
    const res = await stack.gql<Record<string, Record<string, unknown>>>(`{
      experiment(id: "${EXP}") { rooms { totalCount edges { node { raw } } } participants { totalCount edges { node { raw } } } }
      room(id: "${ROOM}") { participants { totalCount edges { node { raw } } } }
    }`);
    const rooms = await stack.rest(`/data/rooms/experiment/${EXP}`);
    const expParticipants = await stack.rest(`/data/participants/experiment/${EXP}`);
    const roomParticipants = await stack.rest(`/data/participants/room/${ROOM}`);
    const data = res.body.data ?? {};
    expect(nodes<{ raw: unknown }>(data.experiment?.rooms).map((n) => n.raw)).toEqual(rooms.data);
    expect(nodes<{ raw: unknown }>(data.experiment?.participants).map((n) => n.raw)).toEqual(expParticipants.data);
    expect(nodes<{ raw: unknown }>(data.room?.participants).map((n) => n.raw)).toEqual(roomParticipants.data);
    expect((data.experiment?.participants as { totalCount: number }).totalCount).toBe(12);
  });

  it('keeps upstream field names and types on records', async () => {
    const res = await stack.gql<Record<string, Record<string, unknown>>>(`{ room(id: "${ROOM}") {
      events(first: 1, category: QUESTIONNAIRE) { edges { node { id timestamp onset eventType category stateName stateId participantRole response experimentId roomId participantId } } }
      recordings(first: 1) { edges { node { recordingId startTime duration videoOffset downloadUrl metadata } } }
      syncMetrics(first: 1) { edges { node { timeDrift syncQuality latency playbackRate } } }
      sparseRatings(first: 1) { edges { node { value rawValue scale labels } } }
      chatMessages(first: 1) { edges { node { messageId recipientIds content } } }
    } }`);
    expect(res.body.errors).toBeUndefined();
    const room = res.body.data?.room ?? {};
    const event = nodes<Record<string, unknown>>(room.events)[0];
    expect(event).toMatchObject({
      category: 'questionnaire',
      experimentId: EXP,
      roomId: expect.any(String),
      participantId: expect.any(String),
    });
    expect(typeof event?.onset).toBe('number');
    expect(event?.response).toEqual({ value: expect.any(Number), responseTime: expect.any(Number) });
    expect(String(event?.timestamp)).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(nodes<Record<string, unknown>>(room.recordings)[0]).toMatchObject({
      downloadUrl: expect.stringContaining('X-Goog-Signature'),
      metadata: { type: expect.any(String) },
    });
    expect(nodes<Record<string, unknown>>(room.sparseRatings)[0]?.scale).toEqual({ min: expect.any(Number), max: expect.any(Number) });
    expect(Array.isArray(nodes<Record<string, unknown>>(room.chatMessages)[0]?.recipientIds)).toBe(true);
  });

  it('treats legacy sessionId records like roomId records', async () => {
    const rest = await stack.rest(`/data/events/experiment/${EXP}`);
    const legacyIndex = rest.data.findIndex((r) => !('roomId' in r) && 'sessionId' in r);
    expect(legacyIndex).toBeGreaterThanOrEqual(0);
    const legacy = rest.data[legacyIndex] ?? {};
    const res = await stack.gql<Record<string, Record<string, unknown>>>(
      `{ experiment(id: "${EXP}") { events(first: 1, after: "${Buffer.from(`offset:${legacyIndex - 1}`).toString('base64url')}") { edges { node { id roomId room { roomId } participant { participantId roomId } } } } } }`,
    );
    expect(res.body.errors).toBeUndefined();
    expect(nodes(res.body.data?.experiment?.events)).toEqual([
      {
        id: legacy.id,
        roomId: legacy.sessionId,
        room: { roomId: legacy.sessionId },
        participant: { participantId: legacy.participantId, roomId: legacy.sessionId },
      },
    ]);
  });
});

describe('filters', () => {
  it('passes every filter upstream as its parameter and returns what the upstream filtered', async () => {
    const res = await stack.gql<Record<string, Record<string, unknown>>>(`{ experiment(id: "${EXP}") {
      events(first: 1000, category: MEDIA, startTime: "2024-10-01T09:00:00Z", endTime: "2024-10-01T12:00:00.000Z", sort: ONSET, order: DESC) { totalCount edges { node { raw } } }
      components(first: 1000, componentType: "ShowVideo", completed: true, stateId: "state_welcome", deploymentId: "dep_movie01_a") { totalCount edges { node { raw } } }
      syncMetrics(first: 1000, aggregationWindow: 60000) { totalCount edges { node { aggregationWindow sampleCount } } }
      participants(first: 1000, completionCode: SUCCESS, sort: EMAIL) { totalCount edges { node { completionCode } } }
      rooms(first: 1000, sort: STARTED_AT, order: DESC) { edges { node { roomId } } }
      recordings(first: 1000, sort: FILE_SIZE) { totalCount }
    } }`);
    expect(res.body.errors).toBeUndefined();
    const queries = stack.sim.stats.requests.map((r) => `${r.path.replace('/api/v3', '')}${r.query ? `?${r.query}` : ''}`).sort();
    expect(queries).toEqual([
      `/data/components/experiment/${EXP}?completed=true&componentType=ShowVideo&deploymentId=dep_movie01_a&limit=1000&offset=0&stateId=state_welcome`,
      `/data/events/experiment/${EXP}?category=media&endTime=2024-10-01T12%3A00%3A00.000Z&limit=1000&offset=0&order=desc&sort=onset&startTime=2024-10-01T09%3A00%3A00.000Z`,
      `/data/participants/experiment/${EXP}?completionCode=SUCCESS&limit=1000&offset=0&sort=email`,
      `/data/recordings/experiment/${EXP}?limit=1000&offset=0&sort=fileSize`,
      `/data/rooms/experiment/${EXP}?limit=5000&offset=0&order=desc&sort=startedAt`,
      `/data/sync/experiment/${EXP}?aggregationWindow=60000&limit=1000&offset=0`,
      `/experiments/${EXP}`,
    ]);
    const exp = res.body.data?.experiment ?? {};
    const events = await stack.rest(
      `/data/events/experiment/${EXP}?category=media&startTime=2024-10-01T09:00:00Z&endTime=2024-10-01T12:00:00.000Z&sort=onset&order=desc`,
    );
    expect(nodes<{ raw: unknown }>(exp.events).map((n) => n.raw)).toEqual(events.data);
    expect(events.data.length).toBeGreaterThan(0);
    const components = await stack.rest(
      `/data/components/experiment/${EXP}?componentType=ShowVideo&completed=true&stateId=state_welcome&deploymentId=dep_movie01_a`,
    );
    expect(nodes<{ raw: unknown }>(exp.components).map((n) => n.raw)).toEqual(components.data);
    expect(nodes<{ aggregationWindow: number }>(exp.syncMetrics).every((n) => n.aggregationWindow === 60000)).toBe(true);
    expect(nodes(exp.participants)).toEqual([{ completionCode: 'SUCCESS' }, { completionCode: 'SUCCESS' }]);
    expect(nodes(exp.rooms)).toEqual([
      { roomId: 'room_movie01_004' },
      { roomId: 'room_movie01_003' },
      { roomId: 'room_movie01_002' },
      { roomId: 'room_movie01_001' },
    ]);
  });
});

describe('pagination', () => {
  type Conn = {
    totalCount: number;
    pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
    edges: { cursor: string; node: { id: string } }[];
  };
  const page = async (args: string): Promise<Conn> => {
    const res = await stack.gql<{ room: { events: Conn } }>(
      `{ room(id: "${ROOM}") { events${args ? `(${args})` : ''} { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id } } } } }`,
    );
    expect(res.body.errors).toBeUndefined();
    return (res.body.data as { room: { events: Conn } }).room.events;
  };

  it('walks forward with first/after and backward with last/before over exactly the upstream order', async () => {
    const all = (await stack.rest(`/data/events/room/${ROOM}`)).data.map((e) => e.id);
    expect(all).toHaveLength(90);
    const forward: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const conn: Conn = await page(`first: 25${after ? `, after: "${after}"` : ''}`);
      forward.push(...conn.edges.map((e) => e.node.id));
      pages++;
      expect(conn.totalCount).toBe(90);
      expect(conn.pageInfo.hasPreviousPage).toBe(after !== null);
      if (!conn.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor;
    }
    expect(pages).toBe(4);
    expect(forward).toEqual(all);

    const backward: string[] = [];
    let before: string | null = null;
    for (;;) {
      const conn: Conn = await page(`last: 40${before ? `, before: "${before}"` : ''}`);
      backward.unshift(...conn.edges.map((e) => e.node.id));
      if (!conn.pageInfo.hasPreviousPage) break;
      before = conn.pageInfo.startCursor;
    }
    expect(backward).toEqual(all);
  });

  it('combines first and last, after and before, and answers empty windows', async () => {
    const all = (await stack.rest(`/data/events/room/${ROOM}`)).data.map((e) => e.id);
    const first = await page('first: 10');
    const middle = await page(`first: 5, last: 2, after: "${first.edges[1]?.cursor}"`);
    expect(middle.edges.map((e) => e.node.id)).toEqual(all.slice(5, 7));
    const between = await page(`after: "${first.edges[1]?.cursor}", before: "${first.edges[6]?.cursor}"`);
    expect(between.edges.map((e) => e.node.id)).toEqual(all.slice(2, 6));
    const none = await page('first: 0');
    expect(none).toEqual({
      totalCount: 90,
      pageInfo: { hasNextPage: true, hasPreviousPage: false, startCursor: null, endCursor: null },
      edges: [],
    });
    const defaults = await page('');
    expect(defaults.edges).toHaveLength(90);
  });
});

describe('back-links', () => {
  it('resolves event.participant, participant.room, room.experiment through loaders', async () => {
    const res = await stack.gql<Record<string, Record<string, unknown>>>(`{ room(id: "${ROOM}") {
      events(first: 90) { edges { node { participantId participant { participantId room { roomId experiment { experimentId } } } experiment { experimentId } } } }
    } }`);
    expect(res.body.errors).toBeUndefined();
    const events = nodes<{
      participantId: string;
      participant: { participantId: string; room: { roomId: string; experiment: { experimentId: string } } };
      experiment: { experimentId: string };
    }>(res.body.data?.room?.events);
    expect(events).toHaveLength(90);
    for (const e of events) {
      expect(e.participant).toEqual({ participantId: e.participantId, room: { roomId: ROOM, experiment: { experimentId: EXP } } });
      expect(e.experiment).toEqual({ experimentId: EXP });
    }
    // room, its events, one participants listing for the room, and the experiment: each once.
    expect(stack.sim.stats.byPath()).toEqual({
      [`/api/v3/data/rooms/room/${ROOM}`]: 1,
      [`/api/v3/data/events/room/${ROOM}`]: 1,
      [`/api/v3/data/participants/room/${ROOM}`]: 1,
      [`/api/v3/experiments/${EXP}`]: 1,
    });
    expect(res.body.extensions?.upstream).toMatchObject({ requests: 4, pages: 3 });
  });

  it('answers experiment access, config and export', async () => {
    const res = await stack.gql<Record<string, Record<string, unknown>>>(
      `{ experiment(id: "${EXP}") { access { canView canExport } config export } }`,
    );
    expect(res.body.errors).toBeUndefined();
    const exp = res.body.data?.experiment ?? {};
    expect(exp.access).toEqual({ canView: true, canExport: true });
    expect(Object.keys(exp.config as object)).toEqual(['experimentId', 'states', 'roles', 'settings', 'requiredParticipants']);
    expect(exp.export).toMatchObject({ experiment: { name: 'Movie Watching Study' }, mediaAssets: [] });
    const limited = await stack.gql<Record<string, Record<string, unknown>>>(
      `{ experiment(id: "${EXP}") { access { canView canExport } } }`,
      { key: EVENTS_ONLY },
    );
    expect(limited.body.data?.experiment?.access).toEqual({ canView: true, canExport: false });
    const readonly = await stack.gql<Record<string, Record<string, unknown>>>(`{ experiment(id: "${EXP}") { access { canExport } } }`, {
      key: READONLY,
    });
    expect(readonly.body.data?.experiment?.access).toEqual({ canExport: true });
  });
});
