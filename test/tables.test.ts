/**
 * Tables from the graph (issue 20): a nested table (experiment → rooms → participants → events) in
 * every format, read back by real readers — DuckDB (CSV, NDJSON, Parquet), Arrow JS (Arrow) and pandas
 * (CSV and TSV straight from the gateway's URL) — and compared record for record with direct REST reads
 * of the simulator; at the floor of upstream requests.
 */
import { readFileSync } from 'node:fs';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvField, tsvField } from '../src/tables/writers.ts';
import { startStack, type Stack } from './helpers/stack.ts';
import { FULL } from './helpers/simulator.ts';
import { Duck, fetchTable, PANDAS_READ, python, restAll } from './helpers/tables.ts';

const EXP = 'exp_movie01';

const NESTED = `query Nested($id: ID!) {
  experiment(id: $id) {
    name
    rooms { edges { node { roomId status
      participants { edges { node { participantId completionCode
        events { edges { node { id onset eventType content response timestamp } } }
      } } }
    } } }
  }
}`;

const COLUMNS = [
  'experiment.name',
  'experiment.rooms.roomId',
  'experiment.rooms.status',
  'experiment.rooms.participants.participantId',
  'experiment.rooms.participants.completionCode',
  'experiment.rooms.participants.events.id',
  'experiment.rooms.participants.events.onset',
  'experiment.rooms.participants.events.eventType',
  'experiment.rooms.participants.events.content',
  'experiment.rooms.participants.events.response',
  'experiment.rooms.participants.events.timestamp',
];

/** Events whose cells test the writers: commas, quotes, line breaks, tabs, backslashes, unicode, JSON. */
const TRICKY = [
  { content: 'comma, "quoted" and\nnew line', response: { value: 'a,b', responseTime: 12 } },
  { content: 'naïve café — 日本語 😀', response: { value: ['x', 'y'], nested: { deep: true } } },
  { content: 'tab\there \\ backslash\r\nCRLF', response: 'just a string' },
  { content: '', response: 0 },
  { response: null },
];

type Row = (string | number | null)[];

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

let stack: Stack;
let duck: Duck;
/** The expected rows, from the simulator's own listings, each cell with its JSON type. */
let expected: Row[];

beforeAll(async () => {
  // 3 rooms × 3 participants × 150 events: 1,350 events and more, two pages at experiment scope.
  stack = await startStack({ rooms: 3, participantsPerRoom: 3, eventsPerParticipant: 150 });
  duck = await Duck.open();
  const participants = await restAll(stack.rest, `/data/participants/experiment/${EXP}`);
  const someone = participants[0] as Record<string, unknown>;
  const added = await fetch(`${stack.sim.url}/data/events/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': FULL },
    body: JSON.stringify({
      events: TRICKY.map((t, i) => ({
        experimentId: EXP,
        roomId: someone.roomId ?? someone.sessionId,
        participantId: someone.id,
        eventType: 'tricky.cell',
        category: 'test',
        onset: 1000.5 + i,
        ...t,
      })),
    }),
  });
  expect(added.status).toBe(201);
  const experiment = (await stack.rest(`/experiments/${EXP}`)).data as unknown as Record<string, unknown> | Record<string, unknown>[];
  const name = str((Array.isArray(experiment) ? experiment[0] : experiment)?.name);
  const rooms = await restAll(stack.rest, `/data/rooms/experiment/${EXP}`);
  const events = await restAll(stack.rest, `/data/events/experiment/${EXP}`);
  expect(events.length).toBeGreaterThan(1000);
  // Older records name their room sessionId.
  const roomOf = (r: Record<string, unknown>): unknown => r.roomId ?? r.sessionId;
  expected = events.map((e) => {
    const room = rooms.find((r) => r.id === roomOf(e)) as Record<string, unknown>;
    const person = participants.find((p) => p.id === e.participantId && roomOf(p) === roomOf(e)) as Record<string, unknown>;
    return [
      name,
      str(room.id),
      str(room.status),
      str(person.id),
      str(person.completionCode),
      str(e.id),
      e.onset as number,
      str(e.eventType),
      str(e.content),
      e.response === undefined ? null : (e.response as never),
      str(e.timestamp),
    ];
  });
}, 60_000);

afterAll(async () => {
  duck?.close();
  await stack?.close();
});

/** A cell as the text formats write it. */
const asText = (v: string | number | null, column: number): string | null =>
  v === null ? null : column === 9 ? JSON.stringify(v) : typeof v === 'string' ? v : JSON.stringify(v);

describe('a nested table, read by real readers, is the REST records joined with their room and participant', () => {
  it('CSV: RFC 4180 with a header row, read by DuckDB; at the floor of upstream requests', async () => {
    await stack.gql(`{ experiment(id: "${EXP}") { name } }`);
    stack.sim.stats.reset();
    const reply = await fetchTable(stack.url, NESTED, { format: 'csv', variables: { id: EXP } });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe('text/csv; charset=utf-8; header=present');
    // The experiment, its rooms, its participants, and the events at experiment scope: 2 pages.
    expect(stack.sim.stats.total).toBe(3 + Math.ceil(expected.length / 1000));
    expect(reply.text.split('\r\n')[0]).toBe(COLUMNS.join(','));
    const read = await duck.read(
      reply.bytes,
      'csv',
      (p) => `select * from read_csv(${p}, header = true, all_varchar = true, allow_quoted_nulls = false)`,
    );
    expect(read.columns).toEqual(COLUMNS);
    // An empty string is written "" and read back as one; null is an empty field.
    expect(read.rows.map((r) => COLUMNS.map((c) => r[c] ?? null))).toEqual(expected.map((row) => row.map(asText)));
  });

  it('CSV: pandas reads it from the URL with the key in storage_options, as the README shows', async () => {
    const url = new URL(`${stack.url}/graphql`);
    url.searchParams.set('format', 'csv');
    url.searchParams.set('query', NESTED);
    url.searchParams.set('variables', JSON.stringify({ id: EXP }));
    const out = JSON.parse(await python(PANDAS_READ, [url.toString(), FULL, ','])) as { columns: string[]; rows: (string | null)[][] };
    expect(out.columns).toEqual(COLUMNS);
    // pandas reads the empty string as missing, like null.
    expect(out.rows).toEqual(expected.map((row) => row.map(asText).map((v) => (v === '' ? null : v))));
  });

  it('TSV (Accept: text/tab-separated-values, GET): tabs, line breaks and backslashes escaped, read by pandas', async () => {
    const url = new URL(`${stack.url}/graphql`);
    url.searchParams.set('query', NESTED);
    url.searchParams.set('variables', JSON.stringify({ id: EXP }));
    const reply = await fetchTable(stack.url, NESTED, { method: 'GET', accept: 'text/tab-separated-values', variables: { id: EXP } });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe('text/tab-separated-values; charset=utf-8; header=present');
    const lines = reply.text.split('\n');
    expect(lines[0]).toBe(COLUMNS.join('\t'));
    expect(lines).toHaveLength(expected.length + 2);
    url.searchParams.set('format', 'tsv');
    const out = JSON.parse(await python(PANDAS_READ, [url.toString(), FULL, '\t'])) as { columns: string[]; rows: (string | null)[][] };
    expect(out.columns).toEqual(COLUMNS);
    expect(out.rows).toEqual(expected.map((row) => row.map(asText).map((v) => (v === null || v === '' ? null : tsvField(v)))));
  });

  it('NDJSON (Accept: application/x-ndjson): one flat object per row with JSON types, read by DuckDB', async () => {
    const reply = await fetchTable(stack.url, NESTED, { accept: 'application/x-ndjson', variables: { id: EXP } });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    const types = COLUMNS.map((c, i) => `'${c}': '${i === 6 ? 'DOUBLE' : i === 9 ? 'JSON' : 'VARCHAR'}'`).join(', ');
    const read = await duck.read(
      reply.bytes,
      'ndjson',
      (p) => `select to_json(t) as row from read_json(${p}, format = 'newline_delimited', columns = {${types}}) t`,
    );
    const rows = read.rows.map((r) => JSON.parse(String(r.row)) as Record<string, unknown>);
    expect(rows.map((r) => Object.keys(r))).toEqual(expected.map(() => COLUMNS));
    expect(rows.map((r) => COLUMNS.map((c) => r[c]))).toEqual(expected);
  });

  it('Parquet: typed columns (double, utf8, timestamp in ms UTC), nullable as the schema says, read by DuckDB', async () => {
    const reply = await fetchTable(stack.url, NESTED, { format: 'parquet', variables: { id: EXP } });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe('application/vnd.apache.parquet');
    const schema = await duck.read(
      reply.bytes,
      'parquet',
      (p) => `select name, type, repetition_type, logical_type from parquet_schema(${p})`,
    );
    expect(schema.rows.slice(1).map((r) => [r.name, r.type, r.repetition_type])).toEqual([
      ['experiment.name', 'BYTE_ARRAY', 'OPTIONAL'],
      ['experiment.rooms.roomId', 'BYTE_ARRAY', 'REQUIRED'],
      ['experiment.rooms.status', 'BYTE_ARRAY', 'OPTIONAL'],
      ['experiment.rooms.participants.participantId', 'BYTE_ARRAY', 'REQUIRED'],
      ['experiment.rooms.participants.completionCode', 'BYTE_ARRAY', 'OPTIONAL'],
      ['experiment.rooms.participants.events.id', 'BYTE_ARRAY', 'OPTIONAL'],
      ['experiment.rooms.participants.events.onset', 'DOUBLE', 'OPTIONAL'],
      ['experiment.rooms.participants.events.eventType', 'BYTE_ARRAY', 'OPTIONAL'],
      ['experiment.rooms.participants.events.content', 'BYTE_ARRAY', 'OPTIONAL'],
      ['experiment.rooms.participants.events.response', 'BYTE_ARRAY', 'OPTIONAL'],
      ['experiment.rooms.participants.events.timestamp', 'INT64', 'OPTIONAL'],
    ]);
    const read = await duck.read(reply.bytes, 'parquet', (p) => `select * from read_parquet(${p})`);
    expect(read.types).toEqual([
      'VARCHAR',
      'VARCHAR',
      'VARCHAR',
      'VARCHAR',
      'VARCHAR',
      'VARCHAR',
      'DOUBLE',
      'VARCHAR',
      'VARCHAR',
      'VARCHAR',
      'TIMESTAMP WITH TIME ZONE',
    ]);
    const values = await duck.read(
      reply.bytes,
      'parquet',
      (p) => `select * exclude ("${COLUMNS[10]}"), epoch_ms("${COLUMNS[10]}") as ms from read_parquet(${p})`,
    );
    expect(values.rows.map((r) => [...COLUMNS.slice(0, 10).map((c) => r[c]), Number(r.ms)])).toEqual(
      expected.map((row) => [...row.slice(0, 9), row[9] === null ? null : JSON.stringify(row[9]), Date.parse(String(row[10]))]),
    );
  });

  it('Parquet: the README’s DuckDB example — its query, its SQL through @duckdb/node-api — counts the events by type as REST has them', async () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('### DuckDB'), readme.indexOf('### Rows, columns and cells'));
    const body = /-d '([^']+)'/.exec(section)?.[1] ?? '';
    const sql = /runAndReadAll\(\s*`([^`]+)`/.exec(section)?.[1] ?? '';
    expect(sql).toContain("FROM 'events.parquet'");
    const reply = await fetchTable(stack.url, (JSON.parse(body) as { query: string }).query, { format: 'parquet' });
    expect(reply.status).toBe(200);
    const read = await duck.read(reply.bytes, 'parquet', (path) => sql.replace("'events.parquet'", path));
    const counts = new Map<string, number>();
    for (const e of await restAll(stack.rest, `/data/events/experiment/${EXP}`))
      counts.set(String(e.eventType), (counts.get(String(e.eventType)) ?? 0) + 1);
    const byCount = [...counts].sort(([a, m], [b, n]) => n - m || (a < b ? -1 : 1)).map(([type, n]) => ({ type, n }));
    expect(read.rows).toEqual(byCount);
  });

  it('Arrow IPC stream: typed columns, read by Arrow JS (tableFromIPC)', async () => {
    const reply = await fetchTable(stack.url, NESTED, { accept: 'application/vnd.apache.arrow.stream', variables: { id: EXP } });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe('application/vnd.apache.arrow.stream');
    const table = tableFromIPC(reply.bytes);
    expect(table.schema.fields.map((f) => [f.name, String(f.type), f.nullable])).toEqual(
      COLUMNS.map((c, i) => [
        c,
        i === 6 ? 'Float64' : i === 10 ? 'Timestamp<MILLISECOND, UTC>' : 'Utf8',
        !['experiment.rooms.roomId', 'experiment.rooms.participants.participantId'].includes(c),
      ]),
    );
    const rows = table.toArray().map((r) => COLUMNS.map((c) => (r as Record<string, unknown>)[c] ?? null));
    expect(rows).toEqual(
      expected.map((row) => [...row.slice(0, 9), row[9] === null ? null : JSON.stringify(row[9]), Date.parse(String(row[10]))]),
    );
  });
});

describe('cells', () => {
  it('CSV fields are quoted when they hold a comma, a quote or a line break, and so is the empty string', () => {
    expect(['plain', 'a,b', 'say "hi"', 'two\nlines', 'cr\r', '', 'naïve 😀'].map(csvField)).toEqual([
      'plain',
      '"a,b"',
      '"say ""hi"""',
      '"two\nlines"',
      '"cr\r"',
      '""',
      'naïve 😀',
    ]);
  });

  it('TSV fields write a tab, line feed, carriage return and backslash as \\t, \\n, \\r and \\\\', () => {
    expect(['plain', 'a\tb', 'two\nlines', 'cr\r', 'back\\slash', 'a,"b"'].map(tsvField)).toEqual([
      'plain',
      'a\\tb',
      'two\\nlines',
      'cr\\r',
      'back\\\\slash',
      'a,"b"',
    ]);
  });
});
