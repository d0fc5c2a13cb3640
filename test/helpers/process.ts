import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { GATEWAY_BUNDLE, GATEWAY_COMPILE_CACHE } from './bundle.ts';
import { delay } from './scripted.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface GatewayProcess {
  /** `http://127.0.0.1:PORT` (GraphQL at `/graphql`). */
  url: string;
  proc: ChildProcess;
  /** Its JSON log lines so far (stdout), parsed. */
  lines(): Record<string, unknown>[];
  /** Resolves with the exit code once it has exited. */
  exited: Promise<number | null>;
  /** SIGTERM (then SIGKILL after `graceMs` if it has not exited); resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

/**
 * The gateway as `npm start` runs it (`src/main.ts`, bundled: test/helpers/bundle.ts), in a process of its own, on a free port of
 * 127.0.0.1, configured by `env`. Resolves once it logged the line `listening` (with WORKERS > 1: the
 * primary's line, once every worker listens).
 */
export async function startGatewayProcess(env: Record<string, string>): Promise<GatewayProcess> {
  const proc = spawn(process.execPath, [GATEWAY_BUNDLE], {
    cwd: ROOT,
    env: { ...process.env, NODE_COMPILE_CACHE: GATEWAY_COMPILE_CACHE, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  proc.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const lines = (): Record<string, unknown>[] =>
    out
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  const ready = (env.WORKERS ?? '1') === '1' ? 'listening' : 'primary: every worker listening';
  let running = true;
  void exited.then(() => (running = false));
  for (let i = 0; i < 600; i++) {
    const line = lines().find((l) => l.msg === ready);
    if (typeof line?.url === 'string') {
      const url = line.url.replace(/\/graphql$/, '');
      return {
        url,
        proc,
        lines,
        exited,
        async stop(graceMs = 10_000) {
          if (!running) return exited;
          proc.kill('SIGTERM');
          const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
          const code = await exited;
          clearTimeout(timer);
          return code;
        },
      };
    }
    if (!running) throw new Error(`the gateway exited before listening:\n${out}\n${err}`);
    await delay(50);
  }
  proc.kill('SIGKILL');
  throw new Error(`the gateway did not listen within 30 s:\n${out}\n${err}`);
}

/** A TypeScript script of the project run to its end (through tsx), with what it printed and its exit code. */
export async function runScript(
  script: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, out, err };
}
