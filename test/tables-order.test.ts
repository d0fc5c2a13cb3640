/**
 * Tables from the graph (issue 20): rows in the order of the row list's `sort`/`order` across the whole
 * table — the upstream's order at the widest scope — also when the planner reads each parent's own
 * listing (the cheaper plan): their pages are merged in that order, at the same upstream requests.
 * Records of different parents equal in the sort field and their instant have no documented order
 * upstream (the simulator keeps its storage order): the table keeps them in the parents' order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './helpers/stack.ts';
import { fetchTable, restAll } from './helpers/tables.ts';

const EXP = 'exp_movie01';

/** Two rooms' participants' events: 8 parents, whose experiment's listing (10 pages) costs more than their own (8). */
const twoRooms = (args: string) =>
  `{ experiment(id: "${EXP}") { rooms(first: 2) { edges { node { roomId participants { edges { node { participantId events${args} { edges { node { id onset timestamp } } } } } } } } } } }`;

describe('rows in the upstream’s order across the whole table', () => {
  let stack: Stack;
  beforeAll(async () => {
    // 5 rooms × 4 participants × 500 events: 10,000 events, 10 pages at experiment scope.
    stack = await startStack({ rooms: 5, participantsPerRoom: 4, eventsPerParticipant: 500 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  /** The experiment's listing in `query`'s order, kept to the rooms given: the order a wide read has. */
  const wide = async (query: string, rooms: ReadonlySet<string>) =>
    // Older records name their room `sessionId`.
    (await restAll((path) => stack.rest(path), `/data/events/experiment/${EXP}${query}`)).filter((e) =>
      rooms.has(String(e.roomId ?? e.sessionId)),
    );

  for (const [args, query, field] of [
    ['', '', null],
    ['(sort: ONSET, order: DESC)', '?sort=onset&order=desc', 'onset'],
    ['(sort: PARTICIPANT_ID)', '?sort=participantId', 'participantId'],
    ['(order: DESC)', '?order=desc', null],
  ] as const) {
    it(`merges each parent's listing by the row list's order: events${args}`, async () => {
      const dry = await fetchTable(stack.url, twoRooms(args), { format: 'csv', headers: { 'x-dry-run': '1' } });
      // The planner's floor: each of the 8 participants' own listing (1 page each, read while planning).
      expect(JSON.parse(dry.text).extensions.table.requests.byEndpoint).toEqual({
        'GET /experiments/:id': 1,
        'GET /data/rooms/experiment/:id': 1,
        'GET /data/participants/experiment/:id': 1,
        'GET /data/events/experiment/:id': 1,
        'GET /data/events/participant/:id': 8,
      });
      stack.sim.stats.reset();
      const reply = await fetchTable(stack.url, twoRooms(args), { format: 'ndjson' });
      expect(reply.status).toBe(200);
      expect(stack.sim.stats.total).toBe(4 + 8);
      const rows = reply.text
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, string | number>);
      expect(rows).toHaveLength(4000);
      const E = 'experiment.rooms.participants.events';
      const rooms = new Set(rows.map((r) => String(r['experiment.rooms.roomId'])));
      expect(rooms.size).toBe(2);
      const expected = await wide(query, rooms);
      // The upstream's order: each row's sort field and instant, exactly as the wide listing's.
      const sortKey = (value: unknown, instant: unknown) => `${field === null ? '' : String(value)}|${String(instant)}`;
      const keys = rows.map((r) =>
        sortKey(
          field === 'participantId' ? r['experiment.rooms.participants.participantId'] : r[`${E}.${field ?? 'id'}`],
          r[`${E}.timestamp`],
        ),
      );
      expect(keys).toEqual(expected.map((e) => sortKey(field === null ? '' : e[field], e.timestamp)));
      expect(new Set(rows.map((r) => r[`${E}.id`]))).toEqual(new Set(expected.map((e) => e.id)));
      // Within a run of equal keys (several participants' events at one instant), the parents' order.
      const answer = await stack.gql(
        `{ experiment(id: "${EXP}") { rooms(first: 2) { edges { node { participants { edges { node { participantId } } } } } } } }`,
      );
      const parents = (
        answer.body.data as {
          experiment: { rooms: { edges: { node: { participants: { edges: { node: { participantId: string } }[] } } }[] } };
        }
      ).experiment.rooms.edges.flatMap((room) => room.node.participants.edges.map((p) => p.node.participantId));
      expect(parents).toHaveLength(8);
      let ties = 0;
      for (let i = 1; i < rows.length; i++) {
        if (keys[i] !== keys[i - 1]) continue;
        ties++;
        const [before, after] = [rows[i - 1], rows[i]].map((r) =>
          parents.indexOf(String(r?.['experiment.rooms.participants.participantId'])),
        );
        expect(before).toBeLessThanOrEqual(after as number);
      }
      expect(ties).toBeGreaterThan(0);
    });
  }
});

describe('merged across pages', () => {
  it('reads each parent’s pages as the merge needs them: 4 participants × 1,500 events, 2 pages each, in the experiment’s order', async () => {
    // 5 rooms × 2 participants × 1,500 events: 15 pages at experiment scope, 2 a participant.
    const stack = await startStack({ rooms: 5, participantsPerRoom: 2, eventsPerParticipant: 1500 });
    try {
      stack.sim.stats.reset();
      const reply = await fetchTable(stack.url, twoRooms('(sort: ONSET)'), { format: 'csv' });
      expect(reply.status).toBe(200);
      // The experiment, rooms, participants, the lookahead's first page, and 2 pages of each of the 4 participants.
      expect(stack.sim.stats.total).toBe(4 + 8);
      const lines = reply.text.trimEnd().split('\r\n');
      expect(lines[0]).toBe(
        'experiment.rooms.roomId,experiment.rooms.participants.participantId,experiment.rooms.participants.events.id,experiment.rooms.participants.events.onset,experiment.rooms.participants.events.timestamp',
      );
      const rows = lines.slice(1).map((line) => line.split(','));
      expect(rows).toHaveLength(6000);
      const rooms = new Set(rows.map((r) => r[0] as string));
      const expected = (await restAll((path) => stack.rest(path), `/data/events/experiment/${EXP}?sort=onset`)).filter((e) =>
        rooms.has(String(e.roomId ?? e.sessionId)),
      );
      expect(rows.map((r) => `${r[3]}|${r[4]}`)).toEqual(expected.map((e) => `${String(e.onset)}|${String(e.timestamp)}`));
    } finally {
      await stack.close();
    }
  });
});
