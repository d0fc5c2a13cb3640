/**
 * `npm run bench`: measured side by side in one run against the simulator with 20 ms latency.
 *  1. The dashboard query (experiment → rooms → participants → events + sparse ratings) with the
 *     planner on and off at 2×2, 20×4 and 50×8: upstream requests and wall time, and their ratios.
 *  2. The gateway's overhead against a direct REST call for one small request.
 * Runs alternate between the variants so that machine noise hits both alike; medians are reported.
 */
import { loadConfig } from '../src/config.ts';
import { createGateway, type Gateway } from '../src/server.ts';
import { startSimulator } from '../src/simulator/server.ts';
import { DASHBOARD } from '../test/helpers/dashboard.ts';

const KEY = 'hst_test_demo_full';
const LATENCY_MS = 20;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

async function gateway(apiUrl: string, planner: boolean): Promise<{ gw: Gateway; url: string }> {
  const gw = createGateway(loadConfig({ HYPERSTUDY_API_URL: apiUrl, PLANNER: planner ? 'on' : 'off', CACHE_TTL_MS: '0', UPSTREAM_QUOTA_GUARD: 'off', UPSTREAM_BUDGET: '10000', LOG_LEVEL: 'silent', PORT: '0', HOST: '127.0.0.1' }));
  return { gw, url: await gw.listen(0, '127.0.0.1') };
}

async function timed(url: string, query: string, variables: Record<string, unknown>): Promise<{ ms: number; requests: number }> {
  const started = performance.now();
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { errors?: unknown[]; extensions?: { upstream?: { requests: number } } };
  const ms = performance.now() - started;
  if (body.errors) throw new Error(`bench query failed: ${JSON.stringify(body.errors).slice(0, 300)}`);
  return { ms, requests: body.extensions?.upstream?.requests ?? Number.NaN };
}

async function dashboard(rooms: number, participants: number, runs: number): Promise<string> {
  const sim = await startSimulator({ rooms, participantsPerRoom: participants, latencyMs: LATENCY_MS, rateLimit: { enabled: false, perHour: 1, perMinute: 1 } });
  const on = await gateway(sim.url, true);
  const off = await gateway(sim.url, false);
  const results = { on: [] as { ms: number; requests: number }[], off: [] as { ms: number; requests: number }[] };
  try {
    await timed(on.url, DASHBOARD, { id: 'exp_movie01' });
    await timed(off.url, DASHBOARD, { id: 'exp_movie01' });
    for (let i = 0; i < runs; i++) {
      results.on.push(await timed(on.url, DASHBOARD, { id: 'exp_movie01' }));
      results.off.push(await timed(off.url, DASHBOARD, { id: 'exp_movie01' }));
    }
  } finally {
    await Promise.all([on.gw.close(), off.gw.close()]);
    await sim.close();
  }
  const reqOn = median(results.on.map((r) => r.requests));
  const reqOff = median(results.off.map((r) => r.requests));
  const msOn = median(results.on.map((r) => r.ms));
  const msOff = median(results.off.map((r) => r.ms));
  return `| ${rooms}×${participants} | ${reqOn} | ${reqOff} | ${(reqOff / reqOn).toFixed(1)}× fewer | ${msOn.toFixed(0)} | ${msOff.toFixed(0)} | ${(msOff / msOn).toFixed(1)}× faster |`;
}

async function overhead(runs: number): Promise<string> {
  const sim = await startSimulator({ latencyMs: LATENCY_MS, rateLimit: { enabled: false, perHour: 1, perMinute: 1 } });
  const gw = await gateway(sim.url, true);
  const direct: number[] = [];
  const viaGateway: number[] = [];
  try {
    for (let i = 0; i < runs + 3; i++) {
      const t0 = performance.now();
      const res = await fetch(`${sim.url}/experiments/exp_movie01`, { headers: { 'x-api-key': KEY } });
      await res.json();
      const t1 = performance.now();
      await timed(gw.url, '{ experiment(id: "exp_movie01") { name roomCount } }', {});
      const t2 = performance.now();
      if (i >= 3) {
        direct.push(t1 - t0);
        viaGateway.push(t2 - t1);
      }
    }
  } finally {
    await gw.gw.close();
    await sim.close();
  }
  const d = median(direct);
  const g = median(viaGateway);
  return `| one small request (experiment by id) | ${d.toFixed(1)} ms | ${g.toFixed(1)} ms | ${(g / d).toFixed(2)}× |`;
}

console.log(`Simulator latency ${LATENCY_MS} ms per request; medians of alternating runs.\n`);
console.log('| dashboard | requests (planner on) | requests (off) | ratio | ms (on) | ms (off) | ratio |');
console.log('|---|---|---|---|---|---|---|');
console.log(await dashboard(2, 2, 9));
console.log(await dashboard(20, 4, 7));
console.log(await dashboard(50, 8, 5));
console.log('\n| gateway overhead | direct REST | through the gateway | ratio |');
console.log('|---|---|---|---|');
console.log(await overhead(30));
