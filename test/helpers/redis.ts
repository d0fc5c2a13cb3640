import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { freePort } from '../../bench/lib/stack.ts';
import { delay } from './scripted.ts';

export interface RedisServer {
  url: string;
  port: number;
  /** A client of its own (closed by `stop`). */
  client: Redis;
  /** Every key in it with its TTL in ms (-1: none), for tests that check what Redis holds. */
  keys(): Promise<Map<string, number>>;
  /** Kills the server (SIGKILL: as if it crashed); `start` brings it back on the same port, empty (a no-op while it runs). */
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real redis-server (Debian's `redis-server`, which `.ci/run` installs) on a free port of 127.0.0.1,
 * in memory only (no RDB, no AOF), stopped by `stop()`.
 */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  const launch = async (): Promise<void> => {
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let output = '';
    proc.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    proc.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const failed = new Promise<never>((_, reject) => {
      proc.once('error', (error) =>
        reject(new Error(`redis-server could not start (is it installed? .ci/run installs it): ${error.message}`)),
      );
      proc.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)));
    });
    failed.catch(() => undefined);
    for (let i = 0; i < 200 && !output.includes('Ready to accept connections'); i++) await Promise.race([delay(25), failed]);
    if (!output.includes('Ready to accept connections')) throw new Error(`redis-server did not start: ${output}`);
  };
  await launch();
  const url = `redis://127.0.0.1:${port}`;
  const client = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 100, lazyConnect: true });
  client.on('error', () => undefined);
  await client.connect();
  const exited = (proc: ChildProcess): Promise<void> =>
    proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise((resolve) => proc.once('exit', () => resolve()));
  return {
    url,
    port,
    client,
    async keys() {
      const found = new Map<string, number>();
      for (const key of await client.keys('*')) found.set(key, await client.pttl(key));
      return found;
    },
    async kill() {
      const proc = child;
      if (proc === null) return;
      proc.kill('SIGKILL');
      await exited(proc);
      child = null;
    },
    async start() {
      if (child === null) await launch();
    },
    async stop() {
      client.disconnect();
      const proc = child;
      if (proc === null) return;
      proc.kill('SIGTERM');
      await exited(proc);
      child = null;
    },
  };
}

export interface RedisProxy {
  /** The proxy's `redis://` URL: give it to the one client whose link to Redis should fail. */
  url: string;
  /** Drops the proxied connections and refuses new ones (they are closed at once) until `restore`. */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of `redis` on a free port of 127.0.0.1, for a fault on one client's link only
 * (a blip of one process), while every other client reaches Redis as before.
 */
export async function proxyRedis(redis: RedisServer): Promise<RedisProxy> {
  const sockets = new Set<Socket>();
  let open = true;
  const server = createServer((client) => {
    if (!open) return void client.destroy();
    const upstream = connect(redis.port, '127.0.0.1');
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', drop);
      socket.on('close', drop);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const cut = (): void => {
    open = false;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    cut,
    restore() {
      open = true;
    },
    close() {
      cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
