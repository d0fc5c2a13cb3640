import { DASHBOARD } from '../../test/helpers/dashboard.ts';
import { markdownTable, ms, num, pct, ratioRange, settingsText } from '../lib/format.ts';
import { graphqlRequest } from '../lib/http.ts';
import { alternate, closedLoop, errorsText, mergeLoad, p, pairedRatio, rateSpread, type LoadResult } from '../lib/load.ts';
import type { Scenario } from '../lib/scenario.ts';
import { describeData, startGateway, startSimulator, type SimulatorConfig } from '../lib/stack.ts';
import { DASHBOARD_SETTINGS } from './dashboards.ts';

const CLIENTS = 8;
const ROUNDS = 4;

/** A complete dashboard: HTTP 200, data, no errors (a substring test: parsing 400 KB answers would load the client). */
export function dashboardCheck(status: number, body: string): string | null {
  if (status !== 200) return `HTTP ${status}`;
  if (!body.startsWith('{"data":{"experiment":{')) return 'no data';
  return body.includes('"errors":[') ? 'GraphQL errors' : null;
}

export const throughput: Scenario = {
  name: 'throughput',
  summary: `20×4 dashboards/s, cache off, ${CLIENTS} clients, upstream latency 0: planner on vs PLANNER=off`,
  async run({ children, options, progress }) {
    const config: SimulatorConfig = { rooms: 20, participantsPerRoom: 4, latencyMs: 0 };
    const simulator = await startSimulator(children, config);
    const gateways = [
      startGateway(children, 'gateway-planner-on', simulator.url, DASHBOARD_SETTINGS).then((gateway) => ({ label: 'planner on', gateway })),
      startGateway(children, 'gateway-planner-off', simulator.url, { ...DASHBOARD_SETTINGS, PLANNER: 'off' }).then((gateway) => ({
        label: '`PLANNER=off`',
        gateway,
      })),
      // What compiled execution brings: the same gateway with Yoga's own executor.
      startGateway(children, 'gateway-jit-off', simulator.url, { ...DASHBOARD_SETTINGS, GRAPHQL_JIT: 'off' }).then((gateway) => ({
        label: 'planner on, `GRAPHQL_JIT=off`',
        gateway,
      })),
    ];
    const { baseline } = options;
    if (baseline) {
      gateways.push(
        startGateway(children, 'gateway-baseline', simulator.url, DASHBOARD_SETTINGS, baseline.checkout).then((gateway) => ({
          label: `${baseline.label}, planner on`,
          gateway,
        })),
      );
    }
    const variants = await Promise.all(gateways);
    const request = { path: '/graphql', ...graphqlRequest(DASHBOARD, { id: 'exp_movie01' }) };
    const warmUpMs = options.quick ? 500 : 2_000;
    for (const v of variants) {
      progress(`throughput: warming up ${v.label} for ${warmUpMs} ms`);
      await closedLoop({ origin: v.gateway.origin, clients: CLIENTS, durationMs: warmUpMs, next: () => request, check: dashboardCheck });
    }
    const segments = await alternate(variants, ROUNDS, async (v, round) => {
      progress(`throughput: ${v.label}, round ${round + 1}/${ROUNDS}`);
      await simulator.reset();
      const result = await closedLoop({
        origin: v.gateway.origin,
        clients: CLIENTS,
        durationMs: (options.seconds * 1000) / ROUNDS,
        next: () => request,
        check: dashboardCheck,
        pids: [v.gateway.child.pid, simulator.child.pid],
      });
      return { result, upstream: (await simulator.stats()).total };
    });
    const merged = segments.map((runs) => ({
      result: mergeLoad(runs.map((r) => r.result)),
      spread: rateSpread(runs.map((r) => r.result)),
      upstream: runs.reduce((s, r) => s + r.upstream, 0),
    }));
    const roundsOf = (i: number): LoadResult[] => segments[i]?.map((r) => r.result) ?? [];
    const versus = (i: number, reference: number): string =>
      i === reference ? 'reference' : ratioRange(pairedRatio(roundsOf(i), roundsOf(reference)));
    const rows = variants.map((v, i) => {
      const m = merged[i];
      if (m === undefined) return [];
      const { result } = m;
      return [
        v.label,
        num(result.rate),
        m.spread,
        versus(i, 1),
        ...(baseline ? [versus(i, variants.length - 1)] : []),
        num(m.upstream / result.operations),
        ms(p(result, 50)),
        ms(p(result, 99)),
        errorsText(result),
        pct(result.serverCpu[0] ?? null),
        pct(result.serverCpu[1] ?? null),
        pct(result.clientCpu),
      ];
    });
    return [
      {
        title: 'Throughput: 20×4 dashboards per second, cache off',
        setup: [
          `The dashboard query (as above) on \`exp_movie01\`; simulator (its own process): ${describeData(config)}.`,
          `One gateway process per variant; settings changed from the defaults: ${settingsText(DASHBOARD_SETTINGS)} (and \`PLANNER=off\` for the reference, \`GRAPHQL_JIT=off\` for Yoga's own executor${baseline ? `; the baseline is ${baseline.checkout} with the same settings` : ''}). ` +
            `${CLIENTS} closed-loop clients (each sends its next request when its answer has arrived) over keep-alive connections, from the bench process, ` +
            `${options.seconds} s per variant in ${ROUNDS} alternating rounds, after ${warmUpMs / 1000} s of warm-up each.`,
        ],
        table: markdownTable(
          [
            'gateway',
            'dashboards/s',
            'per round',
            'vs PLANNER=off',
            ...(baseline ? ['vs baseline'] : []),
            'upstream requests per dashboard',
            'p50 ms',
            'p99 ms',
            'errors',
            'gateway CPU',
            'simulator CPU',
            'clients CPU',
          ],
          rows,
        ),
        notes: [
          `Per round: the lowest and highest rate of the ${ROUNDS} rounds, how much the shared machine moved it. ` +
            'Vs: the median of the ratios of each round’s rate to the reference’s in the same round (neighbours in time), with the lowest and highest. ' +
            'Upstream requests from the simulator’s count: with the cache off, identical requests of concurrent operations still go upstream once (coalescing). ' +
            'Errors: answers that were not complete (HTTP 200, data, no errors). CPU: share of one core over the run (from /proc); the machine has ' +
            'as many cores as the header says, shared by the gateway, the simulator and the clients.',
        ],
      },
    ];
  },
};
