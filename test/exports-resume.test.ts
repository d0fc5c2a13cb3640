/**
 * Export jobs that stop before their end (issue 21): a gateway killed (-9) mid-job, whose successor finds
 * the job PAUSED and resumes it without reading a page on disk again; a page that keeps failing, which
 * ends the job FAILED keeping what it read, resumed once the upstream is well.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  byOffset,
  download,
  EVENTS,
  EXP,
  expectedCsv,
  exportDirPerTest,
  gql,
  type Job,
  jobOf,
  over,
  startExport,
  until,
} from './helpers/exports.ts';
import { startGatewayProcess } from './helpers/process.ts';
import { failure, forwarded, json, passOn, type Scripted, startScripted } from './helpers/scripted.ts';
import { simulatorPerTest } from './helpers/simulator.ts';
import { startGateway } from './helpers/stack.ts';
import { afterEach } from 'vitest';

const RESUME = `mutation($id: ID!) { resumeExport(id: $id) { status } }`;

const simulator = simulatorPerTest();
const exportDir = exportDirPerTest();
const closing: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closing.splice(0).map((close) => close()));
});

describe('a gateway killed mid-job', () => {
  it('leaves the job PAUSED; resumeExport goes on from its pages on disk, reading none of them again', async () => {
    // 5,000 events (five pages), read two a 3-second window: the job is mid-way for several seconds.
    const sim = await simulator({
      rooms: 5,
      participantsPerRoom: 4,
      eventsPerParticipant: 250,
      rateLimit: { enabled: true, perHour: 1000, perMinute: 4, minuteMs: 3_000 },
    });
    const csv = await expectedCsv(sim);
    sim.stats.reset();
    const dir = exportDir();
    const env = {
      HYPERSTUDY_API_URL: sim.url,
      EXPORT_DIR: dir,
      CACHE_TTL_MS: '0',
      UPSTREAM_MINUTE_LIMIT: '4',
      UPSTREAM_MINUTE_WINDOW_MS: '3000',
      EXPORT_QUOTA_SHARE: '0.5',
    };
    const first = await startGatewayProcess(env);
    closing.push(() => first.stop(1_000));
    const started = await startExport(first.url, EVENTS, 'CSV', { id: EXP });
    await until(first.url, started.id, (j) => j.rows >= 2000 || over(j));
    first.proc.kill('SIGKILL');
    await first.exited;
    const onDisk = readdirSync(join(dir, started.id, 'pages')).filter((n) => n.endsWith('.json'));
    const offsetsOnDisk = onDisk.map((n) => n.replace(/^p-0-(\d+)\.json$/, '$1')).sort((a, b) => Number(a) - Number(b));
    expect(offsetsOnDisk.length).toBeGreaterThanOrEqual(2);
    expect(offsetsOnDisk.length).toBeLessThan(5);
    const before = byOffset(sim);

    const { gateway, url } = await startGateway(env);
    closing.push(() => gateway.close());
    const paused = (await jobOf(url, started.id)) as Job;
    expect([paused.status, paused.rows]).toEqual(['PAUSED', offsetsOnDisk.length * 1000]);
    expect(await gql(url, RESUME, { id: started.id })).toEqual({ data: { resumeExport: { status: 'QUEUED' } } });
    const { job } = await until(url, started.id, over);
    expect([job.status, job.rows]).toEqual(['SUCCEEDED', 5000]);
    const file = await download(url, job.downloadUrl ?? '');
    expect(file.text).toBe(csv);

    const after = byOffset(sim);
    // Every page on disk was read once, before the kill; the rest once more at most (those in flight when it came).
    for (const offset of offsetsOnDisk) expect([offset, after[offset]]).toEqual([offset, 1]);
    for (const offset of ['0', '1000', '2000', '3000', '4000']) {
      expect(after[offset]).toBeGreaterThanOrEqual(1);
      expect((after[offset] ?? 0) - (before[offset] ?? 0)).toBeLessThanOrEqual(1);
    }
    // The answer above the rows was read once: the resume read it from the job's directory.
    expect(sim.stats.requests.filter((r) => r.path === `/api/v3/experiments/${EXP}`)).toHaveLength(1);
    // Paced throughout: the upstream never answered 429.
    expect(sim.stats.requests.filter((r) => r.status !== 200)).toEqual([]);
  }, 60_000);
});

/**
 * A job FAILED at its third page (5,000 events: offset 2000 answers 503 until `heal`), with the first two on
 * disk: two passes (the first try and one more), each reading the experiment and failing there.
 */
async function failedJob() {
  const sim = await simulator({ rooms: 5, participantsPerRoom: 4, eventsPerParticipant: 250 });
  const csv = await expectedCsv(sim);
  sim.stats.reset();
  let failing = true;
  const base = sim.url.replace(/\/api\/v3$/, '');
  const upstream: Scripted = await startScripted(async (req, res) => {
    if (failing && req.url?.includes('offset=2000')) return json(res, 503, failure('SERVICE_UNAVAILABLE', 'down for a moment'));
    await passOn(base, req, res);
  });
  closing.push(() => upstream.close());
  const { gateway, url } = await startGateway({
    HYPERSTUDY_API_URL: upstream.url,
    EXPORT_DIR: exportDir(),
    CACHE_TTL_MS: '0',
    UPSTREAM_RETRIES: '0',
    UPSTREAM_PAGE_CONCURRENCY: '1',
    EXPORT_RETRIES: '1',
  });
  closing.push(() => gateway.close());
  const started = await startExport(url, EVENTS, 'CSV', { id: EXP });
  const { job: failed } = await until(url, started.id, over);
  expect(failed).toMatchObject({ status: 'FAILED', rows: 2000, downloadUrl: null });
  expect(failed.error?.code).toBe('UPSTREAM_ERROR');
  expect(byOffset(sim)).toEqual({ '0': 1, '1000': 1 });
  expect(upstream.seen.filter((s) => s.query.get('offset') === '2000')).toHaveLength(2);
  return { sim, csv, url, started, heal: () => (failing = false) };
}

describe('a page that keeps failing', () => {
  it('ends the job FAILED with the reason, keeping its pages; resumed, it reads only the pages it lacks', async () => {
    const { sim, csv, url, started, heal } = await failedJob();
    heal();
    expect(await gql(url, RESUME, { id: started.id })).toEqual({ data: { resumeExport: { status: 'QUEUED' } } });
    const { job, seen: resumed } = await until(url, started.id, over);
    expect([job.status, job.rows, job.error], JSON.stringify(resumed.map((j) => [j.status, j.rows, j.error]))).toEqual([
      'SUCCEEDED',
      5000,
      null,
    ]);
    expect(byOffset(sim)).toEqual({ '0': 1, '1000': 1, '2000': 1, '3000': 1, '4000': 1 });
    expect((await download(url, job.downloadUrl ?? '')).text).toBe(csv);
  });
});

describe('two resumes of one job at once', () => {
  it('run it once: one answers QUEUED, the other the job as it is; every page read once, the file whole', async () => {
    const { sim, csv, url, started, heal } = await failedJob();
    heal();
    const answers = await Promise.all([gql(url, RESUME, { id: started.id }), gql(url, RESUME, { id: started.id })]);
    const statuses = answers.map((a) => (a.data as { resumeExport: { status: string } }).resumeExport.status);
    expect(statuses).toContain('QUEUED');
    const { job, seen: resumed } = await until(url, started.id, over);
    expect([job.status, job.rows, job.error], JSON.stringify(resumed.map((j) => [j.status, j.rows, j.error]))).toEqual([
      'SUCCEEDED',
      5000,
      null,
    ]);
    expect(byOffset(sim)).toEqual({ '0': 1, '1000': 1, '2000': 1, '3000': 1, '4000': 1 });
    expect((await download(url, job.downloadUrl ?? '')).text).toBe(csv);
    // Queued twice in all: when it started and by one of the two resumes.
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(/^hsgql_export_jobs_total\{status="QUEUED"\} (\d+)$/m.exec(metrics)?.[1]).toBe('2');
    expect(/^hsgql_export_jobs_total\{status="SUCCEEDED"\} (\d+)$/m.exec(metrics)?.[1]).toBe('1');
  });
});

describe('a 429 that comes anyway', () => {
  it('is waited out (WAITING until its Retry-After) and the job goes on, without counting as a failure', async () => {
    const sim = await simulator({ rooms: 5, participantsPerRoom: 4, eventsPerParticipant: 150 });
    const csv = await expectedCsv(sim);
    sim.stats.reset();
    let limited = 0;
    const base = sim.url.replace(/\/api\/v3$/, '');
    const upstream: Scripted = await startScripted(async (req, res) => {
      if (req.url?.includes('offset=1000') && limited++ === 0) {
        return json(res, 429, failure('RATE_LIMIT_EXCEEDED', 'Too many requests'), { 'retry-after': '2' });
      }
      await passOn(base, req, res);
    });
    closing.push(() => upstream.close());
    const { gateway, url } = await startGateway({
      HYPERSTUDY_API_URL: upstream.url,
      EXPORT_DIR: exportDir(),
      CACHE_TTL_MS: '0',
      // The session does not wait it out itself, and the job may not fail even once.
      RETRY_AFTER_MAX_MS: '0',
      EXPORT_RETRIES: '0',
      UPSTREAM_PAGE_CONCURRENCY: '1',
    });
    closing.push(() => gateway.close());
    const started = await startExport(url, EVENTS, 'CSV', { id: EXP });
    const { job, seen } = await until(url, started.id, over);
    expect([job.status, job.rows, job.error]).toEqual(['SUCCEEDED', 3000, null]);
    expect(seen.some((j) => j.status === 'WAITING' && j.eta !== null)).toBe(true);
    expect(upstream.seen.filter((s) => s.query.get('offset') === '1000')).toHaveLength(2);
    expect(byOffset(sim)).toEqual({ '0': 1, '1000': 1, '2000': 1 });
    expect((await download(url, job.downloadUrl ?? '')).text).toBe(csv);
  });
});

describe('a table merged from each parent’s listing, resumed', () => {
  it('goes on from the merge’s place on disk: each listing read from the page it stood in, its first page not at all, the cursors as an uninterrupted table’s', async () => {
    // 2 rooms' 4 participants × 2,100 events: each participant's own listing (3 pages) is cheaper than the
    // experiment's (21 pages), and the table merges the four by onset.
    const sim = await simulator({ rooms: 5, participantsPerRoom: 2, eventsPerParticipant: 2100 });
    let failing = true;
    const base = sim.url.replace(/\/api\/v3$/, '');
    const upstream: Scripted = await startScripted(async (req, res) => {
      // Every participant's third page fails while `failing`: the merge stops once a listing needs it.
      if (failing && req.url?.includes('/data/events/participant/') && req.url.includes('offset=2000')) {
        return json(res, 503, failure('SERVICE_UNAVAILABLE', 'down for a moment'));
      }
      await passOn(base, req, res);
    });
    closing.push(() => upstream.close());
    const dir = exportDir();
    const { gateway, url } = await startGateway({
      HYPERSTUDY_API_URL: upstream.url,
      EXPORT_DIR: dir,
      CACHE_TTL_MS: '0',
      UPSTREAM_RETRIES: '0',
      EXPORT_RETRIES: '0',
    });
    closing.push(() => gateway.close());
    const query = `{ experiment(id: "${EXP}") { rooms(first: 2) { edges { node { roomId participants { edges { node { participantId events(sort: ONSET) { edges { cursor node { id onset timestamp } } } } } } } } } } }`;
    const started = await startExport(url, query, 'CSV');
    const { job: failed } = await until(url, started.id, over);
    expect(failed.status).toBe('FAILED');
    // The merge's pages on disk (named by its first read), the last one saying how far each listing was taken.
    const names = readdirSync(join(dir, started.id, 'pages')).filter((n) => n.endsWith('.json'));
    const offsetOf = (name: string): number => Number(/^p-\d+-(\d+)\.json$/.exec(name)?.[1]);
    names.sort((a, b) => offsetOf(a) - offsetOf(b));
    expect(names.length).toBeGreaterThanOrEqual(2);
    expect(names.map(offsetOf)).toEqual(names.map((_, i) => i * 1000));
    expect(failed.rows).toBe(names.length * 1000);
    const last = JSON.parse(readFileSync(join(dir, started.id, 'pages', names.at(-1) as string), 'utf8')) as { taken: number[] };
    expect(last.taken).toHaveLength(4);
    expect(last.taken.reduce((a, b) => a + b, 0)).toBe(names.length * 1000);

    const before = upstream.seen.length;
    failing = false;
    expect(await gql(url, RESUME, { id: started.id })).toEqual({ data: { resumeExport: { status: 'QUEUED' } } });
    const { job } = await until(url, started.id, over);
    expect([job.status, job.rows]).toEqual(['SUCCEEDED', 8_400]);
    const resumed = upstream.seen.slice(before);
    // The answer above the rows (the experiment, its rooms and participants, the lookahead's first page) is not read again…
    expect(resumed.filter((s) => !s.path.includes('/data/events/participant/'))).toEqual([]);
    expect(readdirSync(join(dir, started.id))).not.toContain('answers.json');
    // …and of each participant's listing only the pages from the one holding its next record: never its first (on disk).
    const participants = [...new Set(resumed.filter((s) => s.path.includes('/data/events/participant/')).map((s) => s.path))];
    const read = (path: string) =>
      resumed
        .filter((s) => s.path === path)
        .map((s) => Number(s.query.get('offset')))
        .sort((a, b) => a - b);
    const expected = last.taken.map((taken) => [0, 1000, 2000].filter((offset) => offset > 0 && offset >= taken - (taken % 1000)));
    expect(participants.map(read).sort()).toEqual(expected.filter((offsets) => offsets.length > 0).sort());

    // The file is the table /graphql streams uninterrupted, cursors and all.
    const whole = await fetch(`${url}/graphql?format=csv`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'hst_test_demo_full' },
      body: JSON.stringify({ query }),
    });
    expect(whole.status).toBe(200);
    const text = await whole.text();
    expect(text.split('\r\n')[0]).toContain('experiment.rooms.participants.events.cursor');
    expect((await download(url, job.downloadUrl ?? '')).text).toBe(text);
  }, 60_000);
});

describe('a resumed job whose row list is read from other listings than its pages', () => {
  it('reads the row list again from its start when its answer above the rows is read anew and a participant joined since: the file is the new table, no page of the old one in it', async () => {
    const sim = await simulator({ rooms: 5, participantsPerRoom: 2, eventsPerParticipant: 2000 });
    let before = true;
    const base = sim.url.replace(/\/api\/v3$/, '');
    const upstream: Scripted = await startScripted(async (req, res) => {
      if (before && req.url?.includes('/data/events/participant/') && req.url.includes('offset=1000')) {
        return json(res, 503, failure('SERVICE_UNAVAILABLE', 'down for a moment'));
      }
      const answer = await forwarded(base, req);
      const body = answer.body;
      if (before && req.url?.includes('/data/participants/experiment/')) {
        // Before: the experiment's first participant had not joined yet.
        const envelope = JSON.parse(body.toString('utf8')) as {
          data: unknown[];
          metadata: { pagination: { total: number; returned: number } };
        };
        envelope.data.shift();
        envelope.metadata.pagination.total--;
        envelope.metadata.pagination.returned--;
        return json(res, answer.status, envelope);
      }
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(body);
    });
    closing.push(() => upstream.close());
    const dir = exportDir();
    const { gateway, url } = await startGateway({
      HYPERSTUDY_API_URL: upstream.url,
      EXPORT_DIR: dir,
      CACHE_TTL_MS: '0',
      UPSTREAM_RETRIES: '0',
      EXPORT_RETRIES: '0',
    });
    closing.push(() => gateway.close());
    const query = `{ experiment(id: "${EXP}") { rooms(first: 2) { edges { node { roomId participants { edges { node { participantId events(sort: ONSET) { edges { node { id onset } } } } } } } } } } }`;
    const started = await startExport(url, query, 'CSV');
    const { job: failed } = await until(url, started.id, over);
    expect(failed.status).toBe('FAILED');
    const names = readdirSync(join(dir, started.id, 'pages')).filter((n) => n.endsWith('.json'));
    expect(names.length).toBeGreaterThanOrEqual(1);
    // Three participants' listings were merged then.
    const first = JSON.parse(readFileSync(join(dir, started.id, 'pages', names[0] as string), 'utf8')) as { taken: number[] };
    expect(first.taken).toHaveLength(3);

    // A resume reads the answer above the rows from the job's directory (the parents of the pages on disk);
    // without it (the process died before it was written), from the upstream as it is now.
    // (A record being written at that moment is a temporary file beside them.)
    expect(
      readdirSync(join(dir, started.id))
        .filter((n) => !n.endsWith('.tmp'))
        .sort(),
    ).toEqual(['answers.json', 'job.json', 'pages']);
    rmSync(join(dir, started.id, 'answers.json'));
    before = false;
    expect(await gql(url, RESUME, { id: started.id })).toEqual({ data: { resumeExport: { status: 'QUEUED' } } });
    const { job } = await until(url, started.id, over);
    expect([job.status, job.rows]).toEqual(['SUCCEEDED', 8000]);
    const whole = await fetch(`${url}/graphql?format=csv`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'hst_test_demo_full' },
      body: JSON.stringify({ query }),
    });
    expect((await download(url, job.downloadUrl ?? '')).text).toBe(await whole.text());
  }, 60_000);
});
