/**
 * Export jobs across replicas while Redis fails them, and their bound on the shared disk (issue 21, item
 * 7): a job goes on while Redis is down and its record reaches Redis when it answers again;
 * EXPORT_MAX_BYTES counts every replica's jobs.
 */
import { describe, expect, it } from 'vitest';
import { eventually, GOING, linesOf, replicaEnv, SLOW, useReplicas } from './helpers/export-replicas.ts';
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
import type { GatewayProcess } from './helpers/process.ts';
import { startRedis } from './helpers/redis.ts';
import { NO_RATE_LIMIT } from './helpers/simulator.ts';

const setup = useReplicas();
const exportDir = exportDirPerTest();

describe('export jobs across replicas: Redis and the shared disk', () => {
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

      // It goes on without Redis: pages on disk, its record as A keeps it. (On a loaded machine the poll
      // may come only after its last page: it may be done by then, never failed.)
      const { job: mid } = await until(a.url, job.id, (j) => j.rows >= 3000 || over(j));
      expect([...GOING, 'SUCCEEDED']).toContain(mid.status);
      expect(mid.rows).toBeGreaterThanOrEqual(3000);
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
