/**
 * Tables from the graph (issue 20): a streamed row list whose record selection is plain leaves has its
 * cells read straight from the records (src/tables/rows.ts directRows); one that selects anything else
 * (a back-link, a JSON value) has each page executed. Both must write the same bytes for the same
 * leaves: each table here is asked both ways, the second with one more column (last), which is then
 * set aside.
 */
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LISTINGS } from '../src/spec/data-types.ts';
import type { RecordTypeSpec } from '../src/spec/spec.ts';
import { startStack, type Stack } from './helpers/stack.ts';
import { fetchTable } from './helpers/tables.ts';

const EXP = 'exp_movie01';

let stack: Stack;

beforeAll(async () => {
  // 2 rooms × 3 participants × 200 events: 1,200 events, two pages at experiment scope.
  stack = await startStack({ rooms: 2, participantsPerRoom: 3, eventsPerParticipant: 200 });
});
afterAll(async () => {
  await stack?.close();
});

/** The plain leaves of a record type: what its node reads as properties (no JSON values, no lists). */
const leavesOf = (field: string): string => {
  const spec = LISTINGS.find((s) => s.field === field);
  const fields = (spec?.node as RecordTypeSpec).fields.filter(([, kind]) => kind !== 'JSON' && kind !== 'StringList');
  return fields.map(([name]) => name).join(' ');
};

/** A nested table of `field` below each participant; `extra` is selected last on its record. */
const nested = (field: string, extra = '') =>
  `query T($id: ID!) { experiment(id: $id) { name rooms { edges { node { roomId status participants { edges { node { participantId completionCode ` +
  `${field} { edges { __typename node { at: __typename ${leavesOf(field)} when: timestamp ${extra} } } } } } } } } } } }`;

/** Both ways, in one format: the leaves alone, and the leaves with one more column. */
async function bothWays(format: string, field: string, extra: string) {
  const direct = await fetchTable(stack.url, nested(field), { format, variables: { id: EXP } });
  const executed = await fetchTable(stack.url, nested(field, extra), { format, variables: { id: EXP } });
  expect([direct.status, executed.status]).toEqual([200, 200]);
  return { direct, executed };
}

/** Text lines with their last field set aside (the extra column holds no separator). */
const withoutLast = (text: string, separator: string, end: string): string[] =>
  text
    .split(end)
    .filter((l) => l !== '')
    .map((l) => l.slice(0, l.lastIndexOf(separator)));

describe('a streamed table of plain leaves writes what executing its pages writes', () => {
  for (const [field, extra, least] of [
    ['events', 'participant { participantId }', 1000],
    ['syncMetrics', 'room { roomId }', 100],
  ] as const) {
    it(`${field}: CSV, TSV and NDJSON byte for byte, Arrow value for value (the executed table adds ${extra})`, async () => {
      const csv = await bothWays('csv', field, extra);
      const lines = withoutLast(csv.executed.text, ',', '\r\n');
      expect(lines.length).toBeGreaterThan(least);
      expect(csv.direct.text.split('\r\n').filter((l) => l !== '')).toEqual(lines);

      const tsv = await bothWays('tsv', field, extra);
      expect(tsv.direct.text.split('\n').filter((l) => l !== '')).toEqual(withoutLast(tsv.executed.text, '\t', '\n'));

      const ndjson = await bothWays('ndjson', field, extra);
      const objects = (text: string, drop: boolean) =>
        text
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => {
            const row = JSON.parse(l) as Record<string, unknown>;
            if (drop) delete row[Object.keys(row).at(-1) as string];
            return JSON.stringify(row);
          });
      expect(objects(ndjson.direct.text, false)).toEqual(objects(ndjson.executed.text, true));
      // The edge's and the node's __typename (aliased), as the executor writes them.
      const first = JSON.parse(ndjson.direct.text.split('\n')[0] as string) as Record<string, unknown>;
      const prefix = `experiment.rooms.participants.${field}`;
      expect([first[`${prefix}.__typename`], first[`${prefix}.at`]]).toEqual([
        field === 'events' ? 'EventEdge' : 'SyncMetricEdge',
        field === 'events' ? 'Event' : 'SyncMetric',
      ]);

      const arrow = await bothWays('arrow', field, extra);
      const direct = tableFromIPC(arrow.direct.bytes);
      const executed = tableFromIPC(arrow.executed.bytes);
      const names = direct.schema.fields.map((f) => f.name);
      expect(executed.schema.fields.slice(0, -1).map((f) => [f.name, String(f.type), f.nullable])).toEqual(
        direct.schema.fields.map((f) => [f.name, String(f.type), f.nullable]),
      );
      const rows = (t: typeof direct) => t.toArray().map((row) => names.map((n) => (row as Record<string, unknown>)[n] ?? null));
      expect(rows(direct)).toEqual(rows(executed));
    });
  }
});
