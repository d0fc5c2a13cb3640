/**
 * Tables from the graph (issue 20), bounded: records repeated through a back-link multiply a table's
 * rows without more upstream requests (events → experiment → events), so TABLE_MAX_ROWS bounds the
 * rows in the plan and TABLE_MAX_ANSWER_RECORDS what the answer above the row list reads; a dry run is for tables only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './helpers/stack.ts';
import { fetchTable } from './helpers/tables.ts';

const EXP = 'exp_movie01';
// 1 room × 2 participants × 10 events: 20 events, each row of the inner list once for each outer event.
const SQUARE = `{ experiment(id: "${EXP}") { events { edges { node { onset experiment { events { edges { node { eventType } } } } } } } } }`;
const CUBE = `{ experiment(id: "${EXP}") { events { edges { node { onset experiment { events { edges { node { eventType experiment { events { edges { node { timestamp } } } } } } } } } } } } }`;

describe('a table past TABLE_MAX_ROWS, counted in its plan', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ rooms: 1, participantsPerRoom: 2, eventsPerParticipant: 10 }, { TABLE_MAX_ROWS: '1000' });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('plans the rows a back-link repeats: 20 × 20, and the table has them', async () => {
    const plan = await fetchTable(stack.url, SQUARE, { format: 'csv', headers: { 'x-dry-run': '1' } });
    expect(plan.status).toBe(200);
    expect(JSON.parse(plan.text).extensions.table.rows).toBe(400);
    const table = await fetchTable(stack.url, SQUARE, { format: 'csv' });
    expect(table.status).toBe(200);
    // The header and 400 rows, each ending in CRLF.
    expect(table.text.split('\r\n')).toHaveLength(1 + 400 + 1);
  });

  it('refuses one whose plan has more, before the first row, saying how many', async () => {
    for (const headers of [{}, { 'x-dry-run': '1' }] as Record<string, string>[]) {
      const reply = await fetchTable(stack.url, CUBE, { format: 'csv', headers });
      expect(reply.status).toBe(400);
      const [error] = JSON.parse(reply.text).errors;
      expect(error.extensions).toEqual({ code: 'OPERATION_LIMIT_EXCEEDED', limit: 'TABLE_MAX_ROWS', max: 1_000, found: 8_000 });
    }
  });
});

describe('a table past TABLE_MAX_ANSWER_RECORDS', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ rooms: 1, participantsPerRoom: 2, eventsPerParticipant: 10 }, { TABLE_MAX_ANSWER_RECORDS: '100' });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('is refused while the answer is read, in a few requests', async () => {
    stack.sim.stats.reset();
    // 20 events, each with the experiment's 20: 420 records in the answer above the row list; past 100 at the 5th.
    const reply = await fetchTable(stack.url, CUBE, { format: 'csv' });
    expect(reply.status).toBe(400);
    const [error] = JSON.parse(reply.text).errors;
    expect(error.extensions).toEqual({ code: 'OPERATION_LIMIT_EXCEEDED', limit: 'TABLE_MAX_ANSWER_RECORDS', max: 100, found: 120 });
    expect(error.message).toBe(
      'This table has 120 or more records in the answer above its row list, past the 100 one table may have (TABLE_MAX_ANSWER_RECORDS): records repeated through a back-link (events → experiment → events) multiply them; select less, or give the lists a window (first:)',
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

  it('takes 1, true or yes as a dry run, and refuses a value it does not know before anything runs', async () => {
    stack.sim.stats.reset();
    const EVENTS = `{ experiment(id: "${EXP}") { events { edges { node { id } } } } }`;
    for (const value of ['1', 'true', 'Yes']) {
      const reply = await fetchTable(stack.url, EVENTS, { format: 'csv', headers: { 'x-dry-run': value } });
      expect([value, reply.status, reply.headers.get('content-type')]).toEqual([value, 200, 'application/json; charset=utf-8']);
      expect(JSON.parse(reply.text).extensions.table.rows).toBe(1);
    }
    const planned = stack.sim.stats.total;
    const unknown = await fetchTable(stack.url, EVENTS, { format: 'csv', headers: { 'x-dry-run': 'maybe' } });
    expect(unknown.status).toBe(400);
    expect(JSON.parse(unknown.text)).toEqual({
      errors: [
        {
          message: 'X-Dry-Run takes 1 (or true, yes) to plan a table without reading its rows, 0 (or false, no) to read them',
          extensions: { code: 'BAD_USER_INPUT' },
        },
      ],
    });
    expect(stack.sim.stats.total).toBe(planned);
    // 0, false and no read the table.
    const read = await fetchTable(stack.url, EVENTS, { format: 'csv', headers: { 'x-dry-run': 'false' } });
    expect([read.status, read.text.split('\r\n')[0]]).toEqual([200, 'experiment.events.id']);
  });
});
