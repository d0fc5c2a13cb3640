/** `npm run export` (issue 21): starts a job, shows its progress, downloads the file; run again after an interruption, it follows the same job. */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { exportDirPerTest, gql } from './helpers/exports.ts';
import { runScript } from './helpers/process.ts';
import { FULL } from './helpers/simulator.ts';
import { stackPerTest, type Stack } from './helpers/stack.ts';
import { restAll } from './helpers/tables.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = 'src/exports/cli.ts';
const EXP = 'exp_movie01';
const EVENTS = `query($id: ID!) { experiment(id: $id) { experimentId events { edges { node { id eventType onset } } } } }`;
const DATA = { rooms: 5, participantsPerRoom: 4, eventsPerParticipant: 150 };

// In this order: afterEach hooks run last-registered first, so each test's gateway closes before its EXPORT_DIR goes.
const exportDir = exportDirPerTest();
const stack = stackPerTest();

async function expectedCsv(s: Stack): Promise<string> {
  const events = await restAll((path) => s.rest(path), `/data/events/experiment/${EXP}`);
  const lines = events.map((e) => `${EXP},${String(e.id)},${String(e.eventType)},${String(e.onset)}\r\n`);
  return `experiment.experimentId,experiment.events.id,experiment.events.eventType,experiment.events.onset\r\n${lines.join('')}`;
}

/** The CLI's arguments for a query file and an output file in `dir`. */
function args(dir: string, url: string): string[] {
  const query = join(dir, 'events.graphql');
  writeFileSync(query, EVENTS);
  return [
    '--query',
    query,
    '--variables',
    JSON.stringify({ id: EXP }),
    '--format',
    'csv',
    '--out',
    join(dir, 'events.csv'),
    '--url',
    url,
    '--poll-ms',
    '100',
  ];
}

describe('npm run export', () => {
  it('starts a job, shows its progress on stderr and writes the file', async () => {
    const s = await stack(DATA, { EXPORT_DIR: exportDir() });
    const dir = exportDir();
    const run = await runScript(CLI, args(dir, s.url), { HYPERSTUDY_API_KEY: FULL });
    expect(run.code).toBe(0);
    expect(readFileSync(join(dir, 'events.csv'), 'utf8')).toBe(await expectedCsv(s));
    expect(run.err).toMatch(/^started export job exp_job_[0-9a-f]{24}\n/);
    expect(run.err).toContain('4/4 requests | 3000 rows | SUCCEEDED');
    expect(run.err.trim().split('\n').at(-1)).toBe(`wrote ${join(dir, 'events.csv')}: 3000 rows, 4 upstream requests`);
    // The job is over: nothing is left to follow.
    expect(existsSync(join(dir, 'events.csv.export.json'))).toBe(false);
  });

  it('interrupted and run again with the same arguments, follows the job it started', async () => {
    // Paced (two requests an endpoint a 3-second window), the job outlives the first run.
    const s = await stack(
      { ...DATA, rateLimit: { enabled: true, perHour: 1000, perMinute: 4, minuteMs: 3_000 } },
      { EXPORT_DIR: exportDir(), UPSTREAM_QUOTA_GUARD: 'on', UPSTREAM_MINUTE_LIMIT: '4', UPSTREAM_MINUTE_WINDOW_MS: '3000' },
    );
    const csv = await expectedCsv(s);
    s.sim.rateLimiter.reset();
    const dir = exportDir();
    const first = spawn(process.execPath, ['--import', 'tsx', CLI, ...args(dir, s.url)], {
      cwd: ROOT,
      env: { ...process.env, HYPERSTUDY_API_KEY: FULL },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    first.stderr.on('data', (c: Buffer) => (err += c.toString()));
    for (let i = 0; i < 400 && !err.includes('started export job'); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    first.kill('SIGINT');
    await new Promise((resolve) => first.once('exit', resolve));
    const id = /started export job (\S+)/.exec(err)?.[1];
    expect(id).toMatch(/^exp_job_/);

    const again = await runScript(CLI, args(dir, s.url), { HYPERSTUDY_API_KEY: FULL });
    expect(again.code).toBe(0);
    expect(again.err).toMatch(new RegExp(`^following export job ${id}\\n`));
    expect(await gql(s.url, '{ exportJobs { id status } }')).toEqual({ data: { exportJobs: [{ id, status: 'SUCCEEDED' }] } });
    expect(readFileSync(join(dir, 'events.csv'), 'utf8')).toBe(csv);
  }, 60_000);

  it('prints the watermark on stdout, and with --since pulls only the records newer than it', async () => {
    const s = await stack(DATA, { EXPORT_DIR: exportDir() });
    const dir = exportDir();
    const first = await runScript(CLI, args(dir, s.url), { HYPERSTUDY_API_KEY: FULL });
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/^[A-Za-z0-9_-]+\n$/);
    const participant = (await restAll((path) => s.rest(path), `/data/participants/experiment/${EXP}`))[0] as Record<string, unknown>;
    const recorded = await gql<{ recordEvents: { eventIds: string[] } }>(
      s.url,
      `mutation($e: [EventInput!]!) { recordEvents(events: $e) { eventIds } }`,
      {
        e: [
          {
            experimentId: EXP,
            roomId: participant.roomId,
            participantId: participant.id,
            eventType: 'custom.new',
            onset: 1,
            timestamp: '2031-01-01T00:00:00.000Z',
          },
        ],
      },
    );
    const [id] = recorded.data?.recordEvents.eventIds ?? [];
    const next = await runScript(CLI, [...args(dir, s.url), '--since', first.out.trim()], { HYPERSTUDY_API_KEY: FULL });
    expect(next.code).toBe(0);
    expect(readFileSync(join(dir, 'events.csv'), 'utf8')).toBe(
      `experiment.experimentId,experiment.events.id,experiment.events.eventType,experiment.events.onset\r\n${EXP},${String(id)},custom.new,1\r\n`,
    );
    expect(next.err.trim().split('\n').at(-1)).toBe(`wrote ${join(dir, 'events.csv')}: 1 rows, 2 upstream requests`);
    expect(next.out).toMatch(/^[A-Za-z0-9_-]+\n$/);
    expect(next.out).not.toBe(first.out);
  }, 60_000);

  it('says what it needs without a key or arguments, exit code 1', async () => {
    const noKey = await runScript(CLI, args(exportDir(), 'http://127.0.0.1:9'), { HYPERSTUDY_API_KEY: '' });
    expect([noKey.code, noKey.err]).toEqual([1, 'HYPERSTUDY_API_KEY is not set: the export runs with that key\n']);
    const bare = await runScript(CLI, [], { HYPERSTUDY_API_KEY: FULL });
    expect([bare.code, bare.err]).toEqual([
      1,
      'usage: npm run export -- --query FILE [--variables JSON] [--operation NAME] --format csv|tsv|ndjson|parquet|arrow --out FILE [--since WATERMARK] [--url URL]\n',
    ]);
  });
});
