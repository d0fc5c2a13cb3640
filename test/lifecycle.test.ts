import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { startSimulator } from '../src/simulator/server.ts';
import { startGatewayProcess } from './helpers/process.ts';
import { startStack } from './helpers/stack.ts';
import { NO_RATE_LIMIT, FULL } from './helpers/simulator.ts';

const QUERY = '{ experiment(id: "exp_movie01") { name } }';

describe('graceful shutdown', () => {
  it('lets in-flight operations finish, then refuses new connections', async () => {
    const stack = await startStack({ latencyMs: 400 });
    const inFlight = stack.gql(QUERY);
    await new Promise((r) => setTimeout(r, 100));
    const closing = stack.gateway.close(5_000);
    const res = await inFlight;
    expect(res.body.data).toEqual({ experiment: { name: 'Movie Watching Study' } });
    await closing;
    await expect(fetch(`${stack.url}/health`)).rejects.toThrow();
    await stack.sim.close();
  });

  it('closes what is still running once the grace period ends', async () => {
    const stack = await startStack({ latencyMs: 10_000 });
    const inFlight = stack.gql(QUERY).then(
      () => 'answered',
      () => 'cut',
    );
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await stack.gateway.close(200);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(await inFlight).toBe('cut');
    await stack.sim.close();
  });

  it('stops `npm start` cleanly on SIGTERM', async () => {
    const sim = await startSimulator({ rateLimit: NO_RATE_LIMIT });
    const gateway = await startGatewayProcess({ HYPERSTUDY_API_URL: sim.url, SHUTDOWN_GRACE_MS: '1000' });
    try {
      const res = await fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': FULL },
        body: JSON.stringify({ query: QUERY }),
      });
      expect(((await res.json()) as { data: unknown }).data).toEqual({ experiment: { name: 'Movie Watching Study' } });
      expect(await gateway.stop()).toBe(0);
      const said = gateway.lines().map((l) => l.msg);
      expect(said).toContain('shutting down');
      expect(JSON.stringify(gateway.lines())).not.toContain(FULL);
    } finally {
      gateway.proc.kill('SIGKILL');
      await sim.close();
    }
  }, 60_000);

  it('runs `npm start` in production mode (graphql-js without its development checks) unless NODE_ENV says otherwise', async () => {
    const sim = await startSimulator({ rateLimit: NO_RATE_LIMIT });
    // What `npm start` logs when it listens, from a process group of its own (npm, its shell, tsx and node).
    const started = async (nodeEnv: string | undefined): Promise<unknown> => {
      const env: Record<string, string | undefined> = { ...process.env, HYPERSTUDY_API_URL: sim.url, PORT: '0', HOST: '127.0.0.1' };
      delete env.NODE_ENV; // vitest sets NODE_ENV=test
      if (nodeEnv !== undefined) env.NODE_ENV = nodeEnv;
      const child = spawn('npm', ['start', '--silent'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      try {
        for (let i = 0; i < 400 && !out.includes('"msg":"listening"'); i++) await new Promise((r) => setTimeout(r, 100));
        const line = out.split('\n').find((l) => l.includes('"msg":"listening"')) ?? '{}';
        return (JSON.parse(line) as { nodeEnv?: unknown }).nodeEnv;
      } finally {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      }
    };
    try {
      expect(await Promise.all([started(undefined), started('development')])).toEqual(['production', 'development']);
    } finally {
      await sim.close();
    }
  }, 60_000);
});
