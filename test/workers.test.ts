import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../src/simulator/server.ts';
import { startGatewayProcess, type GatewayProcess } from './helpers/process.ts';
import { FULL } from './helpers/simulator.ts';

/** One request on a connection of its own (the primary hands each new connection to the next worker). */
function once(url: string, body?: string): Promise<{ status: number; worker: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: body === undefined ? 'GET' : 'POST',
        agent: false,
        headers: body === undefined ? {} : { 'content-type': 'application/json', 'x-api-key': FULL },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, worker: String(res.headers['x-worker']), text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

// WORKERS=2 as `npm start` runs it: a primary and two worker processes on one port, no Redis, in front
// of a simulator that allows 4 requests a minute per endpoint.
describe('WORKERS=2', () => {
  let sim: Simulator;
  // The gateway the tests share, started by the first that needs it. The SIGTERM test takes it for
  // itself: a test after it starts another.
  let running: Promise<GatewayProcess> | null = null;
  const shared = (): Promise<GatewayProcess> =>
    (running ??= startGatewayProcess({ HYPERSTUDY_API_URL: sim.url, WORKERS: '2', UPSTREAM_MINUTE_LIMIT: '4', CACHE_TTL_MS: '0' }));

  beforeAll(async () => {
    sim = await startSimulator({ rateLimit: { enabled: true, perHour: 1000, perMinute: 4 } });
  });

  afterAll(async () => {
    await running?.then((gateway) => gateway.stop());
    await sim?.close();
  });

  const workerPids = (of: GatewayProcess): number[] =>
    of
      .lines()
      .filter((l) => l.msg === 'listening')
      .map((l) => Number(l.pid));

  it('serves one port from two worker processes', async () => {
    const gateway = await shared();
    const workers = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const reply = await once(`${gateway.url}/health`);
      expect(reply.status).toBe(200);
      workers.add(reply.worker);
    }
    expect([...workers].sort()).toEqual(['1', '2']);
    const pids = workerPids(gateway);
    expect(new Set(pids).size).toBe(2);
    expect(pids).not.toContain(gateway.proc.pid);
    expect((await once(`${gateway.url}/ready`)).status).toBe(200);
    // The primary hands out connections itself (node:cluster's round robin), and says so.
    expect(gateway.lines().find((l) => l.msg === 'primary: every worker listening')).toMatchObject({ workers: 2, schedulingPolicy: 'rr' });
  }, 60_000);

  it("never exceeds a key's limits without Redis: each worker takes half of each, and /metrics says so per worker", async () => {
    const gateway = await shared();
    const codes: string[] = [];
    for (let i = 0; i < 8; i++) {
      const reply = await once(`${gateway.url}/graphql`, JSON.stringify({ query: '{ experiment(id: "exp_movie01") { name } }' }));
      const body = JSON.parse(reply.text) as { errors?: { extensions?: { code?: string } }[] };
      codes.push(body.errors?.[0]?.extensions?.code ?? 'ok');
    }
    expect(codes.filter((c) => c === 'ok').length).toBe(4);
    expect(codes.filter((c) => c === 'RATE_LIMITED').length).toBe(4);
    // (The /ready probe of the first test asks /health, which is not this endpoint.)
    const reads = sim.stats.requests.filter((r) => r.path.endsWith('/experiments/exp_movie01'));
    expect(reads.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const metrics = (await once(`${gateway.url}/metrics`)).text;
    for (const worker of ['1', '2']) {
      expect(metrics).toContain(`hsgql_quota_limit{window="minute",worker="${worker}"} 2\n`);
      expect(metrics).toContain(`hsgql_quota_limit{window="hour",worker="${worker}"} 500\n`);
      expect(metrics).toContain(`hsgql_quota_processes{worker="${worker}"} 2\n`);
      expect(metrics).toContain(`hsgql_operations_total{operation="anonymous",outcome="ok",worker="${worker}"} 2\n`);
      expect(metrics).toContain(`hsgql_operations_total{operation="anonymous",outcome="partial",worker="${worker}"} 2\n`);
    }
  }, 60_000);

  it("hands new connections to the workers in turn, and /metrics counts each worker's connections and event loop", async () => {
    const gateway = await shared();
    const counts = (text: string, series: string): Record<string, number> =>
      Object.fromEntries(
        [...text.matchAll(new RegExp(`^${series}\\{(?:state="active",)?worker="(\\d+)"\\} (\\S+)$`, 'gm'))].map((m) => [
          m[1],
          Number(m[2]),
        ]),
      );
    const before = await once(`${gateway.url}/metrics`);
    for (let i = 0; i < 6; i++) expect((await once(`${gateway.url}/health`)).status).toBe(200);
    const after = await once(`${gateway.url}/metrics`);
    const [was, is] = [counts(before.text, 'hsgql_http_connections_total'), counts(after.text, 'hsgql_http_connections_total')];
    // Each request came on a connection of its own: three to each worker, and the second scrape's to the one after the last.
    expect(Object.keys(is).sort()).toEqual(['1', '2']);
    const added = Object.fromEntries(Object.entries(is).map(([worker, n]) => [worker, n - (was[worker] ?? 0)]));
    expect(added).toEqual(before.worker === '1' ? { '1': 3, '2': 4 } : { '1': 4, '2': 3 });
    expect(after.worker).not.toBe(before.worker);
    const busy = counts(after.text, 'hsgql_event_loop_seconds_total');
    expect(Object.keys(busy).sort()).toEqual(['1', '2']);
    for (const seconds of Object.values(busy)) expect(seconds).toBeGreaterThan(0);
  }, 60_000);

  it('stops the primary and every worker on SIGTERM', async () => {
    const gateway = await shared();
    running = null;
    const pids = workerPids(gateway);
    expect(pids.length).toBe(2);
    expect(await gateway.stop()).toBe(0);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(gateway.lines().filter((l) => l.msg === 'shutting down').length).toBe(2);
  }, 60_000);
});
