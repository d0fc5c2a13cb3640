/**
 * Export jobs across replicas (issue 21, item 7): two gateway processes on one real Redis and one shared
 * EXPORT_DIR. A job started on one is seen and cancelled from the other; one killed (-9) mid-job leaves
 * its job running until its lease expires, then PAUSED, resumed from the other with the same key, which
 * goes on from the pages on disk; another key sees nothing on either; Redis never holds the key.
 */
import { describe, expect, it } from 'vitest';
import type { Simulator } from '../src/simulator/server.ts';
import { byOffset, EVENTS, EXP, expectedCsv, LEASE_MS, pagesOnDisk, SLOW, useReplicas } from './helpers/export-replicas.ts';
import { download, exportDirPerTest, gql, JOB_FIELDS, jobOf, over, startExport, until, type Job } from './helpers/exports.ts';
import { everythingIn } from './helpers/fleet.ts';
import type { GatewayProcess } from './helpers/process.ts';
import { FULL, OTHER } from './helpers/simulator.ts';
import { subscribeSse } from './helpers/sse.ts';

const setup = useReplicas();
const exportDir = exportDirPerTest();
const slowSimulator = (): Promise<Simulator> => setup.simulator(SLOW);
const replicas = async (sim: Simulator, dir: string, extra: Record<string, string> = {}): Promise<[GatewayProcess, GatewayProcess]> => {
  const [a, b] = (await setup.replicas(sim, dir, extra)).gateways;
  if (!a || !b) throw new Error('two replicas expected');
  return [a, b];
};

const jobsOf = async (url: string, key: string): Promise<unknown> =>
  (await gql<{ exportJobs: Job[] }>(url, `{ exportJobs { id status } }`, {}, key)).data?.exportJobs;

describe('two replicas on one Redis', () => {
  it('see a job started on either; cancelled from the other, it stops where it runs; another key sees nothing', async () => {
    const sim = await slowSimulator();
    const [a, b] = await replicas(sim, exportDir());
    const started = await startExport(a.url, EVENTS, 'CSV', { id: EXP });
    await until(a.url, started.id, (j) => j.rows >= 1000 || over(j));

    const onB = (await jobOf(b.url, started.id)) as Job;
    expect([onB.id, onB.format, ['QUEUED', 'RUNNING', 'WAITING'].includes(onB.status)]).toEqual([started.id, 'CSV', true]);
    expect(onB.rows).toBeGreaterThanOrEqual(1000);
    expect(await jobsOf(b.url, FULL)).toEqual([{ id: started.id, status: onB.status }]);
    // Another key: nothing, on either replica.
    for (const url of [a.url, b.url]) {
      expect(await jobOf(url, started.id, OTHER)).toBeNull();
      expect(await jobsOf(url, OTHER)).toEqual([]);
      expect(await gql(url, `mutation($id: ID!) { cancelExport(id: $id) { status } }`, { id: started.id }, OTHER)).toEqual({
        data: { cancelExport: null },
      });
    }

    // Followed from B (which does not run it): its changes as Redis has them, until it ends.
    const progress = `subscription($id: ID!) { exportProgress(id: $id) { ${JOB_FIELDS} } }`;
    const sub = await subscribeSse<{ exportProgress: Job }>(b.url, progress, { variables: { id: started.id } });
    const refused = await subscribeSse(b.url, progress, { key: OTHER, variables: { id: started.id } });
    await refused.waitFor(1);
    expect(refused.payloads[0]?.errors?.map((e) => e.extensions?.code)).toEqual(['NOT_FOUND']);
    refused.close();
    await sub.waitFor(1);
    const cancelled = await gql<{ cancelExport: Job }>(b.url, `mutation($id: ID!) { cancelExport(id: $id) { ${JOB_FIELDS} } }`, {
      id: started.id,
    });
    expect(cancelled.data?.cancelExport.status).toBe('CANCELLED');
    for (let i = 0; i < 100 && !sub.completed; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    sub.close();
    expect(sub.completed).toBe(true);
    const followed = sub.payloads.map((p) => p.data?.exportProgress);
    expect([followed[0]?.id, followed.at(-1)?.status]).toEqual([started.id, 'CANCELLED']);
    expect(followed.slice(0, -1).every((j) => ['QUEUED', 'RUNNING', 'WAITING'].includes(j?.status ?? ''))).toBe(true);
    // A stopped it and logged it; both replicas see it over, and it reads no page more.
    const log = a
      .lines()
      .filter((l) => l.export === started.id && l.msg === 'export job')
      .map((l) => l.status);
    expect(log.at(-1)).toBe('CANCELLED');
    const sent = sim.stats.requests.length;
    expect((await jobOf(a.url, started.id))?.status).toBe('CANCELLED');
    expect((await jobOf(b.url, started.id))?.status).toBe('CANCELLED');
    await new Promise((resolve) => setTimeout(resolve, 2 * LEASE_MS));
    expect(sim.stats.requests.length).toBe(sent);
    expect(await everythingIn(setup.redis())).not.toContain(FULL);
  }, 120_000);

  it('a replica killed mid-job: its job is PAUSED once the lease expires, resumed from the other with no page read twice', async () => {
    const sim = await slowSimulator();
    const csv = await expectedCsv(sim);
    sim.stats.reset();
    const dir = exportDir();
    // A lease of 5 s: B reads the job at least once before it expires, however busy the machine.
    const [a, b] = await replicas(sim, dir, { EXPORT_LEASE_MS: '5000' });
    const started = await startExport(a.url, EVENTS, 'CSV', { id: EXP });
    await until(a.url, started.id, (j) => j.rows >= 2000 || over(j));
    a.proc.kill('SIGKILL');
    await a.exited;
    const offsetsOnDisk = pagesOnDisk(dir, started.id);
    expect(offsetsOnDisk.length).toBeGreaterThanOrEqual(2);
    expect(offsetsOnDisk.length).toBeLessThan(5);
    const before = byOffset(sim);

    // B sees it going until the lease expires, then PAUSED with the rows on disk.
    const { job: paused, seen } = await until(b.url, started.id, (j) => j.status === 'PAUSED');
    expect(['QUEUED', 'RUNNING', 'WAITING']).toContain(seen[0]?.status);
    expect(paused.rows).toBe(offsetsOnDisk.length * 1000);
    // Another key can neither see nor resume it.
    expect(await gql(b.url, `mutation($id: ID!) { resumeExport(id: $id) { status } }`, { id: started.id }, OTHER)).toEqual({
      data: { resumeExport: null },
    });
    expect(await gql(b.url, `mutation($id: ID!) { resumeExport(id: $id) { status } }`, { id: started.id })).toEqual({
      data: { resumeExport: { status: 'QUEUED' } },
    });
    const { job } = await until(b.url, started.id, over);
    expect([job.status, job.rows]).toEqual(['SUCCEEDED', 5000]);
    expect((await download(b.url, job.downloadUrl ?? '')).text).toBe(csv);
    expect((await download(b.url, job.downloadUrl ?? '', OTHER)).status).toBe(404);

    const after = byOffset(sim);
    for (const offset of offsetsOnDisk) expect([offset, after[offset]]).toEqual([offset, 1]);
    for (const offset of ['0', '1000', '2000', '3000', '4000']) {
      expect(after[offset]).toBeGreaterThanOrEqual(1);
      expect((after[offset] ?? 0) - (before[offset] ?? 0)).toBeLessThanOrEqual(1);
    }
    expect(sim.stats.requests.filter((r) => r.status !== 200)).toEqual([]);
    // The table is in Redis (a record naming the job), never the key.
    const everything = await everythingIn(setup.redis());
    expect(everything).toContain(started.id);
    expect(everything).not.toContain(FULL);
  }, 120_000);

  it("a process that starts pauses only the jobs whose lease has expired; the key's cap counts every replica's jobs", async () => {
    // Twenty pages (some 30 s): the job is still going once the third process listens, however busy the machine.
    const sim = await setup.simulator({ ...SLOW, eventsPerParticipant: 1_000 });
    const dir = exportDir();
    const { gateways, env } = await setup.replicas(sim, dir, {}, 1);
    const [a] = gateways as [GatewayProcess];
    const started = await startExport(a.url, EVENTS, 'CSV', { id: EXP });
    await until(a.url, started.id, (j) => j.rows >= 1000 || over(j));
    // A third process on the same Redis and EXPORT_DIR starts while A runs the job.
    const c = await setup.start({
      HYPERSTUDY_API_URL: sim.url,
      REDIS_URL: setup.redis().url,
      REDIS_KEY_PREFIX: env.REDIS_KEY_PREFIX ?? '',
      EXPORT_DIR: dir,
      EXPORT_LEASE_MS: String(LEASE_MS),
      EXPORT_MAX_JOBS_PER_KEY: '1',
      REDIS_TIMEOUT_MS: '2000',
      CACHE_TTL_MS: '0',
    });
    const onC = (await jobOf(c.url, started.id)) as Job;
    expect(['QUEUED', 'RUNNING', 'WAITING']).toContain(onC.status);
    expect(c.lines().filter((l) => l.export === started.id && l.status === 'PAUSED')).toEqual([]);
    // The key's cap counts its jobs on every replica: the one A runs fills it on C.
    const refused = await gql(c.url, `mutation { startExport(query: "{ experiments { edges { node { id } } } }", format: CSV) { id } }`);
    expect(refused.errors?.map((e) => [e.extensions?.code, e.extensions?.limit])).toEqual([
      ['EXPORT_LIMIT_EXCEEDED', 'EXPORT_MAX_JOBS_PER_KEY'],
    ]);
    const cancelled = await gql<{ cancelExport: { status: string } }>(a.url, `mutation($id: ID!) { cancelExport(id: $id) { status } }`, {
      id: started.id,
    });
    expect(cancelled).toEqual({ data: { cancelExport: { status: 'CANCELLED' } } });
  }, 120_000);
});
