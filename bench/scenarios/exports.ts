/**
 * `npm run bench -- export`: an export job pulling 5× the key's per-minute limit of pages, paced within
 * EXPORT_QUOTA_SHARE of it: its wall time against the floor the share allows (requests ÷ (share × limit)
 * windows), its upstream requests against the floor (one per page and the experiment), and the
 * upstream's 429s (none expected). The minute window is shortened (the simulator's
 * `--rate-limit-minute-ms` and the gateway's `UPSTREAM_MINUTE_WINDOW_MS`) so that a run takes a minute.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { code, markdownTable, num, ratio, settingsText } from '../lib/format.ts';
import { graphqlRequest, send } from '../lib/http.ts';
import type { Report, Scenario } from '../lib/scenario.ts';
import { describeData, startGateway, startSimulator, type SimulatorConfig } from '../lib/stack.ts';

const EXP = 'exp_movie01';
const QUERY = `query($id: ID!) { experiment(id: $id) { experimentId events { edges { node { id onset eventType category timestamp } } } } }`;

interface Job {
  status: string;
  rows: number;
  requestsDone: number;
  error: { code: string; message: string } | null;
}

async function graphql<T>(origin: string, query: string, variables: Record<string, unknown>): Promise<T> {
  const { body, ...init } = graphqlRequest(query, variables);
  const reply = await send(`${origin}/graphql`, { ...init, body });
  const answer = JSON.parse(reply.text) as { data?: T; errors?: unknown[] };
  if (!answer.data || answer.errors) throw new Error(`${query.slice(0, 40)}…: ${reply.text.slice(0, 300)}`);
  return answer.data;
}

export const exportJobs: Scenario = {
  name: 'export',
  summary: 'an export job of 5× the per-minute limit, paced within EXPORT_QUOTA_SHARE: wall time and requests against their floors',
  async run({ children, options, progress }): Promise<Report[]> {
    const limit = options.quick ? 4 : 10;
    const windowMs = options.quick ? 2_000 : 5_000;
    const share = 0.5;
    const pages = 5 * limit;
    const data: SimulatorConfig = {
      rooms: 5,
      participantsPerRoom: 4,
      eventsPerParticipant: pages * 50,
      latencyMs: 20,
      rateLimit: true,
      rateLimitMinute: limit,
      rateLimitMinuteMs: windowMs,
    };
    const settings = {
      UPSTREAM_MINUTE_LIMIT: String(limit),
      UPSTREAM_MINUTE_WINDOW_MS: String(windowMs),
      EXPORT_QUOTA_SHARE: String(share),
      CACHE_TTL_MS: '0',
      LOG_LEVEL: 'warn',
    };
    const dir = mkdtempSync(join(tmpdir(), 'hsgql-bench-exports-'));
    progress(`export: starting the simulator (${num(pages * 1000)} events) and the gateway`);
    const simulator = await startSimulator(children, data);
    const gateway = await startGateway(children, 'gateway', simulator.url, { ...settings, EXPORT_DIR: dir });
    await simulator.reset();
    const started = performance.now();
    const { startExport } = await graphql<{ startExport: { id: string } }>(
      gateway.origin,
      `
        mutation ($q: String!, $v: JSON) {
          startExport(query: $q, variables: $v, format: CSV) {
            id
          }
        }
      `,
      { q: QUERY, v: { id: EXP } },
    );
    let job: Job;
    for (;;) {
      ({ exportJob: job } = await graphql<{ exportJob: Job }>(
        gateway.origin,
        `
          query ($id: ID!) {
            exportJob(id: $id) {
              status
              rows
              requestsDone
              error {
                code
                message
              }
            }
          }
        `,
        { id: startExport.id },
      ));
      if (['SUCCEEDED', 'FAILED', 'PAUSED', 'CANCELLED'].includes(job.status)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const seconds = (performance.now() - started) / 1000;
    if (job.status !== 'SUCCEEDED') throw new Error(`export: the job ended ${job.status}: ${JSON.stringify(job.error)}`);
    const stats = await simulator.stats();
    const refused = stats.requests.filter((r) => r.status === 429).length;
    const download = await send(`${gateway.origin}/exports/${startExport.id}/file`, { headers: { 'x-api-key': 'hst_test_demo_full' } });
    if (download.status !== 200) throw new Error(`export: the download answered ${download.status}`);
    rmSync(dir, { recursive: true, force: true });
    // The share allows share × limit requests an endpoint a window: the pages need pages ÷ (share × limit) windows.
    const floorSeconds = (pages / (share * limit)) * (windowMs / 1000);
    const floorRequests = pages + 1;
    const table = markdownTable(
      [
        'pages',
        'rows',
        'wall time',
        'floor (pages ÷ (share × limit) windows)',
        'vs the floor',
        'upstream requests',
        'floor',
        'upstream 429s',
      ],
      [
        [
          num(pages),
          num(job.rows),
          `${seconds.toFixed(1)} s`,
          `${floorSeconds.toFixed(1)} s`,
          ratio(seconds / floorSeconds),
          num(stats.total),
          num(floorRequests),
          num(refused),
        ],
      ],
    );
    return [
      {
        title: 'Export jobs: a pull of 5× the per-minute limit within the key’s share',
        setup: [
          `Data: ${describeData(data)}: ${num(pages * 1000)} events, ${pages} pages of 1,000 at experiment scope; the simulator allows ${limit} requests an endpoint per ${windowMs / 1000}-second window (its minute, shortened). Gateway settings changed from the defaults: ${settingsText(settings)} (and a temporary ${code('EXPORT_DIR')}).`,
          `One job (${code('startExport')}, CSV) of ${code('experiment → events')}, polled every 100 ms until it ended; its file downloaded once.`,
        ],
        table,
        notes: [
          `Sliding windows let the first ${share * limit} pages go at once, so the wall time may come in under the floor by up to a window.`,
          `Reproduce: ${code(`npm run bench -- export${options.quick ? ' --quick' : ''}`)}.`,
        ],
      },
    ];
  },
};
