/**
 * Tables from the graph (issue 20): how a request asks for a table, which list's records are the rows,
 * what the columns are, and what a request a table cannot be made of answers.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './helpers/stack.ts';
import { FULL } from './helpers/simulator.ts';
import { fetchTable, restAll } from './helpers/tables.ts';

const EXP = 'exp_movie01';

let stack: Stack;
const lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  stack = await startStack(
    { rooms: 3, participantsPerRoom: 2, eventsPerParticipant: 20 },
    { LOG_LEVEL: 'info' },
    { logger: pino({ level: 'info' }, sink) },
  );
});
afterAll(async () => {
  await stack?.close();
});

/** A CSV table's header and rows (no field of these tables needs quoting). */
const csv = (text: string): { header: string[]; rows: string[][] } => {
  const [head = '', ...rest] = text.split('\r\n').filter((l) => l !== '');
  return { header: head.split(','), rows: rest.map((l) => l.split(',')) };
};

describe('content negotiation on /graphql', () => {
  const EVENTS = `{ experiment(id: "${EXP}") { events(first: 2) { edges { node { id } } } } }`;

  it('answers JSON by default, for */* and for format=json, and a JSON answer ignores @table', async () => {
    for (const accept of [undefined, '*/*', 'application/json']) {
      const reply = await fetchTable(stack.url, EVENTS, { accept });
      expect(reply.headers.get('content-type')).toMatch(/^application\/(graphql-response\+)?json/);
    }
    const plain = await fetchTable(stack.url, EVENTS, { format: 'json' });
    const marked = await fetchTable(stack.url, EVENTS.replace('events(first: 2)', 'events(first: 2) @table'), {});
    expect(JSON.parse(marked.text).data).toEqual(JSON.parse(plain.text).data);
    expect(JSON.parse(plain.text).data.experiment.events.edges).toHaveLength(2);
  });

  it('takes format= over Accept, on GET and POST', async () => {
    const post = await fetchTable(stack.url, EVENTS, { format: 'csv', accept: 'application/json' });
    expect(post.headers.get('content-type')).toBe('text/csv; charset=utf-8; header=present');
    const get = await fetchTable(stack.url, EVENTS, { method: 'GET', format: 'ndjson' });
    expect(get.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    expect(get.text.trim().split('\n')).toHaveLength(2);
    // The first type Accept lists that the gateway serves wins.
    const accept = await fetchTable(stack.url, EVENTS, { accept: 'application/xml, text/csv;q=0.9, application/json' });
    expect(accept.headers.get('content-type')).toBe('text/csv; charset=utf-8; header=present');
  });

  it('answers 406 to an Accept it cannot serve, and 400 to an unknown format, before any upstream request', async () => {
    stack.sim.stats.reset();
    const xml = await fetchTable(stack.url, EVENTS, { accept: 'application/xml' });
    expect(xml.status).toBe(406);
    expect(xml.headers.get('accept')).toContain('text/csv');
    const acceptable = xml.headers.get('accept')?.split(', ');
    expect(JSON.parse(xml.text)).toEqual({
      errors: [
        {
          message: `None of the types Accept lists can be served: ask for one of ${acceptable?.join(', ')} (or ?format=csv|tsv|ndjson|parquet|arrow)`,
          extensions: { code: 'BAD_USER_INPUT', acceptable },
        },
      ],
    });
    const unknown = await fetchTable(stack.url, EVENTS, { format: 'xlsx' });
    expect(unknown.status).toBe(400);
    expect(JSON.parse(unknown.text)).toEqual({
      errors: [
        {
          message: "Unknown format 'xlsx': ask for one of csv, tsv, ndjson, parquet, arrow (or json)",
          extensions: { code: 'BAD_USER_INPUT', format: 'xlsx', formats: ['csv', 'tsv', 'ndjson', 'parquet', 'arrow'] },
        },
      ],
    });
    expect(stack.sim.stats.total).toBe(0);
  });

  it('answers a subscription asked for as a table 406 with a JSON error saying tables are for queries, before any upstream request', async () => {
    stack.sim.stats.reset();
    const subscription = `subscription { experimentActivity(experimentId: "${EXP}") { __typename } }`;
    for (const options of [{ format: 'csv' }, { format: 'parquet', method: 'GET' as const }, { accept: 'text/tab-separated-values' }]) {
      const reply = await fetchTable(stack.url, subscription, options);
      const format = options.format ?? 'tsv';
      expect(reply.status, format).toBe(406);
      expect(reply.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(JSON.parse(reply.text)).toEqual({
        errors: [
          {
            message: `A table (${format}) is read from a query; this operation is a subscription, whose events stream as JSON over SSE (Accept: text/event-stream) or WebSocket`,
            extensions: { code: 'BAD_USER_INPUT', format },
          },
        ],
      });
    }
    expect(stack.sim.stats.total).toBe(0);
  });

  it('answers a table asked without a key 401 UNAUTHENTICATED, as JSON, before any upstream request', async () => {
    stack.sim.stats.reset();
    const reply = await fetchTable(stack.url, EVENTS, { format: 'csv', key: null });
    expect(reply.status).toBe(401);
    expect(reply.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(JSON.parse(reply.text).errors.map((e: { extensions: { code: string } }) => e.extensions.code)).toEqual(['UNAUTHENTICATED']);
    expect(stack.sim.stats.total).toBe(0);
  });

  it('answers an upstream refusal before the first byte as JSON with its status (FORBIDDEN: 403)', async () => {
    const reply = await fetchTable(stack.url, `{ experiment(id: "exp_other01") { events { edges { node { id } } } } }`, { format: 'csv' });
    expect(reply.status).toBe(403);
    expect(JSON.parse(reply.text).errors[0].extensions.code).toBe('FORBIDDEN');
  });
});

describe('rows', () => {
  it('refuses several candidate lists without @table, naming @table (400 BAD_USER_INPUT)', async () => {
    const reply = await fetchTable(
      stack.url,
      `{ experiment(id: "${EXP}") { participants { edges { node { events { edges { node { id } } } sparseRatings { edges { node { value } } } } } } } }`,
      { format: 'csv' },
    );
    expect(reply.status).toBe(400);
    expect(JSON.parse(reply.text).errors[0]).toEqual({
      message:
        'This operation selects 2 lists (experiment.participants.events, experiment.participants.sparseRatings): mark the one whose records are the rows with @table',
      extensions: { code: 'BAD_USER_INPUT', lists: ['experiment.participants.events', 'experiment.participants.sparseRatings'] },
    });
  });

  it('refuses @table on a field that is not a list, on two lists, and a mutation (400)', async () => {
    const cases: [string, string][] = [
      [`{ experiment(id: "${EXP}") { name @table } }`, "@table marks a list of records or a connection; 'experiment.name' is String"],
      [
        `{ experiment(id: "${EXP}") { rooms @table { edges { node { roomId } } } participants @table { edges { node { participantId } } } } }`,
        '@table marks one list; this operation marks 2: experiment.rooms, experiment.participants',
      ],
      [
        `{ experiment(id: "${EXP}") { events @table { totalCount } } }`,
        "@table marks 'experiment.events', a connection that selects no edges: select edges { node { … } }",
      ],
      ['mutation { deleteExperiment(id: "exp_x") { deleted } }', 'A table is read from a query; this operation is a mutation'],
    ];
    for (const [query, message] of cases) {
      const reply = await fetchTable(stack.url, query, { format: 'csv' });
      expect(reply.status, query).toBe(400);
      expect(JSON.parse(reply.text).errors[0].message).toBe(message);
    }
  });

  it('refuses a table with no list and no column (introspection, a skipped row list, skipped leaves): 400, not an empty body', async () => {
    const NO_LIST =
      'This operation has no list to make rows of: a table’s rows are the records of a list or connection (the one marked @table, ' +
      'or the only innermost one) and its columns the scalar fields selected on them and above them';
    const cases: [string, string][] = [
      ['{ __schema { types { name } } }', `${NO_LIST}; introspection (__schema, __type) is answered as JSON only`],
      [`{ experiment(id: "${EXP}") { events @skip(if: true) { edges { node { id } } } } }`, NO_LIST],
      [
        `query($all: Boolean!) { experiment(id: "${EXP}") { events { edges { node { id @include(if: $all) } } } } }`,
        "This operation selects no field to make a column of: select the scalar fields of 'experiment.events' (and of the objects above it)",
      ],
    ];
    stack.sim.stats.reset();
    for (const [query, message] of cases) {
      const reply = await fetchTable(stack.url, query, { format: 'csv', variables: { all: false } });
      expect(reply.status, query).toBe(400);
      expect(JSON.parse(reply.text).errors).toEqual([{ message, extensions: { code: 'BAD_USER_INPUT' } }]);
    }
    expect(stack.sim.stats.total).toBe(0);
  });

  it('makes the rows of entities of several types (_entities): a room’s and the experiment’s events, in the listing’s order', async () => {
    const room = (await stack.rest(`/data/rooms/experiment/${EXP}`)).data[0]?.id;
    const variables = {
      r: [
        { __typename: 'Room', roomId: room },
        { __typename: 'Experiment', experimentId: EXP },
      ],
    };
    const query =
      'query($r: [_Any!]!) { _entities(representations: $r) { __typename ... on Room { roomId events { edges { node { id timestamp } } } } ' +
      '... on Experiment { experimentId events { edges { node { id timestamp } } } } } }';
    expect(
      JSON.parse((await fetchTable(stack.url, query, { format: 'csv', variables, headers: { 'x-dry-run': '1' } })).text).extensions.table
        .inMemory,
    ).toBeNull();
    const reply = await fetchTable(stack.url, query, { format: 'csv', variables });
    const table = csv(reply.text);
    expect(table.header).toEqual([
      '_entities.__typename',
      '_entities.roomId',
      '_entities.events.id',
      '_entities.events.timestamp',
      '_entities.experimentId',
    ]);
    // Every event of the experiment once for the experiment, and each of the room's once more for the room (just before it; older records name their room `sessionId`).
    const events = await restAll(stack.rest, `/data/events/experiment/${EXP}`);
    expect(events).toHaveLength(120);
    expect(table.rows).toEqual(
      events.flatMap((e) => [
        ...((e.roomId ?? e.sessionId) === room ? [['Room', room, e.id, e.timestamp, '']] : []),
        ['Experiment', '', e.id, e.timestamp, EXP],
      ]),
    );
    expect(table.rows.filter((r) => r[0] === 'Room')).toHaveLength(40);
  });

  it('takes the marked list as the rows, its parents as context, and the lists beside and below it as JSON cells', async () => {
    const reply = await fetchTable(
      stack.url,
      `{ experiment(id: "${EXP}") { name rooms(first: 1) { edges { node { roomId participants @table { edges { node { participantId
          events(first: 2) { totalCount edges { node { eventType } } } } } } } } } } }`,
      { format: 'ndjson' },
    );
    const rows = reply.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const json = await stack.gql<{
      experiment: {
        name: string;
        rooms: {
          edges: {
            node: {
              roomId: string;
              participants: { edges: { node: { participantId: string; events: { totalCount: number; edges: unknown[] } } }[] };
            };
          }[];
        };
      };
    }>(
      `{ experiment(id: "${EXP}") { name rooms(first: 1) { edges { node { roomId participants(first: 1000) { edges { node { participantId events(first: 2) { totalCount edges { node { eventType } } } } } } } } } } }`,
    );
    const room = json.body.data?.experiment.rooms.edges[0]?.node;
    expect(rows).toEqual(
      room?.participants.edges.map(({ node }) => ({
        'experiment.name': json.body.data?.experiment.name,
        'experiment.rooms.roomId': room.roomId,
        'experiment.rooms.participants.participantId': node.participantId,
        'experiment.rooms.participants.events.totalCount': node.events.totalCount,
        'experiment.rooms.participants.events': node.events.edges,
      })),
    );
    expect(rows).toHaveLength(2);
  });

  it('flattens objects below the row, and honours an explicit window on the row list (first: 2 per parent)', async () => {
    const reply = await fetchTable(
      stack.url,
      `{ experiment(id: "${EXP}") { participants { edges { node { participantId events(first: 2) { edges { node { ev: eventType participant { name room { status } } } } } } } } } }`,
      { format: 'csv' },
    );
    const table = csv(reply.text);
    expect(table.header).toEqual([
      'experiment.participants.participantId',
      'experiment.participants.events.ev',
      'experiment.participants.events.participant.name',
      'experiment.participants.events.participant.room.status',
    ]);
    const participants = await restAll(stack.rest, `/data/participants/experiment/${EXP}`);
    expect(table.rows).toHaveLength(participants.length * 2);
    // Each participant's first 2 events, all of them in the listing's order (timestamp) across the table.
    const taken = new Map<unknown, number>();
    const firstTwo = (await restAll(stack.rest, `/data/events/experiment/${EXP}`)).filter((e) => {
      const n = taken.get(e.participantId) ?? 0;
      taken.set(e.participantId, n + 1);
      return n < 2;
    });
    expect(table.rows.map((r) => [r[0], r[1]])).toEqual(firstTwo.map((e) => [e.participantId, e.eventType]));
  });

  it('makes one row of an operation without a list', async () => {
    const reply = await fetchTable(stack.url, `{ experiment(id: "${EXP}") { experimentId roomCount } }`, { format: 'csv' });
    expect(csv(reply.text)).toEqual({ header: ['experiment.experimentId', 'experiment.roomCount'], rows: [[EXP, '3']] });
  });

  it('reads every record of a connection on the row path given no window, and keeps the upstream order of its sort', async () => {
    const reply = await fetchTable(
      stack.url,
      `{ experiment(id: "${EXP}") { rooms { edges { node { roomId participants { edges { node { participantId events(sort: ONSET, order: DESC) { edges { node { id onset } } } } } } } } } } }`,
      { format: 'csv' },
    );
    const events = await restAll(stack.rest, `/data/events/experiment/${EXP}?sort=onset&order=desc`);
    expect(events.length).toBe(3 * 2 * 20);
    expect(csv(reply.text).rows.map((r) => [r[2], Number(r[3])])).toEqual(events.map((e) => [e.id, e.onset]));
  });

  it('makes a table with the row list’s totalCount (streamed, from the listing’s first page), each row carrying it', async () => {
    const reply = await fetchTable(stack.url, `{ experiment(id: "${EXP}") { events { totalCount edges { node { id } } } } }`, {
      format: 'csv',
    });
    const table = csv(reply.text);
    expect(table.header).toEqual(['experiment.events.totalCount', 'experiment.events.id']);
    expect(table.rows).toHaveLength(120);
    expect(new Set(table.rows.map((r) => r[0]))).toEqual(new Set(['120']));
  });

  it('refuses two columns of one name (400), saying to alias one', async () => {
    const reply = await fetchTable(stack.url, `{ experiment(id: "${EXP}") { events { edges { cursor node { cursor: id } } } } }`, {
      format: 'csv',
    });
    expect(reply.status).toBe(400);
    expect(JSON.parse(reply.text).errors[0].message).toBe(
      "Two columns would be named 'experiment.events.cursor': give one of them an alias",
    );
  });
});

describe('the operation report and metrics', () => {
  it('logs the table’s format, rows and bytes on the operation line, and counts rows and bytes by format', async () => {
    const reply = await fetchTable(stack.url, `query Rows { experiment(id: "${EXP}") { events { edges { node { id } } } } }`, {
      format: 'tsv',
      headers: { 'x-request-id': 'table-report-1' },
    });
    expect(reply.status).toBe(200);
    const line = lines.find((l) => l.requestId === 'table-report-1');
    expect(line).toMatchObject({
      msg: 'operation',
      operation: 'Rows',
      outcome: 'ok',
      table: { format: 'tsv', rows: 120, bytes: reply.bytes.length },
    });
    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    expect(metrics).toMatch(/^hsgql_table_rows_total\{format="tsv"\} 120$/m);
    expect(metrics).toMatch(new RegExp(`^hsgql_table_bytes_total\\{format="tsv"\\} ${reply.bytes.length}$`, 'm'));
    expect(metrics).toMatch(/^hsgql_tables_total\{format="tsv",outcome="complete"\} 1$/m);
  });
});

describe('a failure after the first byte', () => {
  it('aborts the response without its final chunk; the log line and metrics say why', async () => {
    const failing = await startStack(
      { rooms: 4, participantsPerRoom: 5, eventsPerParticipant: 200, latencyMs: 50 },
      { UPSTREAM_RETRIES: '0', UPSTREAM_PAGE_CONCURRENCY: '1', LOG_LEVEL: 'info' },
      {
        logger: pino(
          { level: 'info' },
          new Writable({
            write(chunk: Buffer, _enc, done) {
              for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
              done();
            },
          }),
        ),
      },
    );
    try {
      const res = await fetch(`${failing.url}/graphql?format=csv`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': FULL, 'x-request-id': 'table-abort-1' },
        body: JSON.stringify({ query: `{ experiment(id: "${EXP}") { events { edges { node { id onset } } } } }` }),
      });
      expect(res.status).toBe(200);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const first = await reader.read();
      expect(first.done).toBe(false);
      failing.sim.configure({ faults: { rate: 1, modes: ['http500'] } });
      let error: unknown = null;
      try {
        for (;;) if ((await reader.read()).done) break;
      } catch (e) {
        error = e;
      }
      expect(String(error)).toBe('TypeError: terminated');
      for (let i = 0; i < 100 && !lines.some((l) => l.requestId === 'table-abort-1'); i++) await new Promise((r) => setTimeout(r, 20));
      const line = lines.find((l) => l.requestId === 'table-abort-1') as {
        outcome: string;
        table: { aborted: string };
        errors: { code: string }[];
      };
      expect(line.outcome).toBe('error');
      expect(line.errors.map((e) => e.code)).toEqual(['UPSTREAM_ERROR']);
      expect(line.table.aborted).toBe('The HyperStudy API answered HTTP 500');
      const metrics = await (await fetch(`${failing.url}/metrics`)).text();
      expect(metrics).toMatch(/^hsgql_tables_total\{format="csv",outcome="aborted"\} 1$/m);
    } finally {
      await failing.close();
    }
  });
});
