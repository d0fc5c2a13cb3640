/**
 * Export jobs (issue 21), over HTTP against the simulator: a job's rows and upstream requests, bad
 * documents refused before any request, jobs belonging to their key, the download with its headers and
 * ranges, pacing within the key's share under a small per-minute limit, cancelling and the caps.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscribeSse } from './helpers/sse.ts';
import { stackPerTest, startStack, type Stack } from './helpers/stack.ts';
import { FULL, OTHER } from './helpers/simulator.ts';
import { Duck, restAll } from './helpers/tables.ts';
import { download, exportDirPerTest, gql, JOB_FIELDS, jobOf, over, startExport, until, type Job } from './helpers/exports.ts';

const EXP = 'exp_movie01';
const EVENTS = `query($id: ID!) { experiment(id: $id) { experimentId events { edges { node { id eventType onset } } } } }`;
/** 5 rooms × 4 participants × 150 events: 3,000 events, three pages of the experiment's events listing. */
const DATA = { rooms: 5, participantsPerRoom: 4, eventsPerParticipant: 150 };
const EVENTS_PAGE = (offset: number) => `/api/v3/data/events/experiment/${EXP}?limit=1000&offset=${offset}`;

const exportDir = exportDirPerTest();

/** The CSV a job should write for EVENTS: straight from the simulator's REST listing. */
async function expectedCsv(stack: Stack): Promise<string> {
  const events = await restAll((path) => stack.rest(path), `/data/events/experiment/${EXP}`);
  const lines = events.map((e) => `${EXP},${String(e.id)},${String(e.eventType)},${String(e.onset)}\r\n`);
  return `experiment.experimentId,experiment.events.id,experiment.events.eventType,experiment.events.onset\r\n${lines.join('')}`;
}

describe('a job on a shared stack', () => {
  let stack: Stack;
  let csv: string;
  let job: Job;
  const dir = mkdtempSync(join(tmpdir(), 'hsgql-exports-'));

  beforeAll(async () => {
    stack = await startStack(DATA, { EXPORT_DIR: dir });
    csv = await expectedCsv(stack);
    stack.sim.stats.reset();
    const started = await startExport(stack.url, EVENTS, 'CSV', { id: EXP });
    job = (await until(stack.url, started.id, over)).job;
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads every page once, at the floor, and writes exactly the REST records as CSV', async () => {
    expect(job).toMatchObject({
      status: 'SUCCEEDED',
      format: 'CSV',
      rows: 3000,
      requestsPlanned: 4,
      requestsDone: 4,
      eta: null,
      downloadUrl: `/exports/${job.id}/file`,
      watermark: expect.stringMatching(/^[A-Za-z0-9_-]+$/) as unknown,
      error: null,
    });
    expect(stack.sim.stats.byPath(true)).toEqual({
      // The key's check: the first thing this gateway asks the upstream with it.
      '/api/v3/experiments?limit=1': 1,
      [`/api/v3/experiments/${EXP}`]: 1,
      [EVENTS_PAGE(0)]: 1,
      [EVENTS_PAGE(1000)]: 1,
      [EVENTS_PAGE(2000)]: 1,
    });
    const file = await download(stack.url, job.downloadUrl ?? '');
    expect(file.status).toBe(200);
    expect(file.text).toBe(csv);
    expect(
      Object.fromEntries(['content-type', 'content-length', 'content-disposition', 'accept-ranges'].map((h) => [h, file.headers.get(h)])),
    ).toEqual({
      'content-type': 'text/csv; charset=utf-8; header=present',
      'content-length': String(file.bytes.byteLength),
      'content-disposition': `attachment; filename="${job.id}.csv"`,
      'accept-ranges': 'bytes',
    });
    expect(file.headers.get('etag')).toMatch(/^"[0-9a-f]{32}"$/);
  });

  it('counts jobs by status, rows and requests in /metrics', async () => {
    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    const line = (name: string): string | undefined => metrics.split('\n').find((l) => l.startsWith(name));
    expect(line('hsgql_export_jobs_total{status="SUCCEEDED"}')).toMatch(/ [12]$/);
    expect(line('hsgql_export_jobs{status="SUCCEEDED"}')).toMatch(/ [12]$/);
    expect(Number(line('hsgql_export_rows_total')?.split(' ')[1]) % 3000).toBe(0);
    expect(Number(line('hsgql_export_requests_total')?.split(' ')[1]) % 4).toBe(0);
  });

  it('answers byte ranges (206), refuses one past the end (416), and honours If-None-Match, If-Match and If-Range', async () => {
    const path = job.downloadUrl ?? '';
    const whole = new TextEncoder().encode(csv);
    const size = whole.byteLength;
    const part = await download(stack.url, path, FULL, { range: 'bytes=100-199' });
    expect([part.status, part.headers.get('content-range'), part.headers.get('content-length')]).toEqual([
      206,
      `bytes 100-199/${size}`,
      '100',
    ]);
    expect(part.bytes).toEqual(whole.subarray(100, 200));
    const rest = await download(stack.url, path, FULL, { range: `bytes=${size - 10}-` });
    expect([rest.status, rest.headers.get('content-range')]).toEqual([206, `bytes ${size - 10}-${size - 1}/${size}`]);
    expect(rest.bytes).toEqual(whole.subarray(size - 10));
    const suffix = await download(stack.url, path, FULL, { range: 'bytes=-5' });
    expect(suffix.bytes).toEqual(whole.subarray(size - 5));
    const past = await download(stack.url, path, FULL, { range: `bytes=${size}-` });
    expect([past.status, past.headers.get('content-range')]).toEqual([416, `bytes */${size}`]);
    const etag = part.headers.get('etag') ?? '';
    expect((await download(stack.url, path, FULL, { 'if-none-match': etag })).status).toBe(304);
    // A range of another version of the file is not served: the whole file is.
    const stale = await download(stack.url, path, FULL, { range: 'bytes=0-9', 'if-range': '"stale"' });
    expect([stale.status, stale.bytes.byteLength]).toEqual([200, size]);
    const matching = await download(stack.url, path, FULL, { range: 'bytes=0-9', 'if-range': etag });
    expect(matching.status).toBe(206);
    // If-None-Match compares weakly, in a list or as *; If-Match strongly (412 when it names another version).
    for (const tags of [`W/${etag}`, `"x", ${etag}`, '*'])
      expect([tags, (await download(stack.url, path, FULL, { 'if-none-match': tags })).status]).toEqual([tags, 304]);
    expect((await download(stack.url, path, FULL, { 'if-none-match': '"x"' })).status).toBe(200);
    const precondition = await download(stack.url, path, FULL, { 'if-match': '"x"' });
    expect([precondition.status, JSON.parse(precondition.text)]).toEqual([
      412,
      { errors: [{ message: 'If-Match names no ETag this file has (it was written again)', extensions: { code: 'BAD_REQUEST' } }] },
    ]);
    expect((await download(stack.url, path, FULL, { 'if-match': etag })).status).toBe(200);
    // The range unit's name in any case.
    const upper = await download(stack.url, path, FULL, { range: 'BYTES=0-5' });
    expect([upper.status, upper.bytes]).toEqual([206, whole.subarray(0, 6)]);
  });

  it('belongs to its key: another key cannot see, list, download, cancel or resume it', async () => {
    const { id } = job;
    expect(await jobOf(stack.url, id, OTHER)).toBeNull();
    const other = await gql<Record<string, unknown>>(
      stack.url,
      `mutation($id: ID!) { cancelExport(id: $id) { id } resumeExport(id: $id) { id } }`,
      { id },
      OTHER,
    );
    expect(other).toEqual({ data: { cancelExport: null, resumeExport: null } });
    expect(await gql(stack.url, `{ exportJobs { id } }`, {}, OTHER)).toEqual({ data: { exportJobs: [] } });
    expect(await gql(stack.url, `{ exportJobs { id status } }`, {}, FULL)).toEqual({ data: { exportJobs: [{ id, status: 'SUCCEEDED' }] } });
    const refused = await download(stack.url, job.downloadUrl ?? '', OTHER);
    expect([refused.status, JSON.parse(refused.text)]).toEqual([
      404,
      { errors: [{ message: 'No export file of this key at this path', extensions: { code: 'NOT_FOUND' } }] },
    ]);
    expect((await download(stack.url, job.downloadUrl ?? '', null)).status).toBe(401);
    expect((await download(stack.url, '/exports/exp_job_unknown/file')).status).toBe(404);
  });

  it('refuses documents a table cannot be made of with BAD_USER_INPUT, before any upstream request', async () => {
    stack.sim.stats.reset();
    const cases: [string, Record<string, unknown> | undefined, string][] = [
      ['{ experiment(id: ', undefined, "The export's query does not parse: Syntax Error: Unexpected <EOF>."],
      [
        '{ experiment(id: "x") { nope } }',
        undefined,
        `The export's query is not valid: Cannot query field "nope" on type "Experiment". Did you mean "name"?`,
      ],
      [EVENTS, {}, `The export's variables: Variable "$id" of required type "ID!" was not provided.`],
      [
        `query($id: ID!) { experiment(id: $id) { events { edges { node { id } } } rooms { edges { node { roomId } } } } }`,
        { id: EXP },
        'This operation selects 2 lists (experiment.events, experiment.rooms): mark the one whose records are the rows with @table',
      ],
    ];
    for (const [query, variables, message] of cases) {
      const answer = await gql(
        stack.url,
        `mutation($q: String!, $v: JSON) { startExport(query: $q, variables: $v, format: NDJSON) { id } }`,
        {
          q: query,
          v: variables,
        },
      );
      expect(answer.errors?.map((e) => [e.message, e.extensions?.code])).toEqual([[message, 'BAD_USER_INPUT']]);
    }
    // An argument's error, as every field's: HTTP 200 with the error, whatever was wrong with the document.
    for (const q of ['{ experiment(id: ', '{ __schema { types { name } } }', 'subscription { roomEvents(roomId: "r") { id } }']) {
      const reply = await fetch(`${stack.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': FULL },
        body: JSON.stringify({ query: 'mutation($q: String!) { startExport(query: $q, format: CSV) { id } }', variables: { q } }),
      });
      const body = (await reply.json()) as { errors?: { extensions?: { code?: string } }[] };
      expect([q, reply.status, body.errors?.map((e) => e.extensions?.code)]).toEqual([q, 200, ['BAD_USER_INPUT']]);
    }
    expect(stack.sim.stats.total).toBe(0);
  });

  it('refuses queries past /graphql’s operation limits and oversized queries or variables, before any upstream request', async () => {
    stack.sim.stats.reset();
    const names = (n: number) => Array.from({ length: n }, (_, i) => `a${i}: name`).join(' ');
    let deep = 'id';
    for (let i = 0; i < 5; i++) deep = `experiment { events { edges { node { ${deep} } } } }`;
    const cases: [string, Record<string, unknown> | undefined, string, Record<string, unknown>][] = [
      [
        `{ experiment(id: "${EXP}") { ${names(16)} } }`,
        undefined,
        "The export's query exceeds the aliases limit of 15 (found 16) under one root field",
        { code: 'OPERATION_LIMIT_EXCEEDED', argument: 'query', limit: 'aliases', max: 15, found: 16 },
      ],
      [
        `{ experiments { edges { node { ${'experimentId '.repeat(5_000)} } } } }`,
        undefined,
        "The export's query has more than 5000 tokens (MAX_TOKENS)",
        { code: 'OPERATION_LIMIT_EXCEEDED', argument: 'query', limit: 'tokens', max: 5000 },
      ],
      [
        `{ experiment(id: "${EXP}") { events { edges { node { ${deep} } } } } }`,
        undefined,
        "The export's query is 25 levels deep, past the 16 an operation may be (MAX_DEPTH)",
        { code: 'OPERATION_LIMIT_EXCEEDED', argument: 'query', limit: 'depth', max: 16, found: 25 },
      ],
      [
        `{ experiments { edges { node { experimentId } } } }${' '.repeat(100_000)}`,
        undefined,
        "The export's query is too large: at most 100,000 characters",
        { code: 'BAD_USER_INPUT', argument: 'query', max: 100_000 },
      ],
      [
        EVENTS,
        { id: EXP, padding: 'x'.repeat(70_000) },
        "The export's variables are too large: at most 65,536 bytes as JSON",
        { code: 'BAD_USER_INPUT', argument: 'variables', max: 65_536 },
      ],
    ];
    for (const [query, variables, message, extensions] of cases) {
      const answer = await gql(stack.url, `mutation($q: String!, $v: JSON) { startExport(query: $q, variables: $v, format: CSV) { id } }`, {
        q: query,
        v: variables,
      });
      expect(answer.errors?.map((e) => [e.message, e.extensions])).toEqual([[message, extensions]]);
    }
    expect(stack.sim.stats.total).toBe(0);
  });

  it('writes the other formats from the same pages: Parquet read by DuckDB', async () => {
    const started = await startExport(stack.url, EVENTS, 'PARQUET', { id: EXP });
    const { job: parquet } = await until(stack.url, started.id, over);
    const file = await download(stack.url, parquet.downloadUrl ?? '');
    expect(file.headers.get('content-type')).toBe('application/vnd.apache.parquet');
    const duck = await Duck.open();
    try {
      const read = await duck.read(file.bytes, 'parquet', (p) => `select "experiment.events.id" as id from read_parquet(${p})`);
      const ids = csv
        .trim()
        .split('\r\n')
        .slice(1)
        .map((line) => line.split(',')[1]);
      expect(read.rows.map((r) => r.id)).toEqual(ids);
    } finally {
      duck.close();
    }
  });
});

describe('a key the upstream refuses', () => {
  const stack = stackPerTest();

  it('keeps no job: startExport is UNAUTHENTICATED after one upstream request, and EXPORT_DIR stays empty', async () => {
    const dir = exportDir();
    const s = await stack(DATA, { EXPORT_DIR: dir });
    s.sim.stats.reset();
    const answer = await gql(
      s.url,
      `mutation($q: String!) { startExport(query: $q, format: CSV) { id } }`,
      { q: `{ experiments { edges { node { experimentId } } } }` },
      'hst_made_up_key',
    );
    expect(answer.errors?.map((e) => e.extensions?.code)).toEqual(['UNAUTHENTICATED']);
    expect(s.sim.stats.byPath(true)).toEqual({ '/api/v3/experiments?limit=1': 1 });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('lets a key the check’s listing is out of scope for (403) start its job, which meets its scopes in its run', async () => {
    const EVENTS_SCOPE = 'hst_test_events_scope';
    const s = await stack(
      { ...DATA, extraKeys: [{ key: EVENTS_SCOPE, name: 'events_scope', userId: 'user_demo', scopes: ['read:events'] }] },
      { EXPORT_DIR: exportDir() },
    );
    s.sim.stats.reset();
    const started = await startExport(
      s.url,
      `{ experiment(id: "${EXP}") { events { edges { node { id } } } } }`,
      'CSV',
      undefined,
      EVENTS_SCOPE,
    );
    const { job } = await until(s.url, started.id, over, EVENTS_SCOPE);
    expect([job.status, job.error?.code]).toEqual(['FAILED', 'FORBIDDEN']);
    expect(s.sim.stats.requests.map((r) => [r.path, r.status])[0]).toEqual(['/api/v3/experiments', 403]);
  });
});

describe('pacing within the key’s share', () => {
  const stack = stackPerTest();
  // The simulator allows 4 requests an endpoint in a 3-second window; the job may spend half of it.
  const PACED = { rateLimit: { enabled: true, perHour: 1000, perMinute: 4, minuteMs: 3_000 } };
  const PACED_ENV = {
    UPSTREAM_QUOTA_GUARD: 'on',
    UPSTREAM_MINUTE_LIMIT: '4',
    UPSTREAM_MINUTE_WINDOW_MS: '3000',
    EXPORT_QUOTA_SHARE: '0.5',
  };

  it('waits for its share (WAITING, with an eta), leaves the rest to the key’s queries, and draws no 429', async () => {
    const s = await stack({ ...DATA, eventsPerParticipant: 250, ...PACED }, { ...PACED_ENV, EXPORT_DIR: exportDir() });
    s.sim.stats.reset();
    const started = await startExport(s.url, EVENTS, 'CSV', { id: EXP });
    const waiting = await until(s.url, started.id, (j) => j.status === 'WAITING' || over(j));
    expect(waiting.job.status).toBe('WAITING');
    expect(Date.parse(waiting.job.eta ?? '')).toBeGreaterThan(Date.parse(waiting.job.updatedAt));
    // While the job waits, a query of the same key still answers.
    const interactive = await gql<{ experiment: { experimentId: string } }>(s.url, `{ experiment(id: "${EXP}") { experimentId } }`);
    expect(interactive).toEqual({ data: { experiment: { experimentId: EXP } } });
    const { job } = await until(s.url, started.id, over);
    expect([job.status, job.rows, job.requestsDone]).toEqual(['SUCCEEDED', 5000, 6]);
    const statuses = s.sim.stats.requests.map((r) => r.status);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    // The key's check, five pages of events and the experiment, twice (the job's and the query's).
    expect(s.sim.stats.total).toBe(8);
  });

  it('follows a job with exportProgress until it ends', async () => {
    const s = await stack({ ...DATA, ...PACED }, { ...PACED_ENV, EXPORT_DIR: exportDir() });
    const started = await startExport(s.url, EVENTS, 'NDJSON', { id: EXP });
    const sub = await subscribeSse<{ exportProgress: Job }>(s.url, `subscription($id: ID!) { exportProgress(id: $id) { ${JOB_FIELDS} } }`, {
      variables: { id: started.id },
    });
    try {
      await until(s.url, started.id, over);
      for (let i = 0; i < 100 && !sub.completed; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(sub.completed).toBe(true);
      const seen = sub.payloads.map((p) => p.data?.exportProgress);
      expect(seen.at(-1)).toMatchObject({ status: 'SUCCEEDED', rows: 3000, requestsDone: 4 });
      expect(new Set(seen.map((j) => j?.status))).toContain('WAITING');
      // Rows only grow.
      const rows = seen.map((j) => j?.rows ?? 0);
      expect(rows).toEqual([...rows].sort((a, b) => a - b));
    } finally {
      sub.close();
    }
    const refused = await subscribeSse(s.url, `subscription { exportProgress(id: "${started.id}") { id } }`, { key: OTHER });
    await refused.waitFor(1);
    expect(refused.payloads[0]?.errors?.map((e) => e.extensions?.code)).toEqual(['NOT_FOUND']);
    refused.close();
  });

  it('cancels a waiting job: CANCELLED, no request after, and its pages go', async () => {
    const s = await stack({ ...DATA, ...PACED }, { ...PACED_ENV, EXPORT_DIR: exportDir() });
    const started = await startExport(s.url, EVENTS, 'CSV', { id: EXP });
    await until(s.url, started.id, (j) => j.status === 'WAITING');
    const cancelled = await gql<{ cancelExport: Job }>(s.url, `mutation($id: ID!) { cancelExport(id: $id) { status rows downloadUrl } }`, {
      id: started.id,
    });
    expect(cancelled).toEqual({ data: { cancelExport: { status: 'CANCELLED', rows: 0, downloadUrl: null } } });
    const after = s.sim.stats.total;
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    expect(s.sim.stats.total).toBe(after);
    expect((await jobOf(s.url, started.id))?.status).toBe('CANCELLED');
  });

  it('caps the jobs a key has going (EXPORT_MAX_JOBS_PER_KEY), with a clear error', async () => {
    const s = await stack({ ...DATA, ...PACED }, { ...PACED_ENV, EXPORT_DIR: exportDir(), EXPORT_MAX_JOBS_PER_KEY: '1' });
    const first = await startExport(s.url, EVENTS, 'CSV', { id: EXP });
    const second = await gql(s.url, `mutation { startExport(query: "{ experiments { edges { node { id } } } }", format: CSV) { id } }`);
    expect(second.errors?.map((e) => [e.message, e.extensions])).toEqual([
      [
        'This key has 1 export jobs going, the most it may (EXPORT_MAX_JOBS_PER_KEY): wait for one to end, or cancel one',
        { code: 'EXPORT_LIMIT_EXCEEDED', limit: 'EXPORT_MAX_JOBS_PER_KEY', max: 1 },
      ],
    ]);
    // Another key has its own.
    const other = await startExport(s.url, `{ experiments { edges { node { experimentId } } } }`, 'CSV', undefined, OTHER);
    expect(other.status).toMatch(/QUEUED|RUNNING/);
    await until(s.url, first.id, over);
  });
});

describe('the disk', () => {
  const stack = stackPerTest();

  it('bounds what the jobs take (EXPORT_MAX_BYTES): a job that would take more is FAILED with EXPORT_TOO_LARGE', async () => {
    const s = await stack(DATA, { EXPORT_DIR: exportDir(), EXPORT_MAX_BYTES: '100000' });
    const started = await startExport(s.url, EVENTS, 'CSV', { id: EXP });
    const { job } = await until(s.url, started.id, over);
    expect([job.status, job.rows, job.downloadUrl, job.error]).toEqual([
      'FAILED',
      0,
      null,
      {
        code: 'EXPORT_TOO_LARGE',
        message:
          "Export jobs would take more than EXPORT_MAX_BYTES (100000 bytes) in EXPORT_DIR: resume this job once other jobs' files have expired or been removed",
      },
    ]);
  });

  it('removes a finished job and its file once EXPORT_TTL_MS has passed', async () => {
    const dir = exportDir();
    const s = await stack(DATA, { EXPORT_DIR: dir, EXPORT_TTL_MS: '1000' });
    const started = await startExport(s.url, EVENTS, 'CSV', { id: EXP });
    const { job } = await until(s.url, started.id, over);
    expect((await download(s.url, job.downloadUrl ?? '')).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await s.gateway.exports.sweep();
    expect(await jobOf(s.url, job.id)).toBeNull();
    expect((await download(s.url, job.downloadUrl ?? '')).status).toBe(404);
    expect(existsSync(join(dir, job.id))).toBe(false);
  });
});
