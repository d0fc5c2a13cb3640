/** Export jobs over HTTP: start one, follow it, download its file. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import type { Simulator } from '../../src/simulator/server.ts';
import { FULL } from './simulator.ts';
import { restAll } from './tables.ts';

export const JOB_FIELDS =
  'id status format rows requestsPlanned requestsDone eta downloadUrl watermark error { code message } createdAt updatedAt';

export interface Job {
  id: string;
  status: string;
  format: string;
  rows: number;
  requestsPlanned: number;
  requestsDone: number;
  eta: string | null;
  downloadUrl: string | null;
  watermark: string | null;
  error: { code: string; message: string } | null;
  createdAt: string;
  updatedAt: string;
}

export interface Answer<D> {
  data?: D | null;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

/** A GraphQL request with a key. */
export async function gql<D>(url: string, query: string, variables: Record<string, unknown> = {}, key: string = FULL): Promise<Answer<D>> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', 'x-api-key': key },
    body: JSON.stringify({ query, variables }),
  });
  const { data, errors } = (await res.json()) as Answer<D>;
  return errors === undefined ? { data } : { data, errors };
}

const START = `mutation($query: String!, $variables: JSON, $format: ExportFormat!, $since: String) {
  startExport(query: $query, variables: $variables, format: $format, since: $since) { ${JOB_FIELDS} }
}`;

/** Starts an export job; throws with the errors when it is refused. */
export async function startExport(
  url: string,
  query: string,
  format: string,
  variables?: Record<string, unknown>,
  key = FULL,
  since?: string,
): Promise<Job> {
  const answer = await gql<{ startExport: Job }>(url, START, { query, format, variables, since }, key);
  if (!answer.data?.startExport) throw new Error(JSON.stringify(answer.errors));
  return answer.data.startExport;
}

export async function jobOf(url: string, id: string, key = FULL): Promise<Job | null> {
  const answer = await gql<{ exportJob: Job | null }>(url, `query($id: ID!) { exportJob(id: $id) { ${JOB_FIELDS} } }`, { id }, key);
  return answer.data?.exportJob ?? null;
}

/** Polls the job until `done` says so (or 60 s), returning every status it was seen in. */
export async function until(url: string, id: string, done: (job: Job) => boolean, key = FULL): Promise<{ job: Job; seen: Job[] }> {
  const seen: Job[] = [];
  for (let i = 0; i < 1200; i++) {
    const job = await jobOf(url, id, key);
    if (!job) throw new Error(`no job ${id}`);
    seen.push(job);
    if (done(job)) return { job, seen };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`job ${id} did not get there: ${JSON.stringify(seen.at(-1))}`);
}

export const over = (job: Job): boolean => ['SUCCEEDED', 'FAILED', 'CANCELLED', 'PAUSED'].includes(job.status);

/** A fresh EXPORT_DIR for each test, removed after it. */
export function exportDirPerTest(): () => string {
  const made: string[] = [];
  afterEach(() => {
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), 'hsgql-exports-'));
    made.push(dir);
    return dir;
  };
}

export async function download(url: string, path: string, key: string | null = FULL, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}${path}`, { headers: { ...(key === null ? {} : { 'x-api-key': key }), ...headers } });
  const bytes = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, bytes, text: new TextDecoder().decode(bytes) };
}

export const EXP = 'exp_movie01';
export const EVENTS = `query($id: ID!) { experiment(id: $id) { experimentId events { edges { node { id eventType onset } } } } }`;
export const EVENTS_PATH = `/api/v3/data/events/experiment/${EXP}`;

/** The CSV the events job should write, from the simulator's REST listing (read past its rate limit, which is then as new). */
export async function expectedCsv(sim: Simulator): Promise<string> {
  const limited = sim.rateLimiter.options.enabled;
  sim.rateLimiter.options.enabled = false;
  const events = await restAll(async (path) => {
    const res = await fetch(`${sim.url}${path}`, { headers: { 'x-api-key': FULL } });
    return (await res.json()) as { data: Record<string, unknown>[] };
  }, `/data/events/experiment/${EXP}`);
  sim.rateLimiter.options.enabled = limited;
  sim.rateLimiter.reset();
  const lines = events.map((e) => `${EXP},${String(e.id)},${String(e.eventType)},${String(e.onset)}\r\n`);
  return `experiment.experimentId,experiment.events.id,experiment.events.eventType,experiment.events.onset\r\n${lines.join('')}`;
}

/** Requests of the experiment's events listing, by offset. */
export function byOffset(sim: Simulator): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of sim.stats.requests) {
    if (r.path !== EVENTS_PATH) continue;
    const offset = new URLSearchParams(r.query).get('offset') ?? '';
    out[offset] = (out[offset] ?? 0) + 1;
  }
  return out;
}
