import { DASHBOARD } from '../../test/helpers/dashboard.ts';
import { markdownTable, ms, num, pct } from '../lib/format.ts';
import { KEYS, graphqlRequest, send, type GraphqlAnswer } from '../lib/http.ts';
import { closedLoop, errorsText, p, type LoadRequest } from '../lib/load.ts';
import { memoryOf, metricSum, sampleEvery } from '../lib/metrics.ts';
import type { Scenario } from '../lib/scenario.ts';
import { describeData, startGateway, startSimulator, type SimulatorConfig } from '../lib/stack.ts';

const CLIENTS = 50;
const SAMPLE_EVERY_MS = 10_000;
const KEY_ROTATION = [KEYS.full, KEYS.readonly, KEYS.eventsOnly];
const QUERIES: { name: string; query: string; variables?: Record<string, unknown> }[] = [
  { name: 'the 20×4 dashboard', query: DASHBOARD, variables: { id: 'exp_movie01' } },
  { name: 'the experiments list', query: '{ experiments { edges { node { experimentId name roomCount } } } }' },
  {
    name: 'one room’s participants with 20 media events each',
    query:
      '{ room(id: "room_movie01_007") { participants { edges { node { participantId events(first: 20, category: MEDIA) { totalCount edges { node { eventType onset } } } } } } } }',
  },
  {
    name: 'the experiment’s last 100 events',
    query: '{ experiment(id: "exp_movie01") { events(first: 100, sort: ONSET, order: DESC) { totalCount edges { node { id onset } } } } }',
  },
];

/**
 * An answer as it should be: HTTP 200 and no errors, except FORBIDDEN, which is the events-only key's
 * right answer for the dashboard's sparse ratings (it lacks `read:ratings`).
 */
function loadCheck(status: number, body: string): string | null {
  if (status !== 200) return `HTTP ${status}`;
  if (!body.includes('"errors":[')) return null;
  const answer = JSON.parse(body) as GraphqlAnswer;
  const codes = (answer.errors ?? []).map((e) => e.extensions?.code ?? 'no code').filter((c) => c !== 'FORBIDDEN');
  return codes.length === 0 ? null : codes.join('+');
}

const trail = (values: number[]): string => values.map((v) => v.toFixed(0)).join(' → ');

export const load: Scenario = {
  name: 'load',
  summary: `${CLIENTS} clients, mixed keys and queries, the default configuration; heap and RSS every 10 s`,
  async run({ children, options, progress }) {
    const config: SimulatorConfig = { rooms: 20, participantsPerRoom: 4, latencyMs: 20, rateLimit: true };
    const simulator = await startSimulator(children, config);
    const gateway = await startGateway(children, 'gateway', simulator.url);
    const requests: LoadRequest[][] = KEY_ROTATION.map((key) =>
      QUERIES.map((q) => ({ path: '/graphql', ...graphqlRequest(q.query, q.variables ?? {}, key) })),
    );
    // Client c sends query (c + i) and key (7c + i) as its i-th request: every key meets every query.
    const next = (client: number, i: number): LoadRequest => {
      const byKey = requests[(client * 7 + i) % KEY_ROTATION.length] ?? [];
      const request = byKey[(client + i) % QUERIES.length];
      if (request === undefined) throw new Error('no request');
      return request;
    };
    for (const q of QUERIES) {
      const reply = await send(`${gateway.origin}/graphql`, graphqlRequest(q.query, q.variables ?? {}));
      if (loadCheck(reply.status, reply.text) !== null) throw new Error(`load query failed: ${reply.text.slice(0, 300)}`);
    }
    await simulator.reset();
    const before = metricSum(await gateway.metrics(), 'hsgql_upstream_requests_total');
    progress(`load: ${CLIENTS} clients for ${options.loadSeconds} s`);
    const sampler = sampleEvery(SAMPLE_EVERY_MS, async (at) => memoryOf(await gateway.metrics(), at));
    const result = await closedLoop({
      origin: gateway.origin,
      clients: CLIENTS,
      durationMs: options.loadSeconds * 1000,
      next,
      check: loadCheck,
      pids: [gateway.child.pid, simulator.child.pid],
    });
    const memory = await sampler.stop();
    const upstream = (await simulator.stats()).total;
    const ownCount = metricSum(await gateway.metrics(), 'hsgql_upstream_requests_total') - before;
    const seconds = memory.map((m) => m.atSeconds.toFixed(0)).join(', ');
    return [
      {
        title: 'Load: 50 clients, mixed keys and queries',
        setup: [
          `${CLIENTS} closed-loop clients from the bench process for ${options.loadSeconds} s; client c sends query c + i and key 7c + i as its i-th request, ` +
            `rotating ${QUERIES.map((q) => q.name).join(', ')} over three demo keys (full, read-only, events-only).`,
          `The gateway in the default configuration (docs/configuration.md), nothing changed: shared cache (\`CACHE_TTL_MS=5000\`), quota guard on, planner on, \`LOG_LEVEL=info\` to a file. ` +
            `Simulator (its own process): ${describeData(config)}. Each query ran once before the clock started.`,
        ],
        table: markdownTable(
          [
            'load',
            'operations',
            'rate',
            'errors',
            'p50 ms',
            'p95 ms',
            'p99 ms',
            'upstream requests',
            `gateway's count`,
            'heap used, MB',
            'RSS, MB',
            'gateway CPU',
          ],
          [
            [
              `${CLIENTS} clients × ${options.loadSeconds} s`,
              num(result.operations),
              `${num(result.rate)}/s`,
              errorsText(result),
              ms(p(result, 50)),
              ms(p(result, 95)),
              ms(p(result, 99)),
              num(upstream),
              num(ownCount),
              trail(memory.map((m) => m.heapUsedMb)),
              trail(memory.map((m) => m.rssMb)),
              pct(result.serverCpu[0] ?? null),
            ],
          ],
        ),
        notes: [
          `Errors: answers other than HTTP 200 with data, not counting the events-only key's FORBIDDEN on sparse ratings (its right answer). ` +
            `Upstream requests: the simulator's count (gateway's count: its \`hsgql_upstream_requests_total\`). ` +
            `Heap used and RSS: the gateway process's own \`nodejs_heap_size_used_bytes\` and \`process_resident_memory_bytes\` from its /metrics, ` +
            `sampled every 10 s (at ${seconds} s) as they were, without forcing a garbage collection.`,
        ],
      },
    ];
  },
};
