import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { startSimulator } from '../src/simulator/server.ts';
import { DASHBOARD } from './helpers/dashboard.ts';
import { FULL, NO_RATE_LIMIT, OTHER } from './helpers/simulator.ts';
import { startGateway } from './helpers/stack.ts';

const ask = (url: string) =>
  fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': FULL, 'x-request-id': 'trace-me' },
    body: JSON.stringify({ query: DASHBOARD, variables: { id: 'exp_movie01' }, operationName: 'Dashboard' }),
  }).then((r) => r.json());

describe('tracing', () => {
  it('traces each operation with a child span per upstream request, never the key', async () => {
    const sim = await startSimulator({ rateLimit: NO_RATE_LIMIT });
    const exporter = new InMemorySpanExporter();
    const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('test');
    const { gateway, url } = await startGateway({ HYPERSTUDY_API_URL: sim.url, CACHE_TTL_MS: '0' }, { tracer });
    try {
      await ask(url);
      const spans = exporter.getFinishedSpans();
      const server = spans.filter((s) => s.name === 'graphql Dashboard');
      expect(server).toHaveLength(1);
      expect(server[0]?.attributes).toMatchObject({
        'graphql.operation.name': 'Dashboard',
        'graphql.operation.type': 'query',
        'hyperstudy.request_id': 'trace-me',
        'hyperstudy.upstream.requests': 5,
        'hyperstudy.outcome': 'ok',
      });
      const clients = spans.filter((s) => s.name.startsWith('HTTP '));
      expect(clients.map((s) => s.name).sort()).toEqual([
        'HTTP GET /data/events/experiment/:id',
        'HTTP GET /data/participants/experiment/:id',
        'HTTP GET /data/ratings/sparse/experiment/:id',
        'HTTP GET /data/rooms/experiment/:id',
        'HTTP GET /experiments/:id',
      ]);
      for (const span of clients) {
        expect(span.parentSpanContext?.spanId).toBe(server[0]?.spanContext().spanId);
        expect(span.attributes['http.response.status_code']).toBe('200');
      }
      expect(JSON.stringify(spans.map((s) => ({ name: s.name, attributes: s.attributes })))).not.toContain(FULL);
    } finally {
      await gateway.close();
      await sim.close();
    }
  });

  // Issue 9, item 21: before, every operation with an error (NOT_FOUND, FORBIDDEN…) was marked ERROR.
  it('marks an operation span ERROR for faults only, not for expected answers', async () => {
    const sim = await startSimulator({ rateLimit: NO_RATE_LIMIT });
    const exporter = new InMemorySpanExporter();
    const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('test');
    const { gateway, url } = await startGateway({ HYPERSTUDY_API_URL: sim.url, CACHE_TTL_MS: '0', UPSTREAM_RETRIES: '0' }, { tracer });
    const run = (query: string, key = FULL) =>
      fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': key },
        body: JSON.stringify({ query }),
      }).then((r) => r.json());
    try {
      await run('query Missing { experiment(id: "exp_nope") { name } }');
      await run('query Foreign { experiment(id: "exp_movie01") { name } }', OTHER);
      sim.configure({ faults: { rate: 1, modes: ['http500'] } });
      await run('query Broken { experiment(id: "exp_movie01") { name } }');
      const status = (name: string) => {
        const span = exporter.getFinishedSpans().find((s) => s.name === `graphql ${name}`);
        return [span?.status, span?.attributes['hyperstudy.error_codes']];
      };
      expect(status('Missing')).toEqual([{ code: SpanStatusCode.UNSET }, ['NOT_FOUND']]);
      expect(status('Foreign')).toEqual([{ code: SpanStatusCode.UNSET }, ['FORBIDDEN']]);
      expect(status('Broken')).toEqual([{ code: SpanStatusCode.ERROR, message: 'UPSTREAM_ERROR' }, ['UPSTREAM_ERROR']]);
    } finally {
      await gateway.close();
      await sim.close();
    }
  });

  it('exports to an OTLP/HTTP endpoint when one is configured', async () => {
    const bodies: string[] = [];
    const collector = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('latin1')));
      req.on('end', () => {
        bodies.push(`${req.url} ${body}`);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const sim = await startSimulator({ rateLimit: NO_RATE_LIMIT });
    const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`;
    const { gateway, url } = await startGateway({
      HYPERSTUDY_API_URL: sim.url,
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint,
      OTEL_SERVICE_NAME: 'hsgql-test',
    });
    try {
      await ask(url);
    } finally {
      await gateway.close(); // flushes the exporter
      await sim.close();
      collector.close();
    }
    const all = bodies.join('\n');
    expect(all).toContain('/v1/traces');
    expect(all).toContain('graphql Dashboard');
    expect(all).toContain('hsgql-test');
    expect(all).not.toContain(FULL);
  });
});
