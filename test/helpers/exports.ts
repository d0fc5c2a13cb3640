/** Export jobs over HTTP: start one, follow it, download its file. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { FULL } from './simulator.ts';

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
