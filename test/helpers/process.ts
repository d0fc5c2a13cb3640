import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { GATEWAY_BUNDLE, GATEWAY_COMPILE_CACHE } from './bundle.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface GatewayProcess {
  /** `http://127.0.0.1:PORT` (GraphQL at `/graphql`). */
  url: string;
  proc: ChildProcess;
  /** Its JSON log lines so far (stdout), parsed. */
  lines(): Record<string, unknown>[];
  /** What it wrote to stderr so far (Node's own messages, e.g. the inspector's address). */
  stderr(): string;
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
  // Its log lines parsed as they come (a test may read them every 50 ms, while the process logs on).
  const parsed: Record<string, unknown>[] = [];
  let partial = '';
  let unparsed: string | null = null;
  const ready = (env.WORKERS ?? '1') === '1' ? 'listening' : 'primary: every worker listening';
  let listening: (url: string) => void = () => undefined;
  const listened = new Promise<string>((resolve) => (listening = resolve));
  proc.stdout?.setEncoding('utf8');
  proc.stdout?.on('data', (text: string) => {
    out += text;
    const split = (partial + text).split('\n');
    partial = split.pop() ?? '';
    for (const line of split) {
      if (!line.startsWith('{') || unparsed !== null) continue;
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        unparsed = line;
        continue;
      }
      parsed.push(entry);
      if (entry.msg === ready && typeof entry.url === 'string') listening(entry.url.replace(/\/graphql$/, ''));
    }
  });
  proc.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const lines = (): Record<string, unknown>[] => {
    if (unparsed !== null) throw new Error(`a log line that is not JSON: ${unparsed}`);
    return [...parsed];
  };
  let running = true;
  void exited.then(() => (running = false));
  // Resolves once it logged the line (or null once it exited first, or after 30 s).
  let timer: NodeJS.Timeout | undefined;
  const url = await Promise.race([
    listened,
    exited.then(() => null),
    new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), 30_000))),
  ]);
  clearTimeout(timer);
  if (url !== null) {
    return {
      url,
      proc,
      lines,
      stderr: () => err,
      exited,
      async stop(graceMs = 10_000) {
        if (!running) return exited;
        proc.kill('SIGTERM');
        const kill = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        const code = await exited;
        clearTimeout(kill);
        return code;
      },
    };
  }
  if (!running) throw new Error(`the gateway exited before listening:\n${out}\n${err}`);
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
