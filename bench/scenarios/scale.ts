import { cpus } from 'node:os';
import { Client, request } from 'undici';
import { DASHBOARD } from '../../test/helpers/dashboard.ts';
import { code, markdownTable, median, ms, num, pct, ratioRange, settingsText } from '../lib/format.ts';
import { graphqlRequest, KEYS, send } from '../lib/http.ts';
import { alternate, closedLoop, errorsText, mergeLoad, p, pairedRatio, rateSpread, type LoadResult } from '../lib/load.ts';
import { parseMetrics } from '../lib/metrics.ts';
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
/** Dashboards each gateway process answers before the measured rounds (a process is warm after 150–300). */
const WARM_UP_DASHBOARDS = 300;
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

/** What one process of a gateway counted in /metrics (its `worker` label; '' with WORKERS=1). */
interface ProcessCounts {
  /** Event-loop seconds busy and idle (`hsgql_event_loop_seconds_total`). */
  active: number;
  idle: number;
  /** TCP connections it accepted. */
  connections: number;
  /** Operations answered without errors. */
  answered: number;
  /** Upstream requests it sent. */
  upstream: number;
}

const zero = (): ProcessCounts => ({ active: 0, idle: 0, connections: 0, answered: 0, upstream: 0 });

/**
 * The gateway's /metrics over a connection of its own, closed after: each process's counts, and which
 * worker answered (with WORKERS > 1 every worker's series are there, labelled; that worker accepted
 * this scrape's connection).
 */
async function processCounts(origin: string): Promise<{ counts: Map<string, ProcessCounts>; answeredBy: string }> {
  const client = new Client(origin);
  try {
    const res = await request(`${origin}/metrics`, { dispatcher: client });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`GET ${origin}/metrics: HTTP ${res.statusCode}`);
    const counts = new Map<string, ProcessCounts>();
    for (const [series, value] of parseMetrics(text)) {
      const worker = /worker="([^"]*)"/.exec(series)?.[1] ?? '';
      const c = counts.get(worker) ?? zero();
      counts.set(worker, c);
      if (series.startsWith('hsgql_event_loop_seconds_total{')) {
        if (series.includes('state="active"')) c.active += value;
        else c.idle += value;
      } else if (series === 'hsgql_http_connections_total' || series.startsWith('hsgql_http_connections_total{')) c.connections += value;
      else if (series.startsWith('hsgql_operations_total{') && series.includes('outcome="ok"')) c.answered += value;
      else if (series.startsWith('hsgql_upstream_requests_total{')) c.upstream += value;
    }
    const header = res.headers['x-worker'];
    return { counts, answeredBy: typeof header === 'string' ? header : '' };
  } finally {
    await client.close();
  }
}

/** `after` − `before` per process, without the connection the scrape of `after` itself opened. */
function countsBetween(
  before: Map<string, ProcessCounts>,
  after: { counts: Map<string, ProcessCounts>; answeredBy: string },
): Map<string, ProcessCounts> {
  const out = new Map<string, ProcessCounts>();
  for (const [worker, a] of after.counts) {
    const b = before.get(worker) ?? zero();
    out.set(worker, {
      active: a.active - b.active,
      idle: a.idle - b.idle,
      connections: a.connections - b.connections - (worker === after.answeredBy ? 1 : 0),
      answered: a.answered - b.answered,
      upstream: a.upstream - b.upstream,
    });
  }
  return out;
}

/** One row of the workers table: one gateway, or several side by side sharing the clients evenly. */
interface ScaleVariant {
  label: string;
  clients: number;
  gateways: GatewayProcess[];
  /** Every client with the same key (identical reads in flight are shared), or each with a key of its own (none are). */
  keys: 'shared' | 'own';
}

interface ScaleRound {
  result: LoadResult;
  /** Requests the simulator served. */
  upstream: number;
  /** Per gateway, per process (worker id, '' for a single process). */
  counts: Map<string, ProcessCounts>[];
}

const pidsOf = (v: ScaleVariant): number[] => v.gateways.flatMap((g) => g.pids);

/** Runs that ran at the same time as one: operations and rates add up; CPU was measured by the first (every pid). */
function together(results: readonly LoadResult[]): LoadResult {
  const [first] = results;
  if (!first) throw new Error('scale: no results');
  const operations = results.reduce((s, r) => s + r.operations, 0);
  const errors = new Map<string, number>();
  for (const r of results) for (const [k, n] of r.errors) errors.set(k, (errors.get(k) ?? 0) + n);
  return {
    ...first,
    operations,
    rate: results.reduce((s, r) => s + r.rate, 0),
    errors,
    errorCount: results.reduce((s, r) => s + r.errorCount, 0),
    latencies: results.flatMap((r) => r.latencies).sort((a, b) => a - b),
  };
}

async function workersReport(children: Children, options: BenchOptions, progress: (m: string) => void): Promise<Report[]> {
  const config: SimulatorConfig = { rooms: 20, participantsPerRoom: 4, latencyMs: 0, extraKeys: DASHBOARD_CLIENTS };
  const simulator = await startSimulator(children, config);
  const redis = await startRedisServer(children);
  // One after another: eight Node processes compiling at once on a shared machine start slowly.
  const start = (name: string, settings: Record<string, string>): Promise<GatewayProcess> => {
    progress(`scale: starting ${name}`);
    return startGateway(children, name, simulator.url, settings);
  };
  const one = await start('gateway-workers-1', DASHBOARD_SETTINGS);
  const two = await start('gateway-workers-2', { ...DASHBOARD_SETTINGS, WORKERS: '2' });
  const twoRedis = await start('gateway-workers-2-redis', { ...DASHBOARD_SETTINGS, WORKERS: '2', REDIS_URL: redis.url });
  const another = await start('gateway-workers-1-another', DASHBOARD_SETTINGS);
  const half = DASHBOARD_CLIENTS / 2;
  const variants: ScaleVariant[] = [
    { label: '`WORKERS=1`', clients: DASHBOARD_CLIENTS, gateways: [one], keys: 'shared' },
    // The concurrency each of two workers sees when the connections are split evenly.
    { label: '`WORKERS=1`', clients: half, gateways: [one], keys: 'shared' },
    // Two busy processes without node:cluster: what the machine charges for the second.
    { label: 'two `WORKERS=1` gateways at once', clients: DASHBOARD_CLIENTS, gateways: [one, another], keys: 'shared' },
    { label: '`WORKERS=2`', clients: DASHBOARD_CLIENTS, gateways: [two], keys: 'shared' },
    { label: '`WORKERS=2`, `REDIS_URL` set', clients: DASHBOARD_CLIENTS, gateways: [twoRedis], keys: 'shared' },
    // The same without shared reads: what a process costs apart from how many reads its clients share.
    { label: '`WORKERS=1`', clients: DASHBOARD_CLIENTS, gateways: [one], keys: 'own' },
    { label: 'two `WORKERS=1` gateways at once', clients: DASHBOARD_CLIENTS, gateways: [one, another], keys: 'own' },
    { label: '`WORKERS=2`', clients: DASHBOARD_CLIENTS, gateways: [two], keys: 'own' },
  ];
  const request = { path: '/graphql', ...graphqlRequest(DASHBOARD, { id: 'exp_movie01' }) };
  /** Client `n`'s key in a workload of a key per client (the simulator's `--extra-keys`), numbered across gateways. */
  const ownKeyRequests = Array.from({ length: DASHBOARD_CLIENTS }, (_, n) => ({
    path: '/graphql',
    ...graphqlRequest(DASHBOARD, { id: 'exp_movie01' }, `hst_test_extra_${n + 1}`),
  }));
  // Each process compiles and tunes its own code: a worker that has answered half as many dashboards
  // spends more CPU on each for a while, so every process answers as many before measuring starts.
  const warmUpEach = options.quick ? 20 : WARM_UP_DASHBOARDS;
  for (const gateway of [one, another, two, twoRedis]) {
    progress(`scale: warming up ${gateway.child.name} until each of its processes answered ${warmUpEach} dashboards`);
    const until = performance.now() + 120_000;
    for (;;) {
      const answered = [...(await processCounts(gateway.origin)).counts.values()].map((c) => c.answered);
      if (Math.min(...answered) >= warmUpEach || performance.now() > until) break;
      await closedLoop({ origin: gateway.origin, clients: DASHBOARD_CLIENTS, durationMs: 1_000, next: () => request, check: plainCheck });
    }
  }
  const rounds = await alternate(variants, ROUNDS, async (v, round): Promise<ScaleRound> => {
    progress(`scale (dashboards): ${v.label} at ${v.clients} clients, round ${round + 1}/${ROUNDS}`);
    await simulator.reset();
    const before = await Promise.all(v.gateways.map((g) => processCounts(g.origin)));
    const clients = v.clients / v.gateways.length;
    const results = await Promise.all(
      v.gateways.map((g, i) =>
        closedLoop({
          origin: g.origin,
          clients,
          durationMs: (options.seconds * 1000) / ROUNDS,
          next: v.keys === 'own' ? (client) => ownKeyRequests[i * clients + client] ?? request : () => request,
          check: dashboardCheck,
          // The first run measures every process's CPU over the same interval.
          pids: i === 0 ? [...pidsOf(v), simulator.child.pid, redis.child.pid] : [],
        }),
      ),
    );
    const after = await Promise.all(v.gateways.map((g) => processCounts(g.origin)));
    const counts = v.gateways.map((_, i) =>
      countsBetween(before[i]?.counts ?? new Map(), after[i] ?? { counts: new Map(), answeredBy: '' }),
    );
    return { result: together(results), upstream: (await simulator.stats()).total, counts };
  });
  /** Gateway CPU ms per dashboard in one round: its processes' CPU share (100% = one core) over the round's rate. */
  const cpuPerDashboard = (r: LoadResult, processes: number): number => {
    const share = sum(r.serverCpu.slice(0, processes));
    return share === null ? Number.NaN : (10 * share) / r.rate;
  };
  const summaries = variants.map((v, i) => {
    const runs = rounds[i] ?? [];
    const merged = mergeLoad(runs.map((r) => r.result));
    const processes = pidsOf(v).length;
    return {
      v,
      runs,
      merged,
      processes,
      cpuMs: runs.map((r) => cpuPerDashboard(r.result, processes)),
      gatewayCpu: sum(merged.serverCpu.slice(0, processes)),
      upstream: runs.reduce((s, r) => s + r.upstream, 0),
    };
  });
  const shared = summaries.filter((x) => x.v.keys === 'shared');
  const own = summaries.filter((x) => x.v.keys === 'own');
  const [first, perProcess] = shared;
  const [ownFirst] = own;
  if (!first || !perProcess || !ownFirst) throw new Error('scale: no rounds');
  const pairedCpu = (a: readonly number[], b: readonly number[]) => {
    const ratios = a.map((x, i) => x / (b[i] ?? Number.NaN)).filter((x) => Number.isFinite(x));
    return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
  };
  const processesText = (v: ScaleVariant): string =>
    v.gateways.map((g) => (g.pids.length === 1 ? '1' : `1 + ${g.pids.length - 1}`)).join(' and ');
  type Summary = (typeof summaries)[number];
  /** The cells every row has up to its rate against `reference`, then its CPU per dashboard against it. */
  const leading = (x: Summary, reference: Summary): string[] => [
    x.v.label,
    x.v.gateways.length === 1 ? String(x.v.clients) : x.v.gateways.map(() => String(x.v.clients / x.v.gateways.length)).join(' + '),
    processesText(x.v),
    num(x.merged.rate),
    rateSpread(x.runs.map((r) => r.result)),
    x === reference
      ? 'reference'
      : ratioRange(
          pairedRatio(
            x.runs.map((r) => r.result),
            reference.runs.map((r) => r.result),
          ),
        ),
    ms(median(x.cpuMs)),
    x === reference ? 'reference' : ratioRange(pairedCpu(x.cpuMs, reference.cpuMs)),
  ];
  const trailing = (x: Summary): string[] => [
    num(x.upstream / x.merged.operations),
    ms(p(x.merged, 50)),
    ms(p(x.merged, 99)),
    errorsText(x.merged),
    pct(x.gatewayCpu),
    pct(x.merged.serverCpu[x.processes] ?? null),
  ];
  /** The headers of `leading`'s and `trailing`'s cells. */
  const leadingHeaders = [
    'gateway',
    'clients',
    'processes',
    'dashboards/s',
    'per round',
    `vs WORKERS=1, ${DASHBOARD_CLIENTS} clients`,
    'gateway CPU ms per dashboard',
    `vs WORKERS=1, ${DASHBOARD_CLIENTS} clients`,
  ];
  const trailingHeaders = ['upstream requests per dashboard', 'p50 ms', 'p99 ms', 'errors', 'gateway CPU', 'simulator CPU'];
  const rows = shared.map((x, i) => [
    ...leading(x, first),
    i === 1 ? 'reference' : i === 0 ? '–' : ratioRange(pairedCpu(x.cpuMs, perProcess.cpuMs)),
    ...trailing(x),
    x.v.gateways.some((g) => g.settings.REDIS_URL !== undefined) ? pct(x.merged.serverCpu[x.processes + 1] ?? null) : '–',
    pct(x.merged.clientCpu),
  ]);
  const ownRows = own.map((x) => [...leading(x, ownFirst), ...trailing(x), pct(x.merged.clientCpu)]);
  // Per process: a primary (CPU only: it serves no request), and each worker or single process.
  const processRows: string[][] = [];
  for (const { v, runs, merged } of summaries) {
    let label = `${v.label}, ${v.clients} clients${v.keys === 'own' ? ', a key each' : ''}`;
    const row = (cells: string[]): void => {
      processRows.push([label, ...cells]);
      label = '';
    };
    let column = 0;
    for (const [g, gateway] of v.gateways.entries()) {
      const name = v.gateways.length === 1 ? '' : `gateway ${g + 1}, `;
      if (gateway.workers.length > 0) row([`${name}primary`, pct(merged.serverCpu[column++] ?? null), '–', '–', '–', '–', '–']);
      const members = gateway.workers.length > 0 ? gateway.workers : [{ id: '', pid: gateway.pids[0] ?? 0 }];
      for (const member of members) {
        const share = merged.serverCpu[column++] ?? null;
        const counts = runs.map((r) => r.counts[g]?.get(member.id) ?? zero());
        const total = counts.reduce(
          (a, c) => ({
            active: a.active + c.active,
            idle: a.idle + c.idle,
            connections: a.connections + c.connections,
            answered: a.answered + c.answered,
            upstream: a.upstream + c.upstream,
          }),
          zero(),
        );
        row([
          member.id === '' ? (name === '' ? 'the gateway' : name.slice(0, -2)) : `${name}worker ${member.id}`,
          pct(share),
          pct((100 * total.active) / (total.active + total.idle)),
          counts.map((c) => String(c.connections)).join(', '),
          `${num(total.answered)} (${pct((100 * total.answered) / merged.operations)})`,
          share === null ? 'n/a' : ms((10 * share * merged.seconds) / total.answered),
          num(total.upstream / total.answered),
        ]);
      }
    }
  }
  const setup = [
    `The dashboard query of the throughput table on \`exp_movie01\`; simulator (its own process): ${describeData(config)}.`,
    `Gateways: \`npm start\` processes with ${settingsText(DASHBOARD_SETTINGS)}; \`WORKERS=2\` is a primary and two workers on one port; the third also shares its state through a redis-server of its own (with the cache off and the quota guard off, that is the Retry-After check of every upstream request). ` +
      `Closed-loop clients over keep-alive connections (one each), from the bench process, ${options.seconds} s per variant in ${ROUNDS} alternating rounds, once each process of each gateway has answered ${warmUpEach} dashboards. ` +
      `\`WORKERS=1\` also at ${DASHBOARD_CLIENTS / 2} clients, the concurrency each of two workers sees when the connections are split evenly, and as two gateways of one process each (ports of their own), ${DASHBOARD_CLIENTS / 2} clients on each at the same time: two busy processes without node:cluster.`,
    `The machine has ${cpus().length} cores: the gateway's processes, the simulator, Redis and the clients all share them.`,
  ];
  return [
    {
      title: 'Scale: 20×4 dashboards per second with WORKERS=2, cache off',
      setup,
      table: markdownTable([...leadingHeaders, `vs WORKERS=1, ${half} clients`, ...trailingHeaders, 'Redis CPU', 'clients CPU'], rows),
      notes: [
        'Vs: the median of the ratios of each round’s figure to that row’s in the same round, with the lowest and highest; ' +
          `against \`WORKERS=1\` at ${half} clients, each process of the row sees the same concurrency (so as many identical reads in flight to coalesce) as the single process. ` +
          'Gateway CPU: the primary and its workers together, from /proc (100% = one core); per dashboard: that over the dashboards answered, round by round (median). ' +
          'Upstream requests: the simulator’s count (identical reads in flight are coalesced within a process, not across processes).',
      ],
    },
    {
      title: 'Scale: the same with a key per client (no reads shared)',
      setup: [
        `The dashboards of the table above, measured in the same alternating rounds, but each client sends its own key (the simulator's \`--extra-keys ${DASHBOARD_CLIENTS}\`): the gateway shares upstream reads only between operations of one key, so none are shared here, with one process or two. ` +
          `What a process costs per dashboard apart from how many reads its clients share: the figure that predicts what more cores give to many researchers at once.`,
      ],
      table: markdownTable([...leadingHeaders, ...trailingHeaders, 'clients CPU'], ownRows),
      notes: [
        'Vs, CPU and upstream requests as in the table above (reference: `WORKERS=1` with a key per client). No two clients share a read: each dashboard’s upstream requests are its own, with one process or two.',
      ],
    },
    {
      title: 'Scale: each process of the gateway under the same load',
      setup: [
        'The rounds of the table above, per process: CPU from /proc/<pid>/stat; the rest from the gateway’s /metrics, read before and after each round over a connection of its own (left out of the counts).',
      ],
      table: markdownTable(
        [
          'gateway',
          'process',
          'CPU',
          'event loop busy',
          'connections per round',
          'dashboards (share)',
          'CPU ms per dashboard',
          'upstream requests per dashboard',
        ],
        processRows,
      ),
      notes: [
        'Event loop busy: `hsgql_event_loop_seconds_total{state="active"}` over active + idle (`performance.eventLoopUtilization()`): time the loop spent running callbacks, whether or not it had a core meanwhile, so busy above CPU is time spent waiting for a core. ' +
          'Connections per round: `hsgql_http_connections_total`, how many of the clients’ connections the process accepted in each round (the primary hands each new one to a worker).',
      ],
    },
  ];
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

/**
 * What a second busy process costs on this machine, with no gateway: the parse floor of one dashboard
 * (`JSON.parse` of the upstream bodies it reads) in one process alone, and in two processes at once.
 */
async function machineReport(children: Children, options: BenchOptions, progress: (m: string) => void): Promise<Report> {
  const config: SimulatorConfig = { rooms: 20, participantsPerRoom: 4, latencyMs: 0, extraKeys: DASHBOARD_CLIENTS };
  const simulator = await startSimulator(children, config);
  const gateway = await startGateway(children, 'gateway-probe', simulator.url, DASHBOARD_SETTINGS);
  await simulator.reset();
  const reply = await send(`${gateway.origin}/graphql`, graphqlRequest(DASHBOARD, { id: 'exp_movie01' }));
  const problem = dashboardCheck(reply.status, reply.text);
  if (problem) throw new Error(`scale: the dashboard did not answer completely (${problem})`);
  const urls = (await simulator.stats()).requests.map((r) => `${simulator.origin}${r.path}${r.query ? `?${r.query}` : ''}`);
  await gateway.child.stop();
  const windowMs = options.quick ? 1_000 : 2_500;
  const pairs = options.quick ? 1 : 3;
  // Two processes start up (slowly on a loaded machine); then windows alternate: the first alone, both.
  const t0 = Date.now() + 20_000;
  const windows = Array.from({ length: 2 * pairs }, (_, i): [number, number] => [
    t0 + i * (windowMs + 500),
    t0 + i * (windowMs + 500) + windowMs,
  ]);
  progress(
    `scale: the parse floor of one dashboard (${urls.length} bodies), alone and two processes at once, ${pairs} × ${windowMs / 1000} s each`,
  );
  const probe = async (name: string, own: [number, number][]) => {
    const child = children.spawnNode(name, ['--import', 'tsx', 'bench/servers/parse-loop.ts', KEYS.full, JSON.stringify(own), ...urls]);
    const [, json = '[]'] = await child.waitForOutput(/parse-loop (\[.*\])/, 20_000 + 2 * pairs * (windowMs + 500) + 30_000);
    return JSON.parse(json) as { rounds: number; cpuMs: number; lateMs: number }[];
  };
  const [a, b] = await Promise.all([
    probe('parse-loop-a', windows),
    probe(
      'parse-loop-b',
      windows.filter((_, i) => i % 2 === 1),
    ),
  ]);
  const late = Math.max(...[...a, ...b].map((w) => w.lateMs));
  const alone = a.filter((_, i) => i % 2 === 0).map((w) => w.cpuMs);
  const both = a.filter((_, i) => i % 2 === 1).map((w, i) => (w.cpuMs + (b[i]?.cpuMs ?? Number.NaN)) / 2);
  const ratios = both.map((x, i) => x / (alone[i] ?? Number.NaN));
  const range = { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
  return {
    title: 'Scale: what a second busy process costs on this machine',
    setup: [
      `The parse floor of one dashboard: \`JSON.parse\` of the ${urls.length} upstream bodies the dashboard of the table above reads (fetched from the simulator with the same key), over and over in a process of its own, ` +
        `${windowMs / 1000} s alone, then ${windowMs / 1000} s with a second such process doing the same, ${pairs} times. No gateway, no simulator or clients at work meanwhile.`,
    ],
    table: markdownTable(
      ['process', 'CPU ms per dashboard’s bodies parsed', 'per window', 'vs alone'],
      [
        ['alone', ms(median(alone)), alone.map(ms).join(', '), 'reference'],
        ['two at once', ms(median(both)), both.map(ms).join(', '), ratioRange(range)],
      ],
    ),
    notes: [
      'CPU of each process (`process.cpuUsage()`, user + system) over the rounds it completed in a window; two at once: the mean of the two processes. Vs alone: window by window (neighbours in time), the median with the lowest and highest. ' +
        `Above 1×, the same work costs each process more CPU when another busy process shares the machine (caches, memory bandwidth, or virtual cores sharing a physical one): the gateway’s workers pay it too.${late > 0 ? ` (A probe started up to ${ms(late)} ms late into its first window.)` : ''}`,
    ],
  };
}

export const scale: Scenario = {
  name: 'scale',
  summary: 'WORKERS=2 against WORKERS=1 (20×4 dashboards/s, cache off), and a small cached query with REDIS_URL against in memory',
  async run({ children, options, progress }) {
    const reports: Report[] = await workersReport(children, options, progress);
    await children.stopAll();
    reports.push(await machineReport(children, options, progress));
    await children.stopAll();
    reports.push(await redisCostReport(children, options, progress));
    return reports;
  },
};
