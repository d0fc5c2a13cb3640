/**
 * Tables from the graph (issue 20): a table made from the answer in memory (its row list given a window,
 * or selecting `warnings`) has its rows in the row list's `sort`/`order` across the whole table, as a
 * streamed table has them — not parent by parent as the answer holds them. Stable: rows equal in the
 * order keep the answer's order. A list that is not a data listing keeps the answer's order.
 *
 * The data (seeded): one room, two participants of 6 events each. By onset, ascending:
 * ppt_jcg2tag4r3: evt_3bvtrsrquazayg -108237, evt_ytv4x998383fd9 82153, evt_mhs1qrjrb5npjs 209033,
 *   evt_iexvth7s0b8ukb 890497, evt_5qgxsg4de9hqsw 939776, evt_w6qburpq1ezv83 958020;
 * ppt_i50lhsyvaq: evt_dr3e9gzziofxmh -38283, evt_h9u9fgukoppyom 363640, evt_xhk04shkkcxyy7 734712,
 *   evt_oe5na0w56hvrgb 1170680, evt_edamrw6cz7kzgs 1245731, evt_pumvl0kq4z96pt 1314243.
 * The answer lists ppt_jcg2tag4r3 first: parent by parent, each participant's rows would come together.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './helpers/stack.ts';
import { fetchTable } from './helpers/tables.ts';

const EXP = 'exp_movie01';
const [J, I] = ['ppt_jcg2tag4r3', 'ppt_i50lhsyvaq'];

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ rooms: 1, participantsPerRoom: 2, eventsPerParticipant: 6 });
});
afterAll(async () => {
  await stack?.close();
});

const participantsEvents = (args: string, fields = 'id onset', besides = '') =>
  `{ experiment(id: "${EXP}") { participants { edges { node { participantId events${args} { ${besides} edges { node { ${fields} } } } } } } } }`;

/** A CSV table's header and rows (no field of these tables needs quoting). */
async function csv(query: string, headers: Record<string, string> = {}): Promise<{ header: string[]; rows: string[][] }> {
  const reply = await fetchTable(stack.url, query, { format: 'csv', headers });
  expect(reply.status).toBe(200);
  const [head = '', ...rest] = reply.text.split('\r\n').filter((l) => l !== '');
  return { header: head.split(','), rows: rest.map((l) => l.split(',')) };
}

const inMemory = async (query: string): Promise<string | null> =>
  JSON.parse((await fetchTable(stack.url, query, { format: 'csv', headers: { 'x-dry-run': '1' } })).text).extensions.table.inMemory;

describe('a table made in memory, in its row list’s order across the whole table', () => {
  it('orders windowed listings by onset ascending across the participants', async () => {
    const query = participantsEvents('(first: 3, sort: ONSET)');
    expect(await inMemory(query)).toBe(
      "'experiment.participants.events' is given a window (first, last, after or before): its records are read in the answer",
    );
    expect(await csv(query)).toEqual({
      header: ['experiment.participants.participantId', 'experiment.participants.events.id', 'experiment.participants.events.onset'],
      rows: [
        [J, 'evt_3bvtrsrquazayg', '-108237'],
        [I, 'evt_dr3e9gzziofxmh', '-38283'],
        [J, 'evt_ytv4x998383fd9', '82153'],
        [J, 'evt_mhs1qrjrb5npjs', '209033'],
        [I, 'evt_h9u9fgukoppyom', '363640'],
        [I, 'evt_xhk04shkkcxyy7', '734712'],
      ],
    });
  });

  it('orders them by onset descending, a window of 5 a participant', async () => {
    const { rows } = await csv(participantsEvents('(first: 5, sort: ONSET, order: DESC)'));
    expect(rows).toEqual([
      [I, 'evt_pumvl0kq4z96pt', '1314243'],
      [I, 'evt_edamrw6cz7kzgs', '1245731'],
      [I, 'evt_oe5na0w56hvrgb', '1170680'],
      [J, 'evt_w6qburpq1ezv83', '958020'],
      [J, 'evt_5qgxsg4de9hqsw', '939776'],
      [J, 'evt_iexvth7s0b8ukb', '890497'],
      [I, 'evt_xhk04shkkcxyy7', '734712'],
      [I, 'evt_h9u9fgukoppyom', '363640'],
      [J, 'evt_mhs1qrjrb5npjs', '209033'],
      [J, 'evt_ytv4x998383fd9', '82153'],
    ]);
  });

  it('orders them by the record’s instant when the list sorts by none (its last 2, descending), though the cells do not hold it', async () => {
    const { rows } = await csv(participantsEvents('(last: 2, order: DESC)', 'id'));
    // 09:33:48.181, 09:29:06.694, 09:27:06.258, 09:25:56.304.
    expect(rows).toEqual([
      [I, 'evt_h9u9fgukoppyom'],
      [J, 'evt_ytv4x998383fd9'],
      [I, 'evt_dr3e9gzziofxmh'],
      [J, 'evt_3bvtrsrquazayg'],
    ]);
  });

  it('gives a listing selecting its warnings (made in memory) the order of the same table streamed', async () => {
    const withWarnings = participantsEvents('(sort: ONSET, order: DESC)', 'id', 'warnings');
    expect(await inMemory(withWarnings)).toBe(
      "'experiment.participants.events' selects warnings: only totalCount, pageInfo and edges { cursor node { ... } } let its records be streamed",
    );
    const streamed = participantsEvents('(sort: ONSET, order: DESC)', 'id');
    expect(await inMemory(streamed)).toBeNull();
    const memory = await csv(withWarnings);
    expect(memory.header).toEqual([
      'experiment.participants.participantId',
      'experiment.participants.events.warnings',
      'experiment.participants.events.id',
    ]);
    const ids = memory.rows.map((r) => [r[0], r[2]]);
    expect(ids).toEqual((await csv(streamed)).rows);
    expect(ids.map((r) => r[0])).toEqual([I, I, I, J, J, J, I, I, J, J, I, J]);
  });

  it('keeps the answer’s order for a list that is not a data listing (the representations’ order)', async () => {
    const room = (await stack.rest(`/data/rooms/experiment/${EXP}`)).data[0]?.id;
    const reply = await fetchTable(
      stack.url,
      'query($r: [_Any!]!) { _entities(representations: $r) { __typename ... on Room { roomId } ... on Experiment { experimentId } } }',
      {
        format: 'csv',
        variables: {
          r: [
            { __typename: 'Room', roomId: room },
            { __typename: 'Experiment', experimentId: EXP },
          ],
        },
      },
    );
    expect(reply.text).toBe(
      `_entities.__typename,_entities.roomId,_entities.experimentId\r\nRoom,${String(room)},\r\nExperiment,,${EXP}\r\n`,
    );
  });
});
