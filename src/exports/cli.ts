/**
 * `npm run export -- --query FILE [--variables JSON] [--operation NAME] --format csv --out FILE [--since WATERMARK] [--url URL]`:
 * a long pull through the gateway's export jobs. It starts a job (the key from HYPERSTUDY_API_KEY), shows
 * its progress on stderr (requests done of planned, rows, waits, ETA), then downloads the file to --out
 * (resuming a broken download with Range). Interrupted and run again with the same arguments, it follows
 * the job it started (remembered in `<out>.export.json`, which holds the job's id, never the key)
 * instead of starting another. With --since (a finished job's watermark) it pulls only the records newer
 * than it; it prints the finished job's watermark on stdout, for the next --since.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';

const USAGE =
  'npm run export -- --query FILE [--variables JSON] [--operation NAME] --format csv|tsv|ndjson|parquet|arrow --out FILE [--since WATERMARK] [--url URL]';
const FIELDS = 'id status rows requestsPlanned requestsDone eta downloadUrl watermark error { code message }';

interface Job {
  id: string;
  status: string;
  rows: number;
  requestsPlanned: number;
  requestsDone: number;
  eta: string | null;
  downloadUrl: string | null;
  watermark: string | null;
  error: { code: string; message: string } | null;
}

class Refused extends Error {
  override name = 'Refused';
}

function options() {
  const { values } = parseArgs({
    options: {
      query: { type: 'string' },
      variables: { type: 'string' },
      operation: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
      since: { type: 'string' },
      url: { type: 'string', default: 'http://localhost:4000' },
      'poll-ms': { type: 'string', default: '1000' },
    },
  });
  const { query, format, out } = values;
  if (!query || !format || !out) throw new Refused(`usage: ${USAGE}`);
  const key = process.env.HYPERSTUDY_API_KEY;
  if (!key) throw new Refused('HYPERSTUDY_API_KEY is not set: the export runs with that key');
  const variables = values.variables === undefined ? null : (JSON.parse(values.variables) as unknown);
  return {
    document: readFileSync(query, 'utf8'),
    variables,
    operationName: values.operation ?? null,
    format: format.toUpperCase(),
    out,
    since: values.since ?? null,
    url: values.url.replace(/\/+$/, ''),
    key,
    pollMs: Number(values['poll-ms']),
  };
}

type Options = ReturnType<typeof options>;

async function gql<T>(o: Options, query: string, variables: Record<string, unknown>): Promise<T> {
  const res = await fetch(`${o.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', 'x-api-key': o.key },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
  if (body.errors?.length) throw new Refused(body.errors.map((e) => `${e.extensions?.code ?? 'ERROR'}: ${e.message}`).join('\n'));
  return body.data as T;
}

/** The job this command started with these arguments before, if it is still there to follow. */
async function known(o: Options, statePath: string, fingerprint: string): Promise<Job | null> {
  if (!existsSync(statePath)) return null;
  const state = JSON.parse(readFileSync(statePath, 'utf8')) as { id?: string; fingerprint?: string };
  if (state.fingerprint !== fingerprint || typeof state.id !== 'string') return null;
  const { exportJob } = await gql<{ exportJob: Job | null }>(o, `query($id: ID!) { exportJob(id: $id) { ${FIELDS} } }`, { id: state.id });
  if (!exportJob || exportJob.status === 'CANCELLED') return null;
  if (exportJob.status === 'PAUSED' || exportJob.status === 'FAILED') {
    const { resumeExport } = await gql<{ resumeExport: Job | null }>(o, `mutation($id: ID!) { resumeExport(id: $id) { ${FIELDS} } }`, {
      id: state.id,
    });
    return resumeExport;
  }
  return exportJob;
}

/** Downloads the file to `out`, through `out.part` (resumed with Range when a part is there). */
async function download(o: Options, path: string): Promise<void> {
  const part = `${o.out}.part`;
  const have = existsSync(part) ? statSync(part).size : 0;
  const res = await fetch(`${o.url}${path}`, { headers: { 'x-api-key': o.key, ...(have > 0 ? { range: `bytes=${have}-` } : {}) } });
  if (res.status !== 200 && res.status !== 206) throw new Refused(`The download answered ${res.status}: ${await res.text()}`);
  const file = createWriteStream(part, { flags: res.status === 206 ? 'a' : 'w' });
  if (res.body) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      if (!file.write(chunk)) await new Promise<void>((resolve) => file.once('drain', () => resolve()));
    }
  }
  await new Promise<void>((resolve, reject) => file.end((error?: Error | null) => (error ? reject(error) : resolve())));
  renameSync(part, o.out);
}

async function main(): Promise<void> {
  const o = options();
  const fingerprint = createHash('sha256')
    .update(JSON.stringify([o.url, o.document, o.variables, o.operationName, o.format, o.since]))
    .digest('hex');
  const statePath = `${o.out}.export.json`;
  const followed = await known(o, statePath, fingerprint);
  let job: Job;
  if (followed) {
    job = followed;
    process.stderr.write(`following export job ${job.id}\n`);
  } else {
    const started = await gql<{ startExport: Job }>(
      o,
      `mutation($q: String!, $v: JSON, $op: String, $f: ExportFormat!, $s: String) { startExport(query: $q, variables: $v, operationName: $op, format: $f, since: $s) { ${FIELDS} } }`,
      { q: o.document, v: o.variables, op: o.operationName, f: o.format, s: o.since },
    );
    job = started.startExport;
    writeFileSync(statePath, JSON.stringify({ id: job.id, fingerprint }));
    process.stderr.write(`started export job ${job.id}\n`);
  }
  const bar = new SingleBar({
    format: '{bar} {value}/{total} requests | {rows} rows | {status} | ETA {eta_at}',
    stream: process.stderr,
    hideCursor: true,
    noTTYOutput: true,
  });
  bar.start(Math.max(1, job.requestsPlanned), job.requestsDone, { rows: job.rows, status: job.status, eta_at: '?' });
  for (;;) {
    const eta = job.eta ? new Date(job.eta).toISOString().slice(11, 19) : '?';
    bar.setTotal(Math.max(1, job.requestsPlanned, job.requestsDone));
    bar.update(job.requestsDone, { rows: job.rows, status: job.status === 'WAITING' ? 'waiting for its share' : job.status, eta_at: eta });
    if (['SUCCEEDED', 'FAILED', 'CANCELLED', 'PAUSED'].includes(job.status)) break;
    await delay(o.pollMs);
    const current: { exportJob: Job | null } = await gql(o, `query($id: ID!) { exportJob(id: $id) { ${FIELDS} } }`, { id: job.id });
    if (!current.exportJob) throw new Refused(`Export job ${job.id} is gone`);
    job = current.exportJob;
  }
  bar.stop();
  if (job.status !== 'SUCCEEDED' || !job.downloadUrl) {
    throw new Refused(
      `Export job ${job.id} is ${job.status}${job.error ? `: ${job.error.code}: ${job.error.message}` : ''} (run again to resume it)`,
    );
  }
  await download(o, job.downloadUrl);
  rmSync(statePath, { force: true });
  process.stderr.write(`wrote ${o.out}: ${job.rows} rows, ${job.requestsDone} upstream requests\n`);
  // The watermark alone on stdout, for the next pull's --since.
  if (job.watermark) process.stdout.write(`${job.watermark}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `${error instanceof Refused ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
