/**
 * Tables from the graph (issue 20): a row list whose connection also selects its totalCount, pageInfo
 * and edges' cursors is streamed like any other — every record is read, so each parent's totalCount is
 * its listing's total (from a first page, or counted), its pageInfo that of the whole listing, and each
 * record's cursor its position in its parent's listing — with the values the JSON answer has.
 * Anything else the connection says (warnings, processing) is known only from the whole listing: such
 * a table is made from the answer in memory, and its dry run says why.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type GqlReply, type Stack } from './helpers/stack.ts';
import { FULL } from './helpers/simulator.ts';
import { fetchTable } from './helpers/tables.ts';

const EXP = 'exp_movie01';

const HEADER = 'totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }';

/** 2 rooms × 3 participants × 1000 events: 6 pages at experiment scope, no more than one per participant (lifted). */
const NESTED = (window: string) =>
  `{ experiment(id: "${EXP}") { rooms${window} { edges { node { roomId participants${window} { edges { node { participantId events${window} { ${HEADER} edges { cursor node { id onset } } } } } } } } } } }`;

interface PageInfo {
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  startCursor: string | null;
  endCursor: string | null;
}
interface Events {
  totalCount: number;
  pageInfo: PageInfo;
  edges: { cursor: string; node: { id: string; onset: number } }[];
}

const ndjson = (text: string): Record<string, unknown>[] =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const byId = (key: string) => (a: Record<string, unknown>, b: Record<string, unknown>) => String(a[key]).localeCompare(String(b[key]));

let stack: Stack;
beforeAll(async () => {
  stack = await startStack(
    { rooms: 2, participantsPerRoom: 3, eventsPerParticipant: 1000, latencyMs: 50 },
    { UPSTREAM_PAGE_CONCURRENCY: '1' },
  );
});
afterAll(async () => {
  await stack?.close();
});

describe('a row list with its totalCount, pageInfo and cursors', () => {
  it('streams a nested table whose rows carry each participant’s totalCount, pageInfo and cursors exactly as the JSON answer has them', async () => {
    stack.sim.stats.reset();
    const reply = await fetchTable(stack.url, NESTED(''), { format: 'ndjson' });
    expect(reply.status).toBe(200);
    const rows = ndjson(reply.text);
    const requests = stack.sim.stats.byPath();

    // The JSON answer, every record in one window per parent (1000 events each), flattened by hand.
    const json = await stack.gql<{
      experiment: {
        rooms: { edges: { node: { roomId: string; participants: { edges: { node: { participantId: string; events: Events } }[] } } }[] };
      };
    }>(NESTED('(first: 1000)'));
    const P = 'experiment.rooms.participants';
    const rooms = json.body.data?.experiment.rooms.edges ?? [];
    const expected = rooms.flatMap(({ node: room }) =>
      room.participants.edges.flatMap(({ node: p }) =>
        p.events.edges.map(({ cursor, node }) => ({
          'experiment.rooms.roomId': room.roomId,
          [`${P}.participantId`]: p.participantId,
          [`${P}.events.totalCount`]: p.events.totalCount,
          [`${P}.events.pageInfo.hasNextPage`]: p.events.pageInfo.hasNextPage,
          [`${P}.events.pageInfo.hasPreviousPage`]: p.events.pageInfo.hasPreviousPage,
          [`${P}.events.pageInfo.startCursor`]: p.events.pageInfo.startCursor,
          [`${P}.events.pageInfo.endCursor`]: p.events.pageInfo.endCursor,
          [`${P}.events.cursor`]: cursor,
          [`${P}.events.id`]: node.id,
          [`${P}.events.onset`]: node.onset,
        })),
      ),
    );
    expect(expected).toHaveLength(6000);
    expect(Object.keys(rows[0] ?? {})).toEqual(Object.keys(expected[0] ?? {}));
    // Rows come in the events' order across the whole table; the set is the JSON answer's.
    expect([...rows].sort(byId(`${P}.events.id`))).toEqual([...expected].sort(byId(`${P}.events.id`)));
    expect(new Set(rows.map((r) => r[`${P}.events.totalCount`]))).toEqual(new Set([1000]));
    expect(rows.filter((r) => r[`${P}.events.cursor`] === r[`${P}.events.pageInfo.endCursor`])).toHaveLength(6);

    // The experiment, rooms and participants; the events at experiment scope (6 pages), and each participant's total (a request of one record).
    expect(requests).toEqual({
      [`/api/v3/experiments/${EXP}`]: 1,
      [`/api/v3/data/rooms/experiment/${EXP}`]: 1,
      [`/api/v3/data/participants/experiment/${EXP}`]: 1,
      [`/api/v3/data/events/experiment/${EXP}`]: 6,
      ...Object.fromEntries(
        rooms.flatMap(({ node: room }) =>
          room.participants.edges.map(({ node: p }) => [`/api/v3/data/events/participant/${p.participantId}`, 1]),
        ),
      ),
    });
  });

  it('plans it as streamed: the counts in its requests, none of it in memory', async () => {
    const reply = await fetchTable(stack.url, NESTED(''), { format: 'csv', headers: { 'x-dry-run': '1' } });
    const plan = JSON.parse(reply.text).extensions.table;
    expect(plan.inMemory).toBeNull();
    expect(plan.rows).toBe(6000);
    // 5 pages of events after the first, and 6 counts.
    expect(plan.requests.remaining).toBe(5 + 6);
    expect(plan.requests.byEndpoint).toEqual({
      'GET /experiments/:id': 1,
      'GET /data/rooms/experiment/:id': 1,
      'GET /data/participants/experiment/:id': 1,
      'GET /data/events/experiment/:id': 6,
      'GET /data/events/participant/:id': 6,
    });
  });

  it('sends its first rows before the last page of events is read', async () => {
    stack.sim.stats.reset();
    const res = await fetch(`${stack.url}/graphql?format=ndjson`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': FULL },
      body: JSON.stringify({ query: NESTED('') }),
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    const pages = () => stack.sim.stats.requests.filter((r) => r.path === `/api/v3/data/events/experiment/${EXP}`).length;
    // By the first chunk: the first page and at most one read ahead (+1 meanwhile) of the 6.
    expect(pages()).toBeLessThanOrEqual(3);
    let text = new TextDecoder().decode(first.value);
    for (let next = await reader.read(); !next.done; next = await reader.read()) text += new TextDecoder().decode(next.value);
    expect(ndjson(text)).toHaveLength(6000);
    expect(pages()).toBe(6);
  });

  it('streams one parent’s listing with aliases: its total from the first page, its cursors from 0 to the last record', async () => {
    const query = (window: string) =>
      `{ experiment(id: "${EXP}") { events${window} { n: totalCount info: pageInfo { last: endCursor more: hasNextPage } edges { at: cursor node { id } } } } }`;
    stack.sim.stats.reset();
    const reply = await fetchTable(stack.url, query(''), { format: 'ndjson' });
    const rows = ndjson(reply.text);
    expect(stack.sim.stats.byPath()).toEqual({ [`/api/v3/experiments/${EXP}`]: 1, [`/api/v3/data/events/experiment/${EXP}`]: 6 });

    // The JSON answer, page by page.
    type Events = { n: number; info: { last: string | null; more: boolean }; edges: { at: string; node: { id: string } }[] };
    const edges: Events['edges'] = [];
    let last: Events | undefined;
    for (let after: string | null = ''; after !== null; after = last?.info.more ? last.info.last : null) {
      const page: GqlReply<{ experiment: { events: Events } }> = await stack.gql(
        query(`(first: 1000${after ? `, after: "${after}"` : ''})`),
      );
      last = page.body.data?.experiment.events;
      edges.push(...(last?.edges ?? []));
    }
    expect(edges).toHaveLength(6000);
    expect(rows).toEqual(
      edges.map((e) => ({
        'experiment.events.n': 6000,
        'experiment.events.info.last': last?.info.last,
        'experiment.events.info.more': false,
        'experiment.events.at': e.at,
        'experiment.events.id': e.node.id,
      })),
    );
  });
});

describe('a streamed row list’s edges', () => {
  it('fill __typename under an alias, as the JSON answer has it', async () => {
    const query = (window: string) => `{ experiment(id: "${EXP}") { events${window} { edges { t: __typename node { id } } } } }`;
    const rows = ndjson((await fetchTable(stack.url, query(''), { format: 'ndjson' })).text);
    const json = await stack.gql<{ experiment: { events: { edges: { t: string; node: { id: string } }[] } } }>(query('(first: 3)'));
    const edges = json.body.data?.experiment.events.edges ?? [];
    expect(edges).toHaveLength(3);
    expect(rows.slice(0, 3)).toEqual(edges.map((e) => ({ 'experiment.events.t': e.t, 'experiment.events.id': e.node.id })));
  });
});

describe('a row list made from the answer in memory', () => {
  it('says why in its dry run: what the connection selects that only the whole listing tells, or a window', async () => {
    const plan = async (query: string) =>
      JSON.parse((await fetchTable(stack.url, query, { format: 'csv', headers: { 'x-dry-run': '1' } })).text).extensions.table.inMemory;
    expect(await plan(`{ experiment(id: "${EXP}") { events { warnings edges { node { id } } } } }`)).toBe(
      "'experiment.events' selects warnings: only totalCount, pageInfo and edges { cursor node { ... } } let its records be streamed",
    );
    expect(await plan(`{ experiment(id: "${EXP}") { events(first: 5) { edges { node { id } } } } }`)).toBe(
      "'experiment.events' is given a window (first, last, after or before): its records are read in the answer",
    );
    expect(await plan(`{ experiment(id: "${EXP}") { events { totalCount edges { cursor node { id } } } } }`)).toBeNull();
  });

  it('answers the same rows as the JSON answer when the connection selects its warnings', async () => {
    const query = (window: string) => `{ experiment(id: "${EXP}") { rooms${window} { warnings edges { node { roomId } } } } }`;
    const reply = await fetchTable(stack.url, query(''), { format: 'ndjson' });
    const json = await stack.gql<{ experiment: { rooms: { warnings: string[]; edges: { node: { roomId: string } }[] } } }>(
      query('(first: 1000)'),
    );
    const rooms = json.body.data?.experiment.rooms;
    expect(rooms?.edges).toHaveLength(2);
    expect(ndjson(reply.text)).toEqual(
      (rooms?.edges ?? []).map((e) => ({ 'experiment.rooms.warnings': rooms?.warnings, 'experiment.rooms.roomId': e.node.roomId })),
    );
  });
});
