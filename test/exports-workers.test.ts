/**
 * Export jobs in one gateway of two workers with REDIS_URL (issue 21, item 7): served through whichever
 * worker answers.
 */
import { request } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { eventually, GOING, replicaEnv, SLOW, useReplicas } from './helpers/export-replicas.ts';
import { EVENTS, EXP, expectedCsv, exportDirPerTest, type Job, JOB_FIELDS, over } from './helpers/exports.ts';
import { FULL } from './helpers/simulator.ts';
import { subscribeSse } from './helpers/sse.ts';

const setup = useReplicas();
const exportDir = exportDirPerTest();

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
