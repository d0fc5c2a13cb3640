import { code, markdownTable, ms, num, pct, pctRange, settingsText } from '../lib/format.ts';
import { graphqlRequest, send } from '../lib/http.ts';
import { alternate, closedLoop, errorsText, mergeLoad, p, pairedRatio, rateSpread } from '../lib/load.ts';
import type { Scenario } from '../lib/scenario.ts';
import { describeData, startGateway, startServer, startSimulator, type ServerProcess, type SimulatorConfig } from '../lib/stack.ts';

const HELLO = '{ hello }';
const TYPENAME = '{ __typename }';
const TINY = '{ experiment(id: "exp_movie01") { name } }';
/** Long enough that the tiny query is answered from the gateway's cache for the whole run. */
const CACHED_SETTINGS = { CACHE_TTL_MS: '3600000' };
/** The same without the per-operation log line, to tell what logging costs. */
const QUIET_SETTINGS = { ...CACHED_SETTINGS, LOG_LEVEL: 'warn' };

const CLIENTS = 8;
const ROUNDS = 10;

/** HTTP 200 without GraphQL errors. */
const plainCheck = (status: number, body: string): string | null =>
  status !== 200 ? `HTTP ${status}` : body.includes('"errors":[') ? 'GraphQL errors' : null;

export const smallQueries: Scenario = {
  name: 'small',
  summary: 'requests/s of tiny queries against the gateway as a share of a bare graphql-yoga hello-world (the ceiling)',
  async run({ children, options, progress }) {
    const config: SimulatorConfig = { rooms: 4, participantsPerRoom: 3, latencyMs: 0 };
    const simulator = await startSimulator(children, config);
    const { baseline } = options;
    const [hello, helloNoLimit, gateway, quiet, base] = await Promise.all([
      startServer(children, 'hello-world', 'bench/servers/hello-world.ts'),
      startServer(children, 'hello-world-no-body-limit', 'bench/servers/hello-world.ts', { bodyLimit: false }),
      startGateway(children, 'gateway', simulator.url, CACHED_SETTINGS),
      startGateway(children, 'gateway-log-warn', simulator.url, QUIET_SETTINGS),
      baseline ? startGateway(children, 'gateway-baseline', simulator.url, CACHED_SETTINGS, baseline.checkout) : null,
    ]);
    const gateways: [string, ServerProcess][] = [['gateway', gateway]];
    if (baseline && base) gateways.push([baseline.label, base]);
    const variants: { label: string; server: ServerProcess; query: string; upstream: boolean }[] = [
      { label: `hello-world ${code(HELLO)}`, server: hello, query: HELLO, upstream: false },
      { label: `hello-world ${code(HELLO)}, Yoga's body limit off`, server: helloNoLimit, query: HELLO, upstream: false },
      ...gateways.flatMap(([name, server]) => [
        { label: `${name} ${code(TYPENAME)}`, server, query: TYPENAME, upstream: true },
        { label: `${name} ${code(TINY)}, cached`, server, query: TINY, upstream: true },
      ]),
      { label: `gateway ${code(TINY)}, cached, ${code('LOG_LEVEL=warn')}`, server: quiet, query: TINY, upstream: true },
    ];
    // Every variant answers correctly before it is measured (and the tiny query's answer is cached).
    for (const v of variants) {
      const reply = await send(`${v.server.origin}/graphql`, graphqlRequest(v.query));
      if (plainCheck(reply.status, reply.text) !== null) throw new Error(`${v.label}: ${reply.status} ${reply.text.slice(0, 300)}`);
    }
    const warmUpMs = options.quick ? 500 : 2_000;
    const requestOf = (query: string) => ({ path: '/graphql', ...graphqlRequest(query) });
    for (const v of variants) {
      progress(`small: warming up ${v.label} for ${warmUpMs} ms`);
      const request = requestOf(v.query);
      await closedLoop({ origin: v.server.origin, clients: CLIENTS, durationMs: warmUpMs, next: () => request, check: plainCheck });
    }
    const segments = await alternate(variants, ROUNDS, async (v, round) => {
      progress(`small: ${v.label}, round ${round + 1}/${ROUNDS}`);
      await simulator.reset();
      const request = requestOf(v.query);
      const result = await closedLoop({
        origin: v.server.origin,
        clients: CLIENTS,
        durationMs: (options.seconds * 1000) / ROUNDS,
        next: () => request,
        check: plainCheck,
        pids: [v.server.child.pid],
      });
      return { result, upstream: (await simulator.stats()).total };
    });
    const helloRounds = segments[0]?.map((r) => r.result) ?? [];
    const roundsOf = (label: string) => segments[variants.findIndex((v) => v.label === label)]?.map((r) => r.result) ?? [];
    // What the operation log line costs: the tiny query's rate with it over the rate without it, round by round.
    const logging = pairedRatio(
      roundsOf(`gateway ${code(TINY)}, cached`),
      roundsOf(`gateway ${code(TINY)}, cached, ${code('LOG_LEVEL=warn')}`),
    );
    const merged = segments.map((runs) => ({
      result: mergeLoad(runs.map((r) => r.result)),
      spread: rateSpread(runs.map((r) => r.result)),
      ofCeiling: pairedRatio(
        runs.map((r) => r.result),
        helloRounds,
      ),
      upstream: runs.reduce((s, r) => s + r.upstream, 0),
    }));
    const rows = variants.map((v, i) => {
      const m = merged[i];
      if (m === undefined) return [];
      return [
        v.label,
        num(m.result.rate),
        m.spread,
        i === 0 ? 'ceiling' : pctRange(m.ofCeiling),
        ms(p(m.result, 50)),
        ms(p(m.result, 99)),
        errorsText(m.result),
        v.upstream ? String(m.upstream) : '–',
        pct(m.result.serverCpu[0] ?? null),
        pct(m.result.clientCpu),
      ];
    });
    return [
      {
        title: 'Small queries against the ceiling',
        setup: [
          'The ceiling: a bare graphql-yoga server answering `{ hello }` (`bench/servers/hello-world.ts`), in its own process on the same Node and HTTP stack (node:http with Yoga’s listener); ' +
            'beside it the same with Yoga’s request-body limit off (`maxRequestBodySize: false`), as the gateway has it (it bounds bodies before Yoga, which otherwise pipes every body through a stream of its own).',
          `The gateway: one process in the default configuration (docs/configuration.md) except ${settingsText(CACHED_SETTINGS)} (so the tiny query is answered from its cache; it does not change \`{ __typename }\`); ` +
            `in particular \`LOG_LEVEL=info\` and \`LOG_SAMPLE_RATE=1\` (one JSON line per operation, to a file) and the quota guard on${baseline ? `; the baseline (${baseline.checkout}) likewise` : ''}; ` +
            `a second gateway process with \`LOG_LEVEL=warn\` (no operation lines) tells what logging costs. Upstream: the simulator (${describeData(config)}).`,
          `${CLIENTS} closed-loop clients over keep-alive connections from the bench process, each sending the same POST with the demo key; ` +
            `${options.seconds} s per variant in ${ROUNDS} alternating rounds, after ${warmUpMs / 1000} s of warm-up each.`,
        ],
        table: markdownTable(
          [
            'server and query',
            'requests/s',
            'per round',
            'of hello-world',
            'p50 ms',
            'p99 ms',
            'errors',
            'upstream requests',
            'server CPU',
            'clients CPU',
          ],
          rows,
        ),
        notes: [
          `Per round: the lowest and highest rate of the ${ROUNDS} rounds, how much the shared machine moved it. ` +
            'Of hello-world: the median of the ratios of each round’s rate to the hello-world’s in the same round (neighbours in time), with the lowest and highest. ' +
            'Upstream requests: what the simulator served during the measured rounds (0: every tiny query came from the cache). ' +
            `Logging: the tiny query's rate with a line per operation is ${pctRange(logging)} of its rate with \`LOG_LEVEL=warn\`, round by round. ` +
            'CPU: share of one core over the run; a server near 100% is the bottleneck, the clients share the remaining core.',
        ],
      },
    ];
  },
};
