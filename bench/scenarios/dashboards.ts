import { isDeepStrictEqual } from 'node:util';
import { DASHBOARD } from '../../test/helpers/dashboard.ts';
import { code, markdownTable, median, ms, ratio, settingsText } from '../lib/format.ts';
import { KEYS, timedGraphql, type GraphqlAnswer } from '../lib/http.ts';
import { alternate } from '../lib/load.ts';
import type { Report, Scenario } from '../lib/scenario.ts';
import { EVENTS_PER_PARTICIPANT, startGateway, startSimulator, type SimulatorConfig } from '../lib/stack.ts';
import { naiveDashboard, recordCount } from '../naive-client.ts';

const LATENCY_MS = 20;
const EXPERIMENT = 'exp_movie01';
/** Unmeasured runs of each gateway first, so that the measured ones are not its first (JIT, connections). */
const WARM_UP_RUNS = 3;

/** Cache off so that every run is cold; no quota guard and a budget the naive plans fit in (50×8 needs 852). */
export const DASHBOARD_SETTINGS = { CACHE_TTL_MS: '0', UPSTREAM_QUOTA_GUARD: 'off', UPSTREAM_BUDGET: '10000' };

type Variant = 'on' | 'off' | 'naive';
interface Run {
  ms: number;
  /** Requests the simulator served. */
  requests: number;
  /** What the gateway reported in `extensions.upstream.requests` (NaN for the naive client). */
  ownCount: number;
}

/** "7", or "7 (6–8)" when runs differ. */
const counted = (xs: readonly number[]): string => {
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return lo === hi ? String(lo) : `${median(xs)} (${lo}–${hi})`;
};

function completeData(variant: string, answer: GraphqlAnswer, status: number): unknown {
  if (status !== 200 || answer.errors !== undefined) {
    throw new Error(`dashboard (${variant}) failed: HTTP ${status} ${JSON.stringify(answer.errors ?? null).slice(0, 300)}`);
  }
  return answer.data;
}

export const dashboards: Scenario = {
  name: 'dashboards',
  summary: 'cold dashboards at 20 ms upstream latency: planner on vs PLANNER=off vs a naive sequential REST client',
  async run({ children, options, progress }) {
    const sizes = options.quick
      ? [
          { rooms: 2, participants: 2, runs: 1 },
          { rooms: 20, participants: 4, runs: 1 },
        ]
      : [
          { rooms: 2, participants: 2, runs: 9 },
          { rooms: 20, participants: 4, runs: 5 },
          { rooms: 50, participants: 8, runs: 3 },
        ];
    const rows: string[][] = [];
    for (const size of sizes) {
      const label = `${size.rooms}×${size.participants}`;
      progress(`dashboards ${label}: starting the simulator and two gateways`);
      const config: SimulatorConfig = { rooms: size.rooms, participantsPerRoom: size.participants, latencyMs: LATENCY_MS };
      const simulator = await startSimulator(children, config);
      const [on, off] = await Promise.all([
        startGateway(children, `gateway-${label}-planner-on`, simulator.url, DASHBOARD_SETTINGS),
        startGateway(children, `gateway-${label}-planner-off`, simulator.url, { ...DASHBOARD_SETTINGS, PLANNER: 'off' }),
      ]);
      const origins = { on: on.origin, off: off.origin };

      // Warm-up (not measured), and the check that both gateways answer the same dashboard (the naive
      // client's is checked by test/bench-naive-client.test.ts).
      const vars = { id: EXPERIMENT };
      const warmOn = await timedGraphql(on.origin, DASHBOARD, vars);
      const warmOff = await timedGraphql(off.origin, DASHBOARD, vars);
      for (let i = 1; i < WARM_UP_RUNS; i++)
        await Promise.all([timedGraphql(on.origin, DASHBOARD, vars), timedGraphql(off.origin, DASHBOARD, vars)]);
      if (
        !isDeepStrictEqual(
          completeData('planner on', warmOn.answer, warmOn.status),
          completeData('planner off', warmOff.answer, warmOff.status),
        )
      ) {
        throw new Error(`dashboard ${label}: planner on and off answered different data`);
      }

      let records = 0;
      const results = await alternate<Variant, Run>(['on', 'off', 'naive'], size.runs, async (variant, round) => {
        progress(`dashboards ${label}: run ${round + 1}/${size.runs}, ${variant === 'naive' ? 'naive REST client' : `planner ${variant}`}`);
        await simulator.reset();
        let elapsed: number;
        let ownCount = Number.NaN;
        if (variant === 'naive') {
          const started = performance.now();
          const naive = await naiveDashboard(simulator.url, EXPERIMENT, KEYS.full);
          elapsed = performance.now() - started;
          records = recordCount(naive);
        } else {
          const run = await timedGraphql(origins[variant], DASHBOARD, vars);
          completeData(`planner ${variant}`, run.answer, run.status);
          elapsed = run.ms;
          ownCount = run.answer.extensions?.upstream?.requests ?? Number.NaN;
        }
        return { ms: elapsed, requests: (await simulator.stats()).total, ownCount };
      });
      const [runsOn = [], runsOff = [], runsNaive = []] = results;
      const msOf = (runs: Run[]): number => median(runs.map((r) => r.ms));
      const requestsOf = (runs: Run[]): number => median(runs.map((r) => r.requests));
      rows.push([
        label,
        records.toLocaleString('en-US'),
        counted(runsOn.map((r) => r.requests)),
        counted(runsOff.map((r) => r.requests)),
        counted(runsNaive.map((r) => r.requests)),
        `${ratio(requestsOf(runsNaive) / requestsOf(runsOn))} fewer`,
        ms(msOf(runsOn)),
        ms(msOf(runsOff)),
        ms(msOf(runsNaive)),
        `${ratio(msOf(runsOff) / msOf(runsOn))} faster`,
        `${ratio(msOf(runsNaive) / msOf(runsOn))} faster`,
        `${counted(runsOn.map((r) => r.ownCount))} / ${counted(runsOff.map((r) => r.ownCount))}`,
      ]);
      await Promise.all([on.child.stop(), off.child.stop(), simulator.child.stop()]);
    }
    const report: Report = {
      title: 'Dashboards, cold: the planner against the naive references',
      setup: [
        `The dashboard query of \`test/helpers/dashboard.ts\` (experiment → rooms → participants → events + sparse ratings) on \`${EXPERIMENT}\`.`,
        `Simulator (its own process): the first column's rooms × participants, ${EVENTS_PER_PARTICIPANT} events per participant, ${LATENCY_MS} ms latency per request, rate limits off.`,
        `Gateways: planner on (the default) and \`PLANNER=off\` (the per-parent reference), each its own process; settings changed from the defaults in both: ${settingsText(DASHBOARD_SETTINGS)}. ` +
          'Naive REST: the per-parent walk a script does (experiment, rooms, each room’s participants, each participant’s events and sparse ratings, following `nextOffset`), one request at a time over one keep-alive connection, from the bench process.',
        `Upstream requests as the simulator counted them (\`GET /_admin/stats\`, reset before each run); wall time from sending to the parsed answer; medians of ${sizes.map((s) => `${s.runs} (${s.rooms}×${s.participants})`).join(', ')} alternating runs (on, off, naive, on, …) after ${WARM_UP_RUNS} unmeasured runs of each gateway.`,
      ],
      table: markdownTable(
        [
          'rooms × participants',
          'records',
          'requests: planner on',
          'planner off',
          'naive REST',
          'naive ÷ on',
          'ms: planner on',
          'planner off',
          'naive REST',
          'off ÷ on',
          'naive ÷ on',
          `gateway's own count (on / off)`,
        ],
        rows,
      ),
      notes: [
        `Records: rooms + participants + events + sparse ratings in the answer. "gateway's own count" is ${code('extensions.upstream.requests')}, a cross-check of the simulator's count.`,
      ],
    };
    return [report];
  },
};
