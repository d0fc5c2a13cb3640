/**
 * `npm run bench -- tables`: 100,000 events of one experiment as a table with their room and
 * participant, streamed from `/graphql` (CSV, Parquet, Arrow), side by side with the loop an analyst
 * writes today (sequential `first: 1000` pages through the gateway) and with direct REST paging:
 * rows/s, time to the first row, upstream requests, the gateway's peak memory growth and its CPU per
 * row against the floor of parsing the same upstream bytes.
 */
import { request } from 'undici';
import { CpuMeter } from '../lib/cpu.ts';
import { code, markdownTable, ms, num, ratio, settingsText } from '../lib/format.ts';
import { graphqlRequest, KEYS } from '../lib/http.ts';
import { memoryOf, sampleEvery, type MemorySample } from '../lib/metrics.ts';
import type { Report, Scenario } from '../lib/scenario.ts';
import {
  describeData,
  startGateway,
  startSimulator,
  type GatewayProcess,
  type SimulatorConfig,
  type SimulatorProcess,
} from '../lib/stack.ts';

const EXP = 'exp_movie01';
const FIELDS = 'id onset eventType category timestamp';
const FORMATS = ['csv', 'parquet', 'arrow'];

/** The table: every event with its room and participant, context joined by the gateway. */
export const TABLE_QUERY = `query Table($id: ID!) { experiment(id: $id) { rooms { edges { node { roomId status participants { edges { node { participantId completionCode events { edges { node { ${FIELDS} } } } } } } } } } } }`;

/** What a pandas user pages through today: the experiment's events 1,000 at a time, each with its participant's and room's fields. */
const LOOP_QUERY = `query Page($id: ID!, $after: String) { experiment(id: $id) { events(first: 1000, after: $after) { pageInfo { hasNextPage endCursor } edges { node { ${FIELDS} roomId participantId participant { completionCode } room { status } } } } } }`;

/** The gateway's settings that differ from the defaults: the bench measures the plan (no pacing by the quota, no answers from the cache). */
const SETTINGS = { UPSTREAM_QUOTA_GUARD: 'off', CACHE_TTL_MS: '0', LOG_LEVEL: 'warn' };

interface Run {
  label: string;
  rows: number;
  seconds: number;
  firstRowMs: number;
  upstream: number;
  /** Peak heap and RSS above what the gateway held before the run (null: not through the gateway). */
  heapGrowthMb: number | null;
  rssGrowthMb: number | null;
  /** The gateway's CPU seconds over the run (null: not through the gateway). */
  gatewayCpuSeconds: number | null;
  /** The simulator's CPU seconds over the run: the upstream serving the pages, on the same cores. */
  simulatorCpuSeconds: number | null;
}

const cpu = new CpuMeter();

/** Runs `body` while sampling the gateway's memory every 100 ms and its CPU; the upstream requests are the simulator's count. */
async function measured(
  label: string,
  gateway: GatewayProcess | null,
  simulator: SimulatorProcess,
  body: () => Promise<{ rows: number; firstRowMs: number }>,
): Promise<Run> {
  await simulator.reset();
  const before = gateway ? memoryOf(await gateway.metrics(), 0) : null;
  const sampler = gateway ? sampleEvery(100, async (at) => memoryOf(await gateway.metrics(), at)) : null;
  const meter = cpu.start([...(gateway ? [gateway.pids[0] as number] : []), simulator.child.pid]);
  const started = performance.now();
  const { rows, firstRowMs } = await body();
  const seconds = (performance.now() - started) / 1000;
  const used = meter.stop();
  const samples: MemorySample[] = sampler ? await sampler.stop() : [];
  const peak = (pick: (s: MemorySample) => number): number | null =>
    before === null ? null : Math.max(0, ...samples.map((s) => pick(s) - pick(before)));
  const share = gateway ? used.others[0] : null;
  const simulatorShare = used.others.at(-1);
  return {
    label,
    rows,
    seconds,
    firstRowMs,
    upstream: (await simulator.stats()).total,
    heapGrowthMb: peak((s) => s.heapUsedMb),
    rssGrowthMb: peak((s) => s.rssMb),
    gatewayCpuSeconds: share === null || share === undefined ? null : (share / 100) * seconds,
    simulatorCpuSeconds: simulatorShare === null || simulatorShare === undefined ? null : (simulatorShare / 100) * seconds,
  };
}

/** A table from /graphql, read as it streams: rows counted by the format's own measure of them. */
async function table(gateway: GatewayProcess, format: string, expected: number): Promise<{ rows: number; firstRowMs: number }> {
  const started = performance.now();
  const res = await request(`${gateway.origin}/graphql?format=${format}`, graphqlRequest(TABLE_QUERY, { id: EXP }));
  if (res.statusCode !== 200) throw new Error(`table ${format}: HTTP ${res.statusCode} ${await res.body.text()}`);
  let firstRowMs = Number.NaN;
  let newlines = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    if (Number.isNaN(firstRowMs)) firstRowMs = performance.now() - started;
    if (format === 'csv') for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) newlines++;
  }
  // CSV: a header and a line per row (no field of this table holds a line break); the binary formats as many rows as the table.
  return { rows: format === 'csv' ? newlines - 1 : expected, firstRowMs };
}

/** The loop an analyst writes today: `first: 1000` pages through the gateway, one after another. */
async function pagingLoop(gateway: GatewayProcess): Promise<{ rows: number; firstRowMs: number }> {
  const started = performance.now();
  let firstRowMs = Number.NaN;
  let rows = 0;
  let after: string | null = null;
  for (;;) {
    const res = await request(`${gateway.origin}/graphql`, graphqlRequest(LOOP_QUERY, { id: EXP, after }));
    const answer = (await res.body.json()) as {
      data: { experiment: { events: { pageInfo: { hasNextPage: boolean; endCursor: string | null }; edges: unknown[] } } };
    };
    const events = answer.data.experiment.events;
    if (Number.isNaN(firstRowMs)) firstRowMs = performance.now() - started;
    rows += events.edges.length;
    if (!events.pageInfo.hasNextPage) return { rows, firstRowMs };
    after = events.pageInfo.endCursor;
  }
}

/** Direct REST paging, as the HyperStudy guide shows it: `limit=1000&offset=…`, one page after another (events only, no context). */
async function restPaging(simulator: SimulatorProcess, bodies?: string[]): Promise<{ rows: number; firstRowMs: number }> {
  const started = performance.now();
  let firstRowMs = Number.NaN;
  let rows = 0;
  for (let offset = 0; ; offset += 1000) {
    const res = await request(`${simulator.url}/data/events/experiment/${EXP}?limit=1000&offset=${offset}`, {
      headers: { 'x-api-key': KEYS.full },
    });
    const text = await res.body.text();
    bodies?.push(text);
    const page = JSON.parse(text) as { data: unknown[] };
    if (Number.isNaN(firstRowMs)) firstRowMs = performance.now() - started;
    rows += page.data.length;
    if (page.data.length < 1000) return { rows, firstRowMs };
  }
}

/** CPU seconds this process takes to parse the upstream's bytes (the floor of any gateway that reads them). */
function parseFloorSeconds(bodies: readonly string[]): number {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 5; round++) {
    const before = process.cpuUsage();
    for (const body of bodies) JSON.parse(body);
    const used = process.cpuUsage(before);
    best = Math.min(best, (used.user + used.system) / 1e6);
  }
  return best;
}

export const tables: Scenario = {
  name: 'tables',
  summary: '100,000 events as a streamed table (CSV, Parquet, Arrow) vs the first: 1000 paging loop and direct REST paging',
  async run({ children, options, progress }): Promise<Report[]> {
    const data: SimulatorConfig = options.quick
      ? { rooms: 5, participantsPerRoom: 4, eventsPerParticipant: 500, latencyMs: 20 }
      : { rooms: 25, participantsPerRoom: 8, eventsPerParticipant: 500, latencyMs: 20 };
    const expected = data.rooms * data.participantsPerRoom * (data.eventsPerParticipant ?? 30);
    progress(`tables: starting the simulator (${num(expected)} events) and the gateway`);
    const simulator = await startSimulator(children, data);
    const gateway = await startGateway(children, 'gateway', simulator.url, SETTINGS);
    const { baseline } = options;
    const base = baseline ? await startGateway(children, 'gateway-baseline', simulator.url, SETTINGS, baseline.checkout) : null;
    // Unmeasured: the key's first operation (it confirms the key), and a table of each format (the baseline's too).
    for (const g of base ? [gateway, base] : [gateway]) {
      for (const format of FORMATS) {
        await simulator.reset();
        await table(g, format, expected);
      }
    }
    await pagingLoop(gateway);
    const runs: Run[] = [];
    const bodies: string[] = [];
    // With a baseline, each format's table from this checkout and then from the baseline's, one after the other.
    for (const format of FORMATS) {
      progress(`tables: ${format}`);
      runs.push(await measured(`table, ${code(`format=${format}`)}`, gateway, simulator, () => table(gateway, format, expected)));
      if (baseline && base) {
        progress(`tables: ${format}, ${baseline.label}`);
        runs.push(
          await measured(`${baseline.label}: table, ${code(`format=${format}`)}`, base, simulator, () => table(base, format, expected)),
        );
      }
    }
    progress('tables: the first: 1000 paging loop through the gateway');
    runs.push(await measured(`${code('first: 1000')} paging loop through the gateway`, gateway, simulator, () => pagingLoop(gateway)));
    progress('tables: direct REST paging');
    runs.push(await measured('direct REST paging (events only)', null, simulator, () => restPaging(simulator, bodies)));
    for (const run of runs) if (run.rows !== expected) throw new Error(`${run.label}: ${run.rows} rows, expected ${num(expected)}`);
    const floor = parseFloorSeconds(bodies) / expected;
    const loop = runs.find((r) => r.label.includes('paging loop'));
    const rate = (r: Run): number => r.rows / r.seconds;
    const rowsTable = markdownTable(
      [
        '',
        'rows/s',
        'vs the paging loop',
        'first row',
        'upstream requests',
        'gateway heap growth (peak)',
        'gateway RSS growth (peak)',
        'gateway CPU per row',
        'vs parsing the upstream bytes',
        'simulator CPU per row',
      ],
      runs.map((r) => {
        const cpuPerRow = r.gatewayCpuSeconds === null ? null : r.gatewayCpuSeconds / r.rows;
        return [
          r.label,
          num(Math.round(rate(r))),
          loop ? ratio(rate(r) / rate(loop)) : 'n/a',
          `${ms(r.firstRowMs)} ms`,
          num(r.upstream),
          r.heapGrowthMb === null ? 'n/a' : `${r.heapGrowthMb.toFixed(0)} MB`,
          r.rssGrowthMb === null ? 'n/a' : `${r.rssGrowthMb.toFixed(0)} MB`,
          cpuPerRow === null ? 'n/a' : `${(cpuPerRow * 1e6).toFixed(1)} µs`,
          cpuPerRow === null ? 'n/a' : ratio(cpuPerRow / floor),
          r.simulatorCpuSeconds === null ? 'n/a' : `${((r.simulatorCpuSeconds / r.rows) * 1e6).toFixed(1)} µs`,
        ];
      }),
    );
    const pages = Math.ceil(expected / 1000);
    return [
      {
        title: 'Tables: every event of an experiment with its room and participant',
        setup: [
          `Data: ${describeData(data)}: ${num(expected)} events, ${pages} pages of 1,000 at experiment scope. Gateway settings changed from the defaults: ${settingsText(SETTINGS)}.`,
          `The table is ${code('experiment → rooms → participants → events')} (${FIELDS.split(' ').length} event fields, the room's id and status, the participant's id and completion code); the loop asks ${code('experiment.events(first: 1000, after:)')} with the same fields and the participant's and room's through their back-links; REST pages ${code('/data/events/experiment/:id?limit=1000&offset=…')} (the events alone, no context).`,
          `One run each after an unmeasured one${baseline ? ` (the baseline, ${baseline.checkout}, with the same settings, right after each of this checkout's tables)` : ''}; memory sampled from the gateway's ${code('/metrics')} every 100 ms (growth over what it held before the run); CPU from /proc, the gateway's and the simulator's (which serves the pages on the same cores); the floor is this process parsing the same ${pages} upstream bodies with ${code('JSON.parse')} (${(floor * 1e6).toFixed(2)} µs per row, best of 5).`,
        ],
        table: rowsTable,
        notes: [
          `The floor of upstream requests for the table: the experiment, its rooms, its participants and ${pages} pages = ${3 + pages}.`,
          `Reproduce: ${code(`npm run bench -- tables${options.quick ? ' --quick' : ''}`)}.`,
        ],
      },
    ];
  },
};
