import { once } from 'node:events';
import { get } from 'node:http';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/observability.ts';
import { type Gateway } from '../src/server.ts';
import { startSimulator, type Simulator } from '../src/simulator/server.ts';
import { DASHBOARD } from './helpers/dashboard.ts';
import { startGateway } from './helpers/stack.ts';
import { FULL, NO_RATE_LIMIT, OTHER } from './helpers/simulator.ts';

const SECRET = 'hst_live_do_not_log_me_1234';
let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ rateLimit: NO_RATE_LIMIT });
});
afterAll(() => sim.close());

/** A gateway logging to `into` (one string per line). */
function logging(into: string[], env: Record<string, string> = {}): Promise<{ gateway: Gateway; url: string }> {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      into.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return startGateway({ HYPERSTUDY_API_URL: sim.url, CACHE_TTL_MS: '0', ...env }, { logger: pino({ level: 'info' }, sink) });
}

// Each test has a gateway of its own: its log lines and metrics are that test's alone.
let gateway: Gateway;
let url: string;
let lines: string[];
beforeEach(async () => {
  lines = [];
  ({ gateway, url } = await logging(lines));
});
afterEach(() => gateway.close());

const post = (body: unknown, headers: Record<string, string>) =>
  fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

describe('logs', () => {
  it('logs one JSON line per operation with the request id that is also sent upstream and returned', async () => {
    sim.stats.reset();
    const res = await post(
      { query: DASHBOARD, variables: { id: 'exp_movie01' }, operationName: 'Dashboard' },
      { 'x-api-key': FULL, 'x-request-id': 'trace-abc-123' },
    );
    expect(res.headers.get('x-request-id')).toBe('trace-abc-123');
    await res.json();
    expect(new Set(sim.stats.requests.map((r) => r.requestId))).toEqual(new Set(['trace-abc-123']));
    const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.requestId === 'trace-abc-123');
    expect(line).toMatchObject({ msg: 'operation', operation: 'Dashboard', outcome: 'ok', upstream: { requests: 5 } });
    const generated = await post({ query: '{ __typename }' }, {});
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  // Issue 9, item 21: before, the line was written before upstream errors were mapped: NOT_FOUND and
  // FORBIDDEN were logged as INTERNAL_SERVER_ERROR.
  it("logs each error with the code the caller sees, upstream errors' included", async () => {
    const res = await post(
      { query: 'query Mixed { a: experiment(id: "exp_movie01") { name } b: experiment(id: "exp_nope") { name } }' },
      { 'x-api-key': OTHER, 'x-request-id': 'codes-1' },
    );
    const body = (await res.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors.map((e) => e.extensions.code)).toEqual(['FORBIDDEN', 'NOT_FOUND']);
    const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.requestId === 'codes-1');
    expect(line).toMatchObject({
      operation: 'Mixed',
      outcome: 'partial',
      errors: [
        { code: 'FORBIDDEN', path: 'a' },
        { code: 'NOT_FOUND', path: 'b' },
      ],
    });
  });

  it('logs operations refused before execution too, with their code', async () => {
    await post({ query: 'query NoKey { experiment(id: "exp_movie01") { name } }' }, { 'x-request-id': 'codes-2' });
    const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.requestId === 'codes-2');
    expect(line).toMatchObject({ operation: 'NoKey', outcome: 'error', errors: [{ code: 'UNAUTHENTICATED' }] });
  });

  it('never writes an API key to logs, errors or metrics', async () => {
    const attempts: Record<string, string>[] = [{ 'x-api-key': SECRET }, { authorization: `Bearer ${SECRET}` }];
    for (const headers of attempts) {
      const res = await post({ query: '{ experiment(id: "exp_movie01") { name } }' }, headers);
      const text = await res.text();
      expect(text).toContain('UNAUTHENTICATED');
      expect(text).not.toContain(SECRET);
    }
    await post({ query: '{ experiment(id: "exp_movie01") { name } }' }, { 'x-api-key': FULL });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const everything = `${lines.join('\n')}\n${metrics}`;
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain(FULL);
    expect(everything).not.toContain('do_not_log');
  });

  it('redacts key-shaped fields should anything try to log one', () => {
    const captured: string[] = [];
    const sink = new Writable({ write: (c: Buffer, _e, done) => (captured.push(c.toString()), done()) });
    const logger = createLogger('info', sink);
    logger.info({ key: SECRET, headers: { 'x-api-key': SECRET, authorization: `Bearer ${SECRET}` } }, 'oops');
    logger.info({ request: { apiKey: SECRET, headers: { authorization: `Bearer ${SECRET}` } } }, 'nested');
    expect(captured).toHaveLength(2);
    expect(captured.join('')).not.toContain(SECRET);
  });

  it('logs a share of successful operations (LOG_SAMPLE_RATE) and every operation with errors; metrics count them all', async () => {
    const sampled: string[] = [];
    const { gateway: quiet, url: quietUrl } = await logging(sampled, { LOG_SAMPLE_RATE: '0' });
    try {
      const ask = (query: string, id: string) =>
        fetch(`${quietUrl}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': FULL, 'x-request-id': id },
          body: JSON.stringify({ query }),
        }).then((r) => r.json());
      await ask('query Fine { experiment(id: "exp_movie01") { name } }', 'sampled-ok');
      await ask('query Fine { experiment(id: "exp_movie01") { name } }', 'sampled-ok');
      await ask('query Missing { experiment(id: "exp_nope") { name } }', 'sampled-error');
      const operations = sampled.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'operation');
      expect(operations.map((l) => [l.requestId, l.outcome])).toEqual([['sampled-error', 'partial']]);
      const counted = (await quiet.metrics.registry.getSingleMetric('hsgql_operations_total')?.get())?.values ?? [];
      expect(counted.map((v) => [v.labels.operation, v.labels.outcome, v.value])).toEqual([
        ['Fine', 'ok', 2],
        ['Missing', 'partial', 1],
      ]);
    } finally {
      await quiet.close();
    }
  });
});

describe('metrics', () => {
  it('exposes operations, latency, upstream requests by route and status, retries, shared reads, circuit and budget refusals', async () => {
    await post({ query: DASHBOARD, variables: { id: 'exp_movie01' }, operationName: 'Dashboard' }, { 'x-api-key': FULL }).then((r) =>
      r.text(),
    );
    const refused: Record<string, string>[] = [{ 'x-api-key': SECRET }, { authorization: `Bearer ${SECRET}` }];
    for (const headers of refused) await post({ query: '{ experiment(id: "exp_movie01") { name } }' }, headers).then((r) => r.text());
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toMatch(/hsgql_operations_total\{operation="Dashboard",outcome="ok"\} 1/);
    expect(text).toMatch(/hsgql_operation_duration_seconds_bucket\{le="[^"]+",operation="Dashboard"\} 1/);
    expect(text).toMatch(/hsgql_upstream_requests_total\{route="GET \/data\/events\/experiment\/:id",status="200"\} 1/);
    // The refused key was sent twice (X-API-Key, then Bearer): the upstream was asked once (KEY_REFUSAL_TTL_MS).
    expect(text).toMatch(/hsgql_upstream_requests_total\{route="GET \/experiments\/:id",status="401"\} 1/);
    expect(text).toContain('hsgql_upstream_retries_total');
    expect(text).toContain('hsgql_upstream_shared_reads_total');
    expect(text).toMatch(/hsgql_upstream_circuit_open 0/);
    expect(text).toContain('hsgql_budget_refusals_total');
    expect(text).toContain('process_cpu_user_seconds_total');
  });

  it("counts the connections it accepted and has open, and its event loop's busy and idle time", async () => {
    const { port } = new URL(url);
    // A connection held open, then each request on a connection of its own (closed after it).
    const held = connect(Number(port), '127.0.0.1');
    await once(held, 'connect');
    try {
      const getOnce = (path: string): Promise<{ status: number; text: string }> =>
        new Promise((resolve, reject) => {
          get(`${url}${path}`, { agent: false }, (res) => {
            let text = '';
            res.on('data', (chunk: Buffer) => (text += chunk.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          }).on('error', reject);
        });
      const scrape = async (): Promise<string> => (await getOnce('/metrics')).text;
      const value = (text: string, series: string): number =>
        Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
      const first = await scrape();
      expect(value(first, 'hsgql_http_connections_total')).toBe(2);
      expect(value(first, 'hsgql_http_connections')).toBe(2);
      for (let i = 0; i < 3; i++) expect((await getOnce('/health')).status).toBe(200);
      const second = await scrape();
      expect(value(second, 'hsgql_http_connections_total')).toBe(6);
      for (const state of ['active', 'idle']) {
        const before = value(first, `hsgql_event_loop_seconds_total{state="${state}"}`);
        expect(before).toBeGreaterThan(0);
        expect(value(second, `hsgql_event_loop_seconds_total{state="${state}"}`)).toBeGreaterThanOrEqual(before);
      }
    } finally {
      held.destroy();
    }
  });
});
