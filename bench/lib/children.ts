import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the repository lives: children run from it, so `src/…` and `bench/…` paths resolve. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** One process the bench started; its stdout and stderr go to `logPath`. */
export class Child {
  readonly exited: Promise<number | null>;
  #stopping = false;
  /** How it ended ("code 1", "signal SIGKILL"); undefined while it runs. */
  #ended: string | undefined = undefined;

  constructor(
    readonly name: string,
    readonly logPath: string,
    readonly proc: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.#ended = signal === null ? `code ${code}` : `signal ${signal}`;
        resolve(code);
      });
      proc.once('error', (error) => {
        this.#ended = error.message;
        resolve(null);
      });
    });
  }

  get pid(): number {
    if (this.proc.pid === undefined) throw new Error(`${this.name} has no pid (did it fail to start?)`);
    return this.proc.pid;
  }

  get ended(): string | undefined {
    return this.#ended;
  }

  get running(): boolean {
    return this.#ended === undefined;
  }

  /** True when it exited without being asked to. */
  get crashed(): boolean {
    return !this.running && !this.#stopping;
  }

  /** The last lines it printed, for error messages. */
  tail(lines = 8): string {
    try {
      return readFileSync(this.logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no output)';
    }
  }

  /** Waits until its output matches `pattern`; fails if it exits first or after `timeoutMs`. */
  async waitForOutput(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
    const until = performance.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(readFileSync(this.logPath, 'utf8'));
      if (match) return match;
      if (!this.running) throw new Error(`${this.name} exited before printing ${pattern}:\n${this.tail()}`);
      if (performance.now() > until) throw new Error(`${this.name} printed no ${pattern} within ${timeoutMs} ms:\n${this.tail()}`);
      await sleep(50);
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    this.#stopping = true;
    if (!this.running) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Synchronous, for exit handlers. */
  killNow(): void {
    this.#stopping = true;
    if (this.running) this.proc.kill('SIGKILL');
  }
}

/**
 * Every process the bench starts, so that all of them are stopped after each scenario and killed when
 * the bench exits for any reason (an error, SIGINT, SIGTERM).
 */
export class Children {
  #all = new Set<Child>();
  #count = 0;

  constructor(readonly logDir: string) {}

  /**
   * Starts `node [nodeArgs]` in `cwd` (the repository root) with `env` added to this process's environment;
   * `node` is this process's Node unless another binary is given.
   */
  spawnNode(name: string, nodeArgs: string[], env: Record<string, string> = {}, cwd = ROOT, node = process.execPath): Child {
    return this.spawn(name, node, nodeArgs, env, cwd);
  }

  /** Starts any `command` (e.g. `redis-server`) the same way. */
  spawn(name: string, command: string, args: string[], env: Record<string, string> = {}, cwd = ROOT): Child {
    const logPath = join(this.logDir, `${String(++this.#count).padStart(2, '0')}-${name.replace(/[^\w.-]+/g, '_')}.log`);
    const fd = openSync(logPath, 'w');
    try {
      const child = new Child(name, logPath, spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] }));
      this.#all.add(child);
      return child;
    } finally {
      closeSync(fd);
    }
  }

  /** Fails with the output of any child that exited without being asked to. */
  assertNoneCrashed(): void {
    const crashed = [...this.#all].filter((c) => c.crashed);
    if (crashed.length > 0)
      throw new Error(crashed.map((c) => `${c.name} exited unexpectedly (${c.ended}); its last output:\n${c.tail()}`).join('\n\n'));
  }

  /** Stops every child (a scenario's end) and forgets them. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#all].map((c) => c.stop()));
    this.#all.clear();
  }

  killAllNow(): void {
    for (const c of this.#all) c.killNow();
  }
}
