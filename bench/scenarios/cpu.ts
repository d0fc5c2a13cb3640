import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DASHBOARD } from '../../test/helpers/dashboard.ts';
import { cpuSecondsOf, clockTicks, mainThreadCpuSecondsOf } from '../lib/cpu.ts';
import { code, markdownTable, median, ms, num, ratio, settingsText } from '../lib/format.ts';
import { parseJsonBytes } from '../../src/upstream/json.ts';
import type { Children } from '../lib/children.ts';
import { floorCpu, type FloorBytes } from '../lib/floor.ts';
import { graphqlRequest, KEYS, send, sendForBytes } from '../lib/http.ts';
import { closedLoop } from '../lib/load.ts';
import type { Report, Scenario } from '../lib/scenario.ts';
import {
  describeData,
  startGateway,
  startSimulator,
  type GatewayProcess,
  type SimulatorConfig,
  type SimulatorProcess,
} from '../lib/stack.ts';
import { DASHBOARD_SETTINGS } from './dashboards.ts';
import { dashboardCheck } from './throughput.ts';

/**
 * The gateway's CPU per cold dashboard against the floor of any gateway that answers it: parsing the
 * upstream bodies it reads (`JSON.parse`) and writing its answer (`JSON.stringify`), measured in the same
 * run on the same bytes.
 */
const CLIENTS = 10;
const DATA: SimulatorConfig = { rooms: 20, participantsPerRoom: 4, eventsPerParticipant: 60, latencyMs: 0, extraKeys: CLIENTS };
const ROUNDS = 3;
/**
 * Dashboards a gateway answers before it is measured. V8 goes on compiling the gateway's functions for
 * its first ~1,000 dashboards (`--trace-opt`: 1,300 compilations in the first 100, still 15–80 per 100
 * between 600 and 1,100, a few after 1,200), on its helper threads: measured among them, a dashboard
 * one at a time carried ~1 ms of compiling (docs/measured.md, seventh round). A long-running gateway has
 * paid that once.
 */
const WARM_DASHBOARDS = 1500;

interface Variant {
  label: string;
  gateway: GatewayProcess;
}

/** The bodies the gateway read for one dashboard (fetched again from the simulator with the same key) and its answer. */
async function floorBytes(
  simulator: SimulatorProcess,
  gateway: GatewayProcess,
): Promise<{ bodies: string[]; urls: string[]; answer: string; requests: number }> {
  await simulator.reset();
  const reply = await send(`${gateway.origin}/graphql`, graphqlRequest(DASHBOARD, { id: 'exp_movie01' }));
  const problem = dashboardCheck(reply.status, reply.text);
  if (problem) throw new Error(`cpu: the dashboard did not answer completely (${problem})`);
  const { requests } = await simulator.stats();
  const bodies: string[] = [];
  const urls = requests.map((r) => `${simulator.origin}${r.path}${r.query ? `?${r.query}` : ''}`);
  for (const url of urls) {
    const upstream = await send(url, { headers: { 'x-api-key': KEYS.full } });
    if (upstream.status !== 200) throw new Error(`cpu: GET ${url} answered ${upstream.status}`);
    bodies.push(upstream.text);
  }
  return { bodies, urls, answer: reply.text, requests: requests.length };
}

/**
 * The floor's mean in a process of its own (bench/servers/floor-loop.ts), measured as the gateway's CPU
 * is: the whole process's CPU over many passes after a warm-up, the collections their garbage causes
 * included. The bench's own process holds the load generator's and the reports' garbage, which made the
 * mean of passes measured in it swing between 9.3 and 13 ms from run to run (docs/measured.md).
 */
async function ownProcessFloorSeconds(children: Children, file: string, passes: number): Promise<number> {
  const child = children.spawnNode('floor-loop', ['--import', 'tsx', 'bench/servers/floor-loop.ts', file, String(passes), '50']);
  try {
    const [, json = '{}'] = await child.waitForOutput(/floor-loop (\{.*\})/, 120_000);
    return (JSON.parse(json) as { mean: number }).mean;
  } finally {
    await child.stop();
  }
}

/**
 * The floor with the bodies' transport: this process reads the same upstream answers from the simulator
 * over HTTP (undici, keep-alive, all at once), then parses them and stringifies the answer, as the
 * simplest gateway in Node would; CPU seconds, best of 20. What a gateway cannot avoid besides the plain
 * floor: receiving 2.5 MB over a socket and decoding it. Read as `bytes`, each body is decoded in pieces
 * by the gateway's own `parseJsonBytes` (src/upstream/json.ts, the value of `JSON.parse` of its text);
 * read as `text`, each is decoded into one string first, which for a body over 128 kB V8 allocates in
 * its large-object space, in memory of its own fresh from the system (docs/measured.md, sixth round).
 */
async function transportFloorSeconds(urls: readonly string[], answer: string, read: 'bytes' | 'text'): Promise<number> {
  const tree: unknown = JSON.parse(answer);
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 20; round++) {
    const before = process.cpuUsage();
    if (read === 'text') {
      const replies = await Promise.all(urls.map((url) => send(url, { headers: { 'x-api-key': KEYS.full } })));
      for (const reply of replies) JSON.parse(reply.text);
    } else {
      const replies = await Promise.all(urls.map((url) => sendForBytes(url, { headers: { 'x-api-key': KEYS.full } })));
      for (const reply of replies) parseJsonBytes(reply.bytes);
    }
    JSON.stringify(tree);
    const used = process.cpuUsage(before);
    best = Math.min(best, (used.user + used.system) / 1e6);
  }
  return best;
}

const DASHBOARD_REQUEST = { path: '/graphql', ...graphqlRequest(DASHBOARD, { id: 'exp_movie01' }) };
/** Client `n`'s request when each has a key of its own. */
const OWN_KEY_REQUESTS = Array.from({ length: CLIENTS }, (_, n) => ({
  path: '/graphql',
  ...graphqlRequest(DASHBOARD, { id: 'exp_movie01' }, `hst_test_extra_${n + 1}`),
}));

/** The gateway's CPU seconds per dashboard and its dashboards/s under CLIENTS closed-loop clients for `seconds`. */
async function loadedCpu(
  variant: Variant,
  seconds: number,
  next: (client: number) => typeof DASHBOARD_REQUEST,
): Promise<{ cpu: number; rate: number; operations: number }> {
  const result = await closedLoop({
    origin: variant.gateway.origin,
    clients: CLIENTS,
    durationMs: seconds * 1000,
    next,
    check: dashboardCheck,
    pids: [variant.gateway.child.pid],
  });
  if (result.errorCount > 0) throw new Error(`cpu: ${variant.label}: ${result.errorCount} incomplete answers at ${CLIENTS} clients`);
  const share = result.serverCpu[0];
  return {
    cpu: share === null || share === undefined ? Number.NaN : ((share / 100) * result.seconds) / result.operations,
    rate: result.rate,
    operations: result.operations,
  };
}

interface Sequential {
  /** CPU seconds per dashboard, the whole process. */
  cpu: number;
  /** Of it, the threads besides the main one: V8's helpers (concurrent marking, parallel scavenges), libuv's. */
  helpers: number;
  /** Full (mark-compact) collections per 100 dashboards, from the gateway's `nodejs_gc_duration_seconds_count{kind="major"}`. */
  fullCollections: number;
}

const MAJOR_GCS = 'nodejs_gc_duration_seconds_count{kind="major"}';

/** The gateway's CPU per dashboard over `count` dashboards sent one after another. */
async function sequentialCpu(variant: Variant, count: number, ticks: number): Promise<Sequential> {
  const pid = variant.gateway.child.pid;
  const majorsBefore = (await variant.gateway.metrics()).get(MAJOR_GCS) ?? 0;
  const before = cpuSecondsOf(pid, ticks);
  const mainBefore = mainThreadCpuSecondsOf(pid, ticks);
  for (let i = 0; i < count; i++) {
    const reply = await send(`${variant.gateway.origin}/graphql`, graphqlRequest(DASHBOARD, { id: 'exp_movie01' }));
    const problem = dashboardCheck(reply.status, reply.text);
    if (problem) throw new Error(`cpu: ${variant.label}: ${problem}`);
  }
  const after = cpuSecondsOf(pid, ticks);
  const mainAfter = mainThreadCpuSecondsOf(pid, ticks);
  const majorsAfter = (await variant.gateway.metrics()).get(MAJOR_GCS) ?? 0;
  const per = (a: number | null, b: number | null): number => (a === null || b === null ? Number.NaN : (b - a) / count);
  const cpu = per(before, after);
  return { cpu, helpers: cpu - per(mainBefore, mainAfter), fullCollections: (100 * (majorsAfter - majorsBefore)) / count };
}

export const cpu: Scenario = {
  name: 'cpu',
  summary: `the gateway's CPU per cold 20×4 dashboard (60 events per participant), one at a time and at ${CLIENTS} clients, against the floor (JSON.parse of the same upstream bodies + JSON.stringify of the answer)`,
  async run({ children, options, progress }): Promise<Report[]> {
    const ticks = clockTicks();
    progress('cpu: starting the simulator and the gateway');
    const simulator = await startSimulator(children, DATA);
    const started = [
      startGateway(children, 'gateway', simulator.url, DASHBOARD_SETTINGS).then((gateway) => ({ label: 'this checkout', gateway })),
    ];
    const { baseline } = options;
    if (baseline) {
      started.push(
        startGateway(children, 'gateway-baseline', simulator.url, DASHBOARD_SETTINGS, baseline.checkout).then((gateway) => ({
          label: baseline.label,
          gateway,
        })),
      );
    }
    const variants = await Promise.all(started);
    // Long enough that the full collections V8 runs every ~100 dashboards or more are counted in their share.
    const sequential = options.quick ? 10 : 150;
    const seconds = options.quick ? 2 : options.seconds;
    const warm = options.quick ? 50 : WARM_DASHBOARDS;
    for (const v of variants) {
      progress(`cpu: warming up ${v.label} (${warm} dashboards)`);
      await sequentialCpu(v, options.quick ? 5 : 20, ticks);
      await loadedCpu(v, 1, (client) => OWN_KEY_REQUESTS[client] ?? DASHBOARD_REQUEST);
      for (let answered = 0; answered < warm;) answered += (await loadedCpu(v, 1, () => DASHBOARD_REQUEST)).operations;
    }
    const first = variants[0];
    if (!first) throw new Error('cpu: no gateway');
    const bytes = await floorBytes(simulator, first.gateway);
    const floorFile = join(children.logDir, 'floor-bytes.json');
    writeFileSync(floorFile, JSON.stringify({ bodies: bytes.bodies, answer: bytes.answer } satisfies FloorBytes));
    const floors: number[] = [];
    const meanFloors: number[] = [];
    const transportFloors: number[] = [];
    const textFloors: number[] = [];
    const seq = variants.map(() => [] as Sequential[]);
    const loaded = variants.map(() => [] as { cpu: number; rate: number }[]);
    const ownKeys = variants.map(() => [] as { cpu: number; rate: number }[]);
    for (let round = 0; round < ROUNDS; round++) {
      floors.push(floorCpu(bytes, 20).best);
      meanFloors.push(await ownProcessFloorSeconds(children, floorFile, sequential));
      transportFloors.push(await transportFloorSeconds(bytes.urls, bytes.answer, 'bytes'));
      textFloors.push(await transportFloorSeconds(bytes.urls, bytes.answer, 'text'));
      for (const [i, v] of variants.entries()) {
        progress(`cpu: ${v.label}, round ${round + 1}/${ROUNDS}: ${sequential} dashboards one at a time`);
        // A gateway left idle while the other is measured (~15 s) has its heap shrunk by V8, which then
        // collects it in full as dashboards come again: one second of load, unmeasured, first.
        if (variants.length > 1) await loadedCpu(v, 1, () => DASHBOARD_REQUEST);
        seq[i]?.push(await sequentialCpu(v, sequential, ticks));
        progress(`cpu: ${v.label}, round ${round + 1}/${ROUNDS}: ${CLIENTS} clients for ${num(seconds / ROUNDS)} s`);
        loaded[i]?.push(await loadedCpu(v, seconds / ROUNDS, () => DASHBOARD_REQUEST));
        progress(`cpu: ${v.label}, round ${round + 1}/${ROUNDS}: ${CLIENTS} clients, a key each, for ${num(seconds / ROUNDS)} s`);
        ownKeys[i]?.push(await loadedCpu(v, seconds / ROUNDS, (client) => OWN_KEY_REQUESTS[client] ?? DASHBOARD_REQUEST));
      }
    }
    const floor = median(floors);
    const meanFloor = median(meanFloors);
    const transportFloor = median(transportFloors);
    const textFloor = median(textFloors);
    const rows = variants.map((v, i) => {
      const one = median((seq[i] ?? []).map((r) => r.cpu));
      const helpers = median((seq[i] ?? []).map((r) => r.helpers));
      const full = median((seq[i] ?? []).map((r) => r.fullCollections));
      const many = median((loaded[i] ?? []).map((r) => r.cpu));
      const rate = median((loaded[i] ?? []).map((r) => r.rate));
      const own = median((ownKeys[i] ?? []).map((r) => r.cpu));
      const ownRate = median((ownKeys[i] ?? []).map((r) => r.rate));
      return [
        v.label,
        ms(one * 1000),
        ratio(one / floor),
        ratio(one / meanFloor),
        ratio(one / transportFloor),
        ms(helpers * 1000),
        num(full),
        ms(many * 1000),
        ratio(many / floor),
        num(rate),
        ms(own * 1000),
        ratio(own / floor),
        ratio(own / transportFloor),
        num(ownRate),
      ];
    });
    const kb = (text: string): string => `${num(Buffer.byteLength(text) / 1000)} kB`;
    const upstreamBytes = bytes.bodies.reduce((sum, b) => sum + Buffer.byteLength(b), 0);
    return [
      {
        title: 'CPU per dashboard against the floor',
        setup: [
          `The dashboard query (test/helpers/dashboard.ts) on ${code('exp_movie01')}; simulator (its own process): ${describeData(DATA)}; ${bytes.requests} upstream requests, ${num(upstreamBytes / 1e6)} MB of upstream JSON, a ${kb(bytes.answer)} answer.`,
          `Gateway settings changed from the defaults: ${settingsText(DASHBOARD_SETTINGS)}. CPU of the gateway process from /proc (user + system). ` +
            `One at a time: ${sequential} dashboards sent one after another; at ${CLIENTS} clients: closed loop for ${num(seconds / ROUNDS)} s (identical reads in flight are coalesced); at ${CLIENTS} clients, a key each: the same, each client with a key of its own (the simulator's ${code(`--extra-keys ${CLIENTS}`)}), so that no reads are shared and each dashboard costs its own. Medians of ${ROUNDS} alternating rounds after a warm-up of ${warm} dashboards (V8 compiles the gateway's functions through its first ~1,000, on its helper threads)${variants.length > 1 ? `; with two gateways, each round of one at a time starts after 1 s of unmeasured load (V8 shrinks the heap of a gateway idle ~15 s while the other is measured, and collects it in full when dashboards come again)` : ''}. One at a time, also the CPU of the gateway's threads besides its main one (${code('/proc/<pid>/task')}: V8's helpers, which mark concurrently for full collections and help with scavenges, and libuv's) and its full collections (${code('nodejs_gc_duration_seconds_count{kind="major"}')} from its ${code('/metrics')}) per 100 dashboards.`,
          `The floor: this process ${code('JSON.parse')}s the same ${bytes.requests} upstream bodies (fetched again with the same key) and ${code('JSON.stringify')}s the answer, best of 20, ${ms(floor * 1000)} ms (median of the rounds). Its mean, measured as the gateway's figures are — a process of its own (${code('bench/servers/floor-loop.ts')}), the CPU of all its threads over ${sequential} passes after 50, the collections their garbage causes included — ${ms(meanFloor * 1000)} ms. ` +
            `With their transport: it also reads the ${bytes.requests} answers from the simulator over HTTP (undici, keep-alive, at once) first, each body as bytes decoded in pieces as the gateway does (${code('parseJsonBytes')}), best of 20, ${ms(transportFloor * 1000)} ms; each body decoded into one string instead (undici's ${code('body.text()')}), ${ms(textFloor * 1000)} ms.`,
        ],
        table: markdownTable(
          [
            'gateway',
            'CPU ms, one at a time',
            '÷ floor',
            "÷ the floor's mean, a process of its own",
            '÷ floor with transport',
            'of it, threads besides the main one, ms',
            'full collections per 100',
            `CPU ms, ${CLIENTS} clients`,
            '÷ floor',
            `dashboards/s, ${CLIENTS} clients`,
            `CPU ms, ${CLIENTS} clients, a key each`,
            '÷ floor',
            '÷ floor with transport',
            `dashboards/s, ${CLIENTS} clients, a key each`,
          ],
          rows,
        ),
      },
    ];
  },
};
