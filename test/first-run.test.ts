import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { ListenError } from '../src/http/server.ts';
import { createGateway } from '../src/server.ts';
import { runtimeProblem } from '../src/runtime-check.ts';
import { runScript } from './helpers/process.ts';

// Issue 19: a busy port printed "Internal error emitted on the WebSocket server. Please check your
// implementation." and two stack traces, naming neither PORT nor SIMULATOR_PORT.
describe('a busy port', () => {
  let taken: Server;
  let port = 0;
  beforeAll(async () => {
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    port = (taken.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => taken.close(() => resolve())));

  it('is one error naming PORT, and nothing else is logged', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const gateway = createGateway(loadConfig({ HYPERSTUDY_API_URL: 'http://127.0.0.1:9/api/v3', LOG_LEVEL: 'silent' }));
    try {
      const failed = await gateway.listen(port, '127.0.0.1').catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(ListenError);
      expect((failed as Error).message).toBe(
        `Port ${port} on 127.0.0.1 is in use: stop what listens there, or set PORT to another port (PORT=0 picks a free one)`,
      );
      expect(errors).not.toHaveBeenCalled();
    } finally {
      errors.mockRestore();
      await gateway.close(0);
    }
  });

  it("stops the demo with one line naming SIMULATOR_PORT when the simulator's port is taken", async () => {
    const { code, out, err } = await runScript('src/demo.ts', [], { SIMULATOR_PORT: String(port), PORT: '0', NODE_ENV: 'production' });
    expect([code, out, err]).toEqual([
      1,
      '',
      `Port ${port} (the simulator's) is in use: stop what listens there, or set SIMULATOR_PORT to another port\n`,
    ]);
  });
});

describe('npm run demo -- --help', () => {
  it("prints the demo's usage, not the simulator's, and exits 0", async () => {
    const { code, out, err } = await runScript('src/demo.ts', ['--help']);
    expect([code, err]).toEqual([0, '']);
    expect(out.split('\n').slice(0, 2)).toEqual([
      'npm run demo [-- flags]',
      '  The HyperStudy API simulator with seeded data (on SIMULATOR_PORT, default 4010) and the gateway in front',
    ]);
    expect(out).toContain('[--live [--live-rate N]');
    expect(out).not.toContain('--port N');
  });
});

describe('npm start -- --help', () => {
  it('prints what configures the gateway and exits 0, without starting it', async () => {
    const { code, out, err } = await runScript('src/main.ts', ['--help'], { HYPERSTUDY_API_URL: 'http://127.0.0.1:9/api/v3' });
    expect([code, err]).toEqual([0, '']);
    expect(out.split('\n')[0]).toBe('npm start');
    expect(out).toContain('docs/configuration.md');
    expect(out).not.toContain('listening');
  });
});

describe('an older Node', () => {
  it('is one line naming the Node the project needs', () => {
    expect(runtimeProblem('v20.20.2')).toBe(
      'hyperstudy-graphql needs Node.js 24.11 or newer (this is v20.20.2): see "Prerequisites" in the README',
    );
    expect(runtimeProblem('v24.10.0')).toContain('needs Node.js 24.11 or newer');
    expect([runtimeProblem('v24.11.0'), runtimeProblem('v24.22.3'), runtimeProblem('v26.1.0')]).toEqual([null, null, null]);
    expect(runtimeProblem(process.version)).toBeNull();
  });
});
