import { createYoga, createSchema } from 'graphql-yoga';
import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { useMetricsEndpoint } from '../src/http/metrics-endpoint.ts';

describe('the metrics endpoint', () => {
  it('serves the registry in the Prometheus text format on GET /metrics only', async () => {
    const registry = new Registry();
    new Counter({ name: 'demo_total', help: 'A demo counter', registers: [registry] }).inc(3);
    const yoga = createYoga({
      schema: createSchema({ typeDefs: 'type Query { a: Int }' }),
      plugins: [useMetricsEndpoint({ registry })],
      landingPage: false,
    });
    const res = await yoga.fetch('http://gateway/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(registry.contentType);
    expect(await res.text()).toBe('# HELP demo_total A demo counter\n# TYPE demo_total counter\ndemo_total 3\n');
    expect((await yoga.fetch('http://gateway/metrics', { method: 'POST' })).status).not.toBe(200);
    expect((await yoga.fetch('http://gateway/metricsx')).status).toBe(404);
  });
});
