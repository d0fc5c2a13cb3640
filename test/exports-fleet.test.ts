/**
 * Export jobs across replicas, the fault paths (issue 21, item 7): gateway processes on one real Redis
 * and one shared EXPORT_DIR. A cancel from a replica that does not run the job stops it at once (pub/sub).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Simulator } from '../src/simulator/server.ts';
import { EVENTS, EVENTS_PATH, EXP, pagesOnDisk, SLOW, useReplicas } from './helpers/export-replicas.ts';
import { exportDirPerTest, gql, JOB_FIELDS, jobOf, over, startExport, until, type Job } from './helpers/exports.ts';
import type { GatewayProcess } from './helpers/process.ts';

const setup = useReplicas();
const exportDir = exportDirPerTest();

const GOING = ['QUEUED', 'RUNNING', 'WAITING'];
const CANCEL = `mutation($id: ID!) { cancelExport(id: $id) { ${JOB_FIELDS} } }`;
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
});
