/**
 * Export jobs across replicas, the fault paths (issue 21, item 7): gateway processes on one real Redis
 * and one shared EXPORT_DIR. A cancel from a replica that does not run the job stops it at once (pub/sub);
 * a runner whose lease another replica took writes nothing more; a directory no record names is swept.
 * (Redis going down and the disk bound: exports-fleet-redis.test.ts; WORKERS=2: exports-workers.test.ts.)
 */
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  eventsRequests,
  eventually,
  GOING,
  linesOf,
  pagesOnDisk,
  pair,
  SLOW,
  TWO_PAGES_MS,
  useReplicas,
} from './helpers/export-replicas.ts';
import {
  byOffset,
  download,
  EVENTS,
  EXP,
  expectedCsv,
  exportDirPerTest,
  gql,
  type Job,
  JOB_FIELDS,
  jobOf,
  over,
  startExport,
  until,
} from './helpers/exports.ts';

const setup = useReplicas();
const exportDir = exportDirPerTest();

const CANCEL = `mutation($id: ID!) { cancelExport(id: $id) { ${JOB_FIELDS} } }`;
const RESUME = `mutation($id: ID!) { resumeExport(id: $id) { status } }`;

describe('export jobs across replicas: faults', () => {
  it('cancelled from a replica that does not run it: stopped at once, the answer says CANCELLED, no page written after', async () => {
    const sim = await setup.simulator(SLOW);
    const dir = exportDir();
    // A lease of a minute: a runner that read the cancel only at a renewal (every 20 s) would keep the
    // mutation waiting past this test's timeout.
    const [a, b] = pair(await setup.replicas(sim, dir, { EXPORT_LEASE_MS: '60000' }));
    const started = await startExport(a.url, EVENTS, 'CSV', { id: EXP });
    await until(a.url, started.id, (j) => j.rows >= 1000 || over(j));
    const pagesBefore = pagesOnDisk(dir, started.id).length;
    expect(pagesBefore).toBeGreaterThanOrEqual(1);

    const cancelled = await gql<{ cancelExport: Job }>(b.url, CANCEL, { id: started.id });
    expect(cancelled.data?.cancelExport.status).toBe('CANCELLED');
    // A stopped it within the page it was reading (if any): its last state change says so.
    await eventually(() => linesOf(a, started.id).some((l) => l.status === 'CANCELLED'), 'CANCELLED in the runner’s log');
    const changes = linesOf(a, started.id).filter((l) => l.msg === 'export job');
    const last = changes.at(-1);
    expect(last?.status).toBe('CANCELLED');
    expect([pagesBefore * 1000, (pagesBefore + 1) * 1000]).toContain(last?.rows);
    expect(changes.filter((l) => !GOING.includes(String(l.status))).map((l) => l.status)).toEqual(['CANCELLED']);
    // No page after: its pages are gone and stay gone; the listing is read no more.
    const sent = eventsRequests(sim);
    await delay(TWO_PAGES_MS);
    expect(pagesOnDisk(dir, started.id)).toEqual([]);
    expect(eventsRequests(sim)).toBe(sent);
    expect((await jobOf(a.url, started.id))?.status).toBe('CANCELLED');
    expect((await jobOf(b.url, started.id))?.status).toBe('CANCELLED');
  }, 120_000);

  it('a runner whose lease another replica took stops and writes nothing more; resumed elsewhere, the file equals REST', async () => {
    const sim = await setup.simulator(SLOW);
    const csv = await expectedCsv(sim);
    sim.stats.reset();
    const dir = exportDir();
    const started = await setup.replicas(sim, dir);
    const [a, b] = pair(started);
    const prefix = started.env.REDIS_KEY_PREFIX ?? '';
    const job = await startExport(a.url, EVENTS, 'CSV', { id: EXP });
    await until(a.url, job.id, (j) => j.rows >= 1000 || over(j));

    // As if another replica had taken the lease after A stalled past it (a long GC, a partition).
    const redis = setup.redis().client;
    const lease = `${prefix}exports:lease:${job.id}`;
    const recordKey = `${prefix}exports:job:${job.id}`;
    await redis.set(lease, 'another-replica', 'PX', 60_000);
    await eventually(
      () => linesOf(a, job.id).some((l) => l.msg === 'export job: its lease was lost, stopped here'),
      'the lost lease in the runner’s log',
    );
    await eventually(() => linesOf(a, job.id).some((l) => l.status === 'PAUSED'), 'PAUSED in the runner’s log');
    const pages = pagesOnDisk(dir, job.id);
    const record = await redis.get(recordKey);
    const sent = eventsRequests(sim);
    await delay(TWO_PAGES_MS);
    // Nothing more from A: no page, no request, no record (Redis still has the job going as A last wrote it while it held the lease).
    expect(pagesOnDisk(dir, job.id)).toEqual(pages);
    expect(eventsRequests(sim)).toBe(sent);
    expect(await redis.get(recordKey)).toBe(record);
    expect(GOING).toContain((JSON.parse(record ?? '{}') as { status?: string }).status);
    expect(pages.length).toBeGreaterThanOrEqual(1);
    expect(pages.length).toBeLessThan(5);

    // The other holder lets it go: B finds the job PAUSED and its owner resumes it there, from the pages on disk.
    await redis.del(lease);
    // Its rows are those of the record A last wrote: a page A was writing as it lost the lease may be on
    // disk beyond them, and is not read again.
    const { job: paused } = await until(b.url, job.id, (j) => j.status === 'PAUSED');
    const recorded = Object.values((JSON.parse(record ?? '{}') as { pageRows: Record<string, number> }).pageRows);
    expect(paused.rows).toBe(recorded.reduce((n, rows) => n + rows, 0));
    expect([pages.length - 1, pages.length]).toContain(recorded.length);
    expect(await gql(b.url, RESUME, { id: job.id })).toEqual({ data: { resumeExport: { status: 'QUEUED' } } });
    const { job: done } = await until(b.url, job.id, over);
    expect([done.status, done.rows]).toEqual(['SUCCEEDED', 5000]);
    expect((await download(b.url, done.downloadUrl ?? '')).text).toBe(csv);
    const after = byOffset(sim);
    for (const offset of pages) expect([offset, after[offset]]).toEqual([offset, 1]);
    expect(sim.stats.requests.filter((r) => r.status !== 200)).toEqual([]);
    // A never ran it again.
    expect(
      linesOf(a, job.id)
        .filter((l) => l.msg === 'export job')
        .at(-1)?.status,
    ).toBe('PAUSED');
  }, 120_000);
});

describe('export jobs across replicas: what no record names', () => {
  it('a directory in EXPORT_DIR no record in Redis names (Redis restarted empty) is removed once untouched for EXPORT_TTL_MS; a job’s is not', async () => {
    const sim = await setup.simulator(SLOW);
    const dir = exportDir();
    // A stray job's directory, as Redis's restart left it: pages and a file, untouched for a minute.
    const stray = join(dir, 'stray-job');
    mkdirSync(join(stray, 'pages'), { recursive: true });
    writeFileSync(join(stray, 'pages', 'p-0-0.json'), '{"rows":[]}');
    writeFileSync(join(stray, 'export.csv'), 'a\r\n');
    const old = new Date(Date.now() - 60_000);
    for (const path of [join(stray, 'pages', 'p-0-0.json'), join(stray, 'export.csv'), join(stray, 'pages'), stray])
      utimesSync(path, old, old);
    // One replica, so that the sweep seen is its own.
    const [a] = (await setup.replicas(sim, dir, { EXPORT_TTL_MS: '5000' }, 1)).gateways;
    if (!a) throw new Error('a replica expected');
    const job = await startExport(a.url, EVENTS, 'CSV', { id: EXP });
    // The sweep runs every EXPORT_TTL_MS.
    // (Its log line comes after the removal, through the process's stdout: wait for the line.)
    await eventually(() => linesOf(a, 'stray-job').length > 0, 'the stray directory removed');
    expect(existsSync(stray)).toBe(false);
    expect(linesOf(a, 'stray-job').map((l) => l.msg)).toEqual(['export job directory removed: no record names it (EXPORT_TTL_MS)']);
    expect(existsSync(join(dir, job.id))).toBe(true);
    expect(GOING.concat('SUCCEEDED')).toContain((await jobOf(a.url, job.id))?.status);
  }, 60_000);
});
