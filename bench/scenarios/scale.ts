import { cpus } from 'node:os';
import { DASHBOARD } from '../../test/helpers/dashboard.ts';
import { code, markdownTable, ms, num, pct, ratioRange, settingsText } from '../lib/format.ts';
import { graphqlRequest, send } from '../lib/http.ts';
import { alternate, closedLoop, errorsText, mergeLoad, p, pairedRatio, rateSpread } from '../lib/load.ts';
import type { Report, Scenario } from '../lib/scenario.ts';
import {
  describeData,
  startGateway,
  startRedisServer,
  startSimulator,
  type GatewayProcess,
  type SimulatorConfig,
  type SimulatorProcess,
} from '../lib/stack.ts';
import type { Children } from '../lib/children.ts';
import type { BenchOptions } from '../lib/scenario.ts';
import { DASHBOARD_SETTINGS } from './dashboards.ts';
import { dashboardCheck } from './throughput.ts';

const DASHBOARD_CLIENTS = 8;
const SMALL_CLIENTS = 8;
const ROUNDS = 4;
const SMALL_ROUNDS = 10;
const TINY = '{ experiment(id: "exp_movie01") { name } }';
const CACHED_SETTINGS = { CACHE_TTL_MS: '3600000' };

const plainCheck = (status: number, body: string): string | null =>
  status !== 200 ? `HTTP ${status}` : body.includes('"errors":[') ? 'GraphQL errors' : null;

const sum = (xs: readonly (number | null)[]): number | null =>
  xs.reduce<number | null>((a, x) => (a === null || x === null ? null : a + x), 0);

interface Variant {
  label: string;
  gateway: GatewayProcess;
}

/** Measures `variants` in alternating rounds with the same request, each gateway's CPU summed over its processes. */
async function measure(
  variants: readonly Variant[],
  options: { rounds: number; clients: number; seconds: number; request: ReturnType<typeof graphqlRequest> & { path: string } },
  check: (status: number, body: string) => string | null,
  simulator: SimulatorProcess,
  progress: (message: string) => void,
  title: string,
  extraPids: number[] = [],
) {
  const segments = await alternate(variants, options.rounds, async (v, round) => {
    progress(`${title}: ${v.label}, round ${round + 1}/${options.rounds}`);
    await simulator.reset();
    const result = await closedLoop({
      origin: v.gateway.origin,
      clients: options.clients,
      durationMs: (options.seconds * 1000) / options.rounds,
      next: () => options.request,
      check,
      pids: [...v.gateway.pids, simulator.child.pid, ...extraPids],
    });
    return { result, upstream: (await simulator.stats()).total };
  });
  return segments.map((runs, i) => {
    const merged = mergeLoad(runs.map((r) => r.result));
    const gatewayPids = variants[i]?.gateway.pids.length ?? 1;
    return {
      rounds: runs.map((r) => r.result),
      result: merged,
      spread: rateSpread(runs.map((r) => r.result)),
      upstream: runs.reduce((s, r) => s + r.upstream, 0),
      gatewayCpu: sum(merged.serverCpu.slice(0, gatewayPids)),
      simulatorCpu: merged.serverCpu[gatewayPids] ?? null,
      extraCpu: merged.serverCpu.slice(gatewayPids + 1),
    };
  });
}

async function warmUp(
  variants: readonly Variant[],
  request: { path: string } & ReturnType<typeof graphqlRequest>,
  ms: number,
  clients: number,
) {
  for (const v of variants) await closedLoop({ origin: v.gateway.origin, clients, durationMs: ms, next: () => request, check: plainCheck });
}

async function workersReport(children: Children, options: BenchOptions, progress: (m: string) => void): Promise<Report> {
  const config: SimulatorConfig = { rooms: 20, participantsPerRoom: 4, latencyMs: 0 };
  const simulator = await startSimulator(children, config);
  const redis = await startRedisServer(children);
  // One after another: seven Node processes compiling at once on a shared machine start slowly.
  const variants: Variant[] = [];
  for (const [label, name, settings] of [
    ['`WORKERS=1`', 'gateway-workers-1', DASHBOARD_SETTINGS],
    ['`WORKERS=2`', 'gateway-workers-2', { ...DASHBOARD_SETTINGS, WORKERS: '2' }],
    ['`WORKERS=2`, `REDIS_URL` set', 'gateway-workers-2-redis', { ...DASHBOARD_SETTINGS, WORKERS: '2', REDIS_URL: redis.url }],
  ] as const) {
    progress(`scale: starting ${name}`);
    variants.push({ label, gateway: await startGateway(children, name, simulator.url, settings) });
  }
  const request = { path: '/graphql', ...graphqlRequest(DASHBOARD, { id: 'exp_movie01' }) };
  const warmUpMs = options.quick ? 500 : 2_000;
  progress(`scale: warming up the dashboards for ${warmUpMs} ms each`);
  await warmUp(variants, request, warmUpMs, DASHBOARD_CLIENTS);
  const measured = await measure(
    variants,
    { rounds: ROUNDS, clients: DASHBOARD_CLIENTS, seconds: options.seconds, request },
    dashboardCheck,
    simulator,
    progress,
    'scale (dashboards)',
    [redis.child.pid],
  );
  const reference = measured[0]?.rounds ?? [];
  const rows = variants.map((v, i) => {
    const m = measured[i];
    if (m === undefined) return [];
    return [
      v.label,
      String(v.gateway.pids.length === 1 ? 1 : `1 + ${v.gateway.pids.length - 1}`),
      num(m.result.rate),
      m.spread,
      i === 0 ? 'reference' : ratioRange(pairedRatio(m.rounds, reference)),
      num(m.upstream / m.result.operations),
      ms(p(m.result, 50)),
      ms(p(m.result, 99)),
      errorsText(m.result),
      pct(m.gatewayCpu),
      pct(m.simulatorCpu),
      i === 2 ? pct(m.extraCpu[0] ?? null) : '–',
      pct(m.result.clientCpu),
    ];
  });
  return {
    title: 'Scale: 20×4 dashboards per second with WORKERS=2, cache off',
    setup: [
      `The dashboard query of the throughput table on \`exp_movie01\`; simulator (its own process): ${describeData(config)}.`,
      `Gateways: \`npm start\` processes with ${settingsText(DASHBOARD_SETTINGS)}; \`WORKERS=2\` is a primary and two workers on one port; the third also shares its state through a redis-server of its own (with the cache off and the quota guard off, that is the Retry-After check of every upstream request). ` +
        `${DASHBOARD_CLIENTS} closed-loop clients over keep-alive connections, from the bench process, ${options.seconds} s per variant in ${ROUNDS} alternating rounds, after ${warmUpMs / 1000} s of warm-up each.`,
      `The machine has ${cpus().length} cores: the gateway's processes, the simulator, Redis and the clients all share them.`,
    ],
    table: markdownTable(
      [
        'gateway',
        'processes',
        'dashboards/s',
        'per round',
        'vs WORKERS=1',
        'upstream requests per dashboard',
        'p50 ms',
        'p99 ms',
        'errors',
        'gateway CPU',
        'simulator CPU',
        'Redis CPU',
        'clients CPU',
      ],
      rows,
    ),
    notes: [
      'Vs: the median of the ratios of each round’s rate to `WORKERS=1`’s in the same round, with the lowest and highest. ' +
        'Gateway CPU: the primary and its workers together (100% = one core). Upstream requests: the simulator’s count (coalescing is per process, so two workers may each send what one would have sent once).',
    ],
  };
}

async function redisCostReport(children: Children, options: BenchOptions, progress: (m: string) => void): Promise<Report> {
  const config: SimulatorConfig = { rooms: 4, participantsPerRoom: 3, latencyMs: 0 };
  const simulator = await startSimulator(children, config);
  const redis = await startRedisServer(children);
  const variants: Variant[] = await Promise.all([
    startGateway(children, 'gateway-memory', simulator.url, CACHED_SETTINGS).then((gateway) => ({ label: 'in memory', gateway })),
    startGateway(children, 'gateway-redis', simulator.url, { ...CACHED_SETTINGS, REDIS_URL: redis.url }).then((gateway) => ({
      label: '`REDIS_URL` set',
      gateway,
    })),
  ]);
  const request = { path: '/graphql', ...graphqlRequest(TINY) };
  for (const v of variants) {
    const reply = await send(`${v.gateway.origin}/graphql`, request);
    if (plainCheck(reply.status, reply.text) !== null) throw new Error(`${v.label}: ${reply.status} ${reply.text.slice(0, 300)}`);
  }
  const warmUpMs = options.quick ? 500 : 2_000;
  progress(`scale: warming up the small query for ${warmUpMs} ms each`);
  await warmUp(variants, request, warmUpMs, SMALL_CLIENTS);
  const measured = await measure(
    variants,
    { rounds: SMALL_ROUNDS, clients: SMALL_CLIENTS, seconds: options.seconds, request },
    plainCheck,
    simulator,
    progress,
    'scale (small, cached)',
    [redis.child.pid],
  );
  const memory = measured[0];
  const rows = variants.map((v, i) => {
    const m = measured[i];
    if (m === undefined || memory === undefined) return [];
    // Time per query relative to in memory: the inverse of the rate ratio, round by round.
    const cost = pairedRatio(memory.rounds, m.rounds);
    return [
      v.label,
      num(m.result.rate),
      m.spread,
      i === 0 ? 'reference' : ratioRange(cost),
      ms(p(m.result, 50)),
      ms(p(m.result, 99)),
      i === 0 ? 'reference' : `${(p(m.result, 50) / p(memory.result, 50)).toFixed(2)}×`,
      errorsText(m.result),
      String(m.upstream),
      pct(m.gatewayCpu),
      i === 1 ? pct(m.extraCpu[0] ?? null) : '–',
      pct(m.result.clientCpu),
    ];
  });
  return {
    title: 'Scale: a small cached query with Redis against in memory',
    setup: [
      `${code(TINY)} answered from the cache (${settingsText(CACHED_SETTINGS)}), otherwise the defaults (docs/configuration.md) (\`LOG_LEVEL=info\` to a file, quota guard on), one gateway process each; ` +
        `with \`REDIS_URL\` each answer costs one round trip to a redis-server of its own on this machine (the key’s cache generation; the body stays in the process’s memory). Upstream: the simulator (${describeData(config)}).`,
      `${SMALL_CLIENTS} closed-loop clients over keep-alive connections from the bench process; ${options.seconds} s per variant in ${SMALL_ROUNDS} alternating rounds, after ${warmUpMs / 1000} s of warm-up each.`,
    ],
    table: markdownTable(
      [
        'cache',
        'requests/s',
        'per round',
        'time per query vs in memory',
        'p50 ms',
        'p99 ms',
        'p50 vs in memory',
        'errors',
        'upstream requests',
        'gateway CPU',
        'Redis CPU',
        'clients CPU',
      ],
      rows,
    ),
    notes: [
      'Time per query vs in memory: the median over rounds of the in-memory rate divided by this variant’s rate in the same round (closed loop, so time per query), with the lowest and highest. ' +
        'Upstream requests: what the simulator served during the measured rounds (0: every query came from the cache).',
    ],
  };
}

export const scale: Scenario = {
  name: 'scale',
  summary: 'WORKERS=2 against WORKERS=1 (20×4 dashboards/s, cache off), and a small cached query with REDIS_URL against in memory',
  async run({ children, options, progress }) {
    const reports: Report[] = [await workersReport(children, options, progress)];
    await children.stopAll();
    reports.push(await redisCostReport(children, options, progress));
    return reports;
  },
};
