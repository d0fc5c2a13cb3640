import { DASHBOARD } from '../../test/helpers/dashboard.ts';
import { markdownTable, num, pct, settingsText } from '../lib/format.ts';
import { timedGraphql } from '../lib/http.ts';
import type { Scenario } from '../lib/scenario.ts';
import { describeData, startGateway, startSimulator, type SimulatorConfig } from '../lib/stack.ts';

const SETTINGS = { CACHE_TTL_MS: '0', UPSTREAM_TIMEOUT_MS: '1000', UPSTREAM_QUOTA_GUARD: 'off' };

export const faults: Scenario = {
  name: 'faults',
  summary: '20×4 dashboards one after another at a 20% upstream fault rate: how many answer completely',
  async run({ children, options, progress }) {
    const config: SimulatorConfig = {
      rooms: 20,
      participantsPerRoom: 4,
      latencyMs: 20,
      faultRate: 0.2,
      faultModes: ['http500', 'http502', 'http503', 'html502', 'drop', 'stall'],
      stallMs: 5_000,
    };
    const simulator = await startSimulator(children, config);
    const gateway = await startGateway(children, 'gateway', simulator.url, SETTINGS);
    const dashboards = options.quick ? 10 : 100;
    let complete = 0;
    let wellFormed = 0;
    let retries = 0;
    await simulator.reset();
    for (let i = 0; i < dashboards; i++) {
      if (i % 10 === 0) progress(`faults: dashboard ${i + 1}/${dashboards}`);
      const { answer, status } = await timedGraphql(gateway.origin, DASHBOARD, { id: 'exp_movie01' });
      if (status === 200 && answer.data !== undefined && (answer.errors ?? []).every((e) => typeof e.extensions?.code === 'string'))
        wellFormed++;
      if (status === 200 && answer.errors === undefined) complete++;
      retries += answer.extensions?.upstream?.retries ?? 0;
    }
    // The simulator logs a request when it ends: wait out the last stalls so that every fault is counted.
    await new Promise((resolve) => setTimeout(resolve, (config.stallMs ?? 0) + 500));
    const stats = await simulator.stats();
    const injected = stats.requests.filter((r) => r.fault !== null).length;
    return [
      {
        title: 'Faults: dashboards against a failing upstream',
        setup: [
          `${dashboards} dashboards (the query above, 20×4) one after another. Simulator (its own process): ${describeData(config)}, a stall held ${config.stallMs} ms.`,
          `Gateway settings changed from the defaults: ${settingsText(SETTINGS)} (retries, backoff and the circuit breaker at their defaults).`,
        ],
        table: markdownTable(
          [
            'faults',
            'dashboards',
            'answered completely',
            'well-formed, errors with codes',
            'upstream requests',
            'faults injected',
            `gateway's retries`,
          ],
          [
            [
              '20×4 dashboards at a 20% fault rate',
              String(dashboards),
              pct((100 * complete) / dashboards),
              pct((100 * wellFormed) / dashboards),
              num(stats.total),
              num(injected),
              num(retries),
            ],
          ],
        ),
        notes: [
          'Upstream requests and faults injected: the simulator’s count, including the failed attempts; retries: the sum of `extensions.upstream.retries`.',
        ],
      },
    ];
  },
};
