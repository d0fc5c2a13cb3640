/**
 * Export jobs across replicas, the fault paths (issue 21, item 7): gateway processes on one real Redis
 * and one shared EXPORT_DIR. A cancel from a replica that does not run the job stops it at once (pub/sub);
 * a runner whose lease another replica took writes nothing more; a job goes on while Redis is down and
 * its record reaches Redis when it answers again; EXPORT_MAX_BYTES counts every replica's jobs; one
 * gateway of two workers serves a job through whichever worker answers; a directory no record names is swept.
 */
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Simulator } from '../src/simulator/server.ts';
import { pagesOnDisk, replicaEnv, SLOW, useReplicas } from './helpers/export-replicas.ts';
import {
  byOffset,
  download,
  EVENTS,
  EVENTS_PATH,
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
import type { GatewayProcess } from './helpers/process.ts';
import { startRedis } from './helpers/redis.ts';
import { FULL, NO_RATE_LIMIT } from './helpers/simulator.ts';
import { subscribeSse } from './helpers/sse.ts';

const setup = useReplicas();
const exportDir = exportDirPerTest();

const GOING = ['QUEUED', 'RUNNING', 'WAITING'];
const CANCEL = `mutation($id: ID!) { cancelExport(id: $id) { ${JOB_FIELDS} } }`;
const RESUME = `mutation($id: ID!) { resumeExport(id: $id) { status } }`;
/** One page of the slow simulator at the jobs' pace (two requests a 3-second window): 1.5 s; two, to be sure. */
const TWO_PAGES_MS = 3_000;

const pair = (started: { gateways: GatewayProcess[] }): [GatewayProcess, GatewayProcess] => {
  const [a, b] = started.gateways;
  if (!a || !b) throw new Error('two replicas expected');
  return [a, b];
};

/** Waits for `check` (up to 30 s). */
async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await delay(50);
  }
  throw new Error(`not seen: ${what}`);
}

/** A process's log lines about one job. */
const linesOf = (g: GatewayProcess, id: string) => g.lines().filter((l) => l.export === id);
const eventsRequests = (sim: Simulator): number => sim.stats.requests.filter((r) => r.path === EVENTS_PATH).length;

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

  it('Redis stopped mid-job: the job goes on, its record kept in memory; Redis restarted empty gets it back, read from the other replica', async () => {
    const sim = await setup.simulator(SLOW);
    const csv = await expectedCsv(sim);
    sim.stats.reset();
    const dir = exportDir();
    // A redis-server of this test's own: it is killed and restarted (empty: no RDB, no AOF).
    const redis = await startRedis();
    try {
      const env = replicaEnv(sim, redis, setup.prefix(), dir);
      const [a, b] = await Promise.all([setup.start(env), setup.start(env)]);
      const job = await startExport(a.url, EVENTS, 'CSV', { id: EXP });
      await until(a.url, job.id, (j) => j.rows >= 1000 || over(j));
      await redis.kill();

      // It goes on without Redis: pages on disk, its record as A keeps it.
      const { job: mid } = await until(a.url, job.id, (j) => j.rows >= 3000 || over(j));
      expect(GOING).toContain(mid.status);
      await redis.start();
      const { job: done } = await until(a.url, job.id, over);
      expect([done.status, done.rows]).toEqual(['SUCCEEDED', 5000]);

      // Its record is in Redis again: the other replica lists it, sees it done and serves its file.
      let onB: Job | null = null;
      await eventually(async () => (onB = await jobOf(b.url, job.id))?.status === 'SUCCEEDED', 'the job SUCCEEDED on the other replica');
      expect(onB).toEqual({ ...done, eta: null });
      expect((await gql(b.url, `{ exportJobs { id status } }`)).data).toEqual({ exportJobs: [{ id: job.id, status: 'SUCCEEDED' }] });
      expect((await download(b.url, done.downloadUrl ?? '')).text).toBe(csv);
      // No page read twice, no 429.
      expect(byOffset(sim)).toEqual({ '0': 1, '1000': 1, '2000': 1, '3000': 1, '4000': 1 });
      expect(sim.stats.requests.filter((r) => r.status !== 200)).toEqual([]);
      expect(
        linesOf(a, job.id)
          .filter((l) => l.msg === 'export job' && !GOING.includes(String(l.status)))
          .map((l) => l.status),
      ).toEqual(['SUCCEEDED']);
    } finally {
      await redis.stop();
    }
  }, 120_000);

  it("EXPORT_MAX_BYTES counts every replica's jobs in the shared EXPORT_DIR", async () => {
    const sim = await setup.simulator({ ...SLOW, rateLimit: NO_RATE_LIMIT });
    const dir = exportDir();
    const fast = { UPSTREAM_MINUTE_LIMIT: '100', UPSTREAM_MINUTE_WINDOW_MS: '60000' };
    const started = await setup.replicas(sim, dir, fast, 1);
    const [a] = started.gateways as [GatewayProcess];
    const first = await startExport(a.url, EVENTS, 'CSV', { id: EXP });
    const { job: done } = await until(a.url, first.id, over);
    expect(done.status).toBe('SUCCEEDED');
    const fileBytes = (await download(a.url, done.downloadUrl ?? '')).bytes.byteLength;

    // B, on the same Redis and EXPORT_DIR, may use exactly the bytes A's file takes: a page more is too much.
    const small = `{ experiments { edges { node { experimentId name } } } }`;
    const b = await setup.start({ ...started.env, EXPORT_MAX_BYTES: String(fileBytes) });
    const refused = await startExport(b.url, small, 'CSV');
    const { job: failed } = await until(b.url, refused.id, over);
    expect([failed.status, failed.rows, failed.error?.code]).toEqual(['FAILED', 0, 'EXPORT_TOO_LARGE']);
    // The same bound with no other job counted (a Redis prefix of its own) takes it.
    const alone = await setup.start({ ...started.env, REDIS_KEY_PREFIX: setup.prefix(), EXPORT_MAX_BYTES: String(fileBytes) });
    const taken = await startExport(alone.url, small, 'CSV');
    expect((await until(alone.url, taken.id, over)).job.status).toBe('SUCCEEDED');
  }, 120_000);
});

/** One request on a connection of its own (the primary hands each new connection to the next worker). */
function viaNewConnection(url: string, path: string, body?: unknown): Promise<{ worker: string; status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}${path}`,
      {
        method: body === undefined ? 'GET' : 'POST',
        agent: false,
        headers: {
          'x-api-key': FULL,
          ...(body === undefined ? {} : { 'content-type': 'application/json', accept: 'application/graphql-response+json' }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ worker: String(res.headers['x-worker']), status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe('WORKERS=2 with REDIS_URL', () => {
  it('a job started through one connection is listed, followed and downloaded through others, whichever worker answers', async () => {
    const sim = await setup.simulator(SLOW);
    const csv = await expectedCsv(sim);
    const dir = exportDir();
    const gateway = await setup.start({ ...replicaEnv(sim, setup.redis(), setup.prefix(), dir), WORKERS: '2', REPLICAS: '1' });
    const start = await viaNewConnection(gateway.url, '/graphql', {
      query: `mutation($q: String!, $v: JSON) { startExport(query: $q, variables: $v, format: CSV) { id status } }`,
      variables: { q: EVENTS, v: { id: EXP } },
    });
    const { id } = (JSON.parse(start.text) as { data: { startExport: { id: string } } }).data.startExport;
    const sub = await subscribeSse<{ exportProgress: Job }>(
      gateway.url,
      `subscription($id: ID!) { exportProgress(id: $id) { id status rows } }`,
      {
        variables: { id },
      },
    );

    // Read through new connections until it is over: every worker answers with the job.
    const workers = new Map<string, string[]>();
    let last: Job | null = null;
    for (let i = 0; i < 600 && !(last && over(last)); i++) {
      const reply = await viaNewConnection(gateway.url, '/graphql', {
        query: `query($id: ID!) { exportJob(id: $id) { ${JOB_FIELDS} } }`,
        variables: { id },
      });
      last = (JSON.parse(reply.text) as { data: { exportJob: Job | null } }).data.exportJob;
      workers.set(reply.worker, [...(workers.get(reply.worker) ?? []), last?.status ?? 'null']);
      await delay(100);
    }
    expect([last?.status, last?.rows]).toEqual(['SUCCEEDED', 5000]);
    expect([...workers.keys()].sort()).toEqual(['1', '2']);
    expect([...workers.values()].flat().filter((s) => ![...GOING, 'SUCCEEDED'].includes(s))).toEqual([]);

    // Listed, then downloaded, through each worker (the primary hands connections to the workers in turn).
    const listed = new Map<string, unknown>();
    const downloaded = new Map<string, string>();
    for (let i = 0; i < 4; i++) {
      const list = await viaNewConnection(gateway.url, '/graphql', { query: `{ exportJobs { id status rows } }` });
      listed.set(list.worker, (JSON.parse(list.text) as { data: unknown }).data);
    }
    for (let i = 0; i < 4; i++) {
      const file = await viaNewConnection(gateway.url, last?.downloadUrl ?? '');
      expect(file.status).toBe(200);
      downloaded.set(file.worker, file.text);
    }
    expect([...listed.keys()].sort()).toEqual(['1', '2']);
    for (const data of listed.values()) expect(data).toEqual({ exportJobs: [{ id, status: 'SUCCEEDED', rows: 5000 }] });
    expect([...downloaded.keys()].sort()).toEqual(['1', '2']);
    for (const text of downloaded.values()) expect(text).toBe(csv);

    // Followed through its own connection (whichever worker took it) to the end.
    await eventually(() => sub.completed, 'the subscription completed');
    sub.close();
    const followed = sub.payloads.map((p) => p.data?.exportProgress);
    expect(followed.at(-1)).toEqual({ id, status: 'SUCCEEDED', rows: 5000 });
    expect(followed.slice(0, -1).every((j) => GOING.includes(j?.status ?? ''))).toBe(true);
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
    await eventually(() => !existsSync(stray), 'the stray directory removed');
    expect(linesOf(a, 'stray-job').map((l) => l.msg)).toEqual(['export job directory removed: no record names it (EXPORT_TTL_MS)']);
    expect(existsSync(join(dir, job.id))).toBe(true);
    expect(GOING.concat('SUCCEEDED')).toContain((await jobOf(a.url, job.id))?.status);
  }, 60_000);
});
