/**
 * Tables from the graph (issue 20), bounded: records repeated through a back-link multiply a table's
 * rows without more upstream requests (events → experiment → events), so TABLE_MAX_ROWS bounds the
 * rows in the plan and TABLE_MAX_ANSWER_RECORDS what the answer above the row list reads; a dry run is for tables only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './helpers/stack.ts';
import { fetchTable } from './helpers/tables.ts';

const EXP = 'exp_movie01';
// 2 rooms × 3 participants × 20 events: 120 events, each row of the inner list once for each outer event.
const SQUARE = `{ experiment(id: "${EXP}") { events { edges { node { onset experiment { events { edges { node { eventType } } } } } } } } }`;
const CUBE = `{ experiment(id: "${EXP}") { events { edges { node { onset experiment { events { edges { node { eventType experiment { events { edges { node { timestamp } } } } } } } } } } } } }`;

describe('a table past TABLE_MAX_ROWS, counted in its plan', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ rooms: 2, participantsPerRoom: 3, eventsPerParticipant: 20 }, { TABLE_MAX_ROWS: '20000' });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('plans the rows a back-link repeats: 120 × 120, and the table has them', async () => {
    const plan = await fetchTable(stack.url, SQUARE, { format: 'csv', headers: { 'x-dry-run': '1' } });
    expect(plan.status).toBe(200);
    expect(JSON.parse(plan.text).extensions.table.rows).toBe(14_400);
    const table = await fetchTable(stack.url, SQUARE, { format: 'csv' });
    expect(table.status).toBe(200);
    // The header and 14,400 rows, each ending in CRLF.
    expect(table.text.split('\r\n')).toHaveLength(1 + 14_400 + 1);
  });

  it('refuses one whose plan has more, before the first row, saying how many', async () => {
    for (const headers of [{}, { 'x-dry-run': '1' }] as Record<string, string>[]) {
      const reply = await fetchTable(stack.url, CUBE, { format: 'csv', headers });
      expect(reply.status).toBe(400);
      const [error] = JSON.parse(reply.text).errors;
      expect(error.extensions).toEqual({ code: 'OPERATION_LIMIT_EXCEEDED', limit: 'TABLE_MAX_ROWS', max: 20_000, found: 1_728_000 });
    }
  });
});

describe('a table past TABLE_MAX_ANSWER_RECORDS', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ rooms: 2, participantsPerRoom: 3, eventsPerParticipant: 20 }, { TABLE_MAX_ANSWER_RECORDS: '10000' });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('is refused while the answer is read, in a few requests', async () => {
    stack.sim.stats.reset();
    // 120 events, each with the experiment's 120: 14,520 records in the answer above the row list.
    const reply = await fetchTable(stack.url, CUBE, { format: 'csv' });
    expect(reply.status).toBe(400);
    const [error] = JSON.parse(reply.text).errors;
    expect(error.extensions.code).toBe('OPERATION_LIMIT_EXCEEDED');
    expect(error.extensions.limit).toBe('TABLE_MAX_ANSWER_RECORDS');
    expect(error.extensions.max).toBe(10_000);
    expect(error.message).toMatch(
      /^This table has 10,\d{3} or more records in the answer above its row list, past the 10,000 one table may have \(TABLE_MAX_ANSWER_RECORDS\)/,
    );
    // The experiment and its events (one page), read once: every repetition is the same listing.
    expect(stack.sim.stats.total).toBe(2);
  });
});

describe('X-Dry-Run', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ rooms: 1, participantsPerRoom: 1, eventsPerParticipant: 1 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('without a table format is refused before anything runs: a mutation does not write', async () => {
    stack.sim.stats.reset();
    const mutation = `mutation { recordEvents(events: [{ experimentId: "${EXP}", roomId: "room_movie01_001", participantId: "p", eventType: "dry.run", category: SYSTEM }]) { recorded } }`;
    const reply = await fetchTable(stack.url, mutation, { headers: { 'x-dry-run': '1' } });
    expect(reply.status).toBe(400);
    expect(JSON.parse(reply.text)).toEqual({
      errors: [
        {
          message:
            'X-Dry-Run plans a table: ask for one of csv, tsv, ndjson, parquet, arrow (Accept or ?format=) with it; without a table format the operation would run for real',
          extensions: { code: 'BAD_USER_INPUT' },
        },
      ],
    });
    expect(stack.sim.stats.total).toBe(0);
  });
});
