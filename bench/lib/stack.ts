/**
 * The processes a scenario measures, each in its own Node process: the simulator (`src/simulator/cli.ts`),
 * gateways (`src/main.ts`, configured by environment like `npm start`), and any other HTTP server given
 * as a module (`bench/servers/serve.ts`: the hello-world ceiling, scripted upstream stand-ins).
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { RequestRecord } from '../../src/simulator/stats.ts';
import { ROOT, type Child, type Children } from './children.ts';
import { getJson, send } from './http.ts';
import { scrapeMetrics, type Metrics } from './metrics.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The simulator's data and behaviour, as `npm run simulator` flags take them. */
export interface SimulatorConfig {
  rooms: number;
  participantsPerRoom: number;
  /** Default 30. */
  eventsPerParticipant?: number;
  latencyMs: number;
  /** Default off: the bench measures the gateway's own requests, not the upstream's refusals. */
  rateLimit?: boolean;
  /** With `rateLimit`: the per-minute limit per endpoint and the length of its window (default 100 in 60 s). */
  rateLimitMinute?: number;
  rateLimitMinuteMs?: number;
  faultRate?: number;
  faultModes?: readonly string[];
  stallMs?: number;
  /** Keys `hst_test_extra_1`… of the demo user with every scope (the simulator's `--extra-keys`). */
  extraKeys?: number;
  seed?: number;
}

/** What `GET /_admin/stats` answers. */
export interface SimulatorStats {
  total: number;
  maxInFlight: number;
  byPath: Record<string, number>;
  byKey: Record<string, number>;
  requests: RequestRecord[];
}

export interface SimulatorProcess {
  child: Child;
  config: SimulatorConfig;
  /** The API base, ending in `/api/v3`. */
  url: string;
  origin: string;
  /** Clears the request log and the rate limiter. */
  reset(): Promise<void>;
  stats(): Promise<SimulatorStats>;
}

export const EVENTS_PER_PARTICIPANT = 30;

/** "20 rooms × 4 participants × 30 events, 20 ms latency" — how tables state the data. */
export function describeData(config: SimulatorConfig): string {
  const parts = [
    `${config.rooms} rooms × ${config.participantsPerRoom} participants × ${config.eventsPerParticipant ?? EVENTS_PER_PARTICIPANT} events`,
    `${config.latencyMs} ms latency per request`,
  ];
  if (config.faultRate) parts.push(`${Math.round(config.faultRate * 100)}% faults (${(config.faultModes ?? ['all']).join(', ')})`);
  parts.push(`rate limits ${config.rateLimit ? 'on' : 'off'}`);
  return parts.join(', ');
}

export async function startSimulator(children: Children, config: SimulatorConfig): Promise<SimulatorProcess> {
  const args = [
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--rooms',
    String(config.rooms),
    '--participants-per-room',
    String(config.participantsPerRoom),
    '--events-per-participant',
    String(config.eventsPerParticipant ?? EVENTS_PER_PARTICIPANT),
    '--latency-ms',
    String(config.latencyMs),
    '--rate-limit',
    config.rateLimit ? 'on' : 'off',
  ];
  if (config.seed !== undefined) args.push('--seed', String(config.seed));
  if (config.rateLimitMinute !== undefined) args.push('--rate-limit-minute', String(config.rateLimitMinute));
  if (config.rateLimitMinuteMs !== undefined) args.push('--rate-limit-minute-ms', String(config.rateLimitMinuteMs));
  if (config.faultRate !== undefined) args.push('--fault-rate', String(config.faultRate));
  if (config.faultModes !== undefined) args.push('--fault-modes', config.faultModes.join(','));
  if (config.stallMs !== undefined) args.push('--stall-ms', String(config.stallMs));
  if (config.extraKeys !== undefined) args.push('--extra-keys', String(config.extraKeys));
  const child = children.spawnNode('simulator', ['--import', 'tsx', 'src/simulator/cli.ts', ...args]);
  const [, url = ''] = await child.waitForOutput(/HyperStudy API simulator on (http:\/\/\S+)/);
  const origin = url.replace(/\/api\/v3$/, '');
  return {
    child,
    config,
    url,
    origin,
    async reset() {
      const reply = await send(`${origin}/_admin/reset`, { method: 'POST' });
      if (reply.status !== 200) throw new Error(`simulator reset: HTTP ${reply.status}`);
    },
    stats: () => getJson<SimulatorStats>(`${origin}/_admin/stats`),
  };
}

/** A port nothing listens on right now (the gateway is told its port; a clash is retried). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** The Node binary each checkout's gateways run on, when not the bench's own (`--baseline-node`). */
const nodeOfCheckout = new Map<string, string>();

/** Runs `checkout`'s gateways on the Node binary `node` instead of the bench's own. */
export function runCheckoutOn(checkout: string, node: string): void {
  nodeOfCheckout.set(checkout, node);
}

/** How a checkout's `npm start` runs its gateway: the entry tsx runs, and the NODE_ENV the script sets by default. */
export interface StartCommand {
  entry: string;
  nodeEnv: string | null;
}

/**
 * Reads a checkout's `npm start` script (`[NODE_ENV=${NODE_ENV:-X} ]tsx <entry>`), so that the bench
 * runs what it runs; a script of another form is refused rather than guessed at.
 */
export function startCommandOf(checkout: string): StartCommand {
  const scripts = (JSON.parse(readFileSync(join(checkout, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts;
  const script = scripts?.start ?? '';
  const match = /^(?:NODE_ENV=\$\{NODE_ENV:-(\w+)\} )?tsx (\S+)$/.exec(script);
  if (!match?.[2]) throw new Error(`${checkout}: npm start runs '${script}', which the bench cannot run as it is`);
  return { entry: match[2], nodeEnv: match[1] ?? null };
}

/** "`NODE_ENV=production`" or "`NODE_ENV` unset": what a gateway of this start command runs with (the bench's own NODE_ENV wins, as with npm start). */
export function nodeEnvText(command: StartCommand): string {
  const value = process.env.NODE_ENV || command.nodeEnv;
  return value ? `\`NODE_ENV=${value}\`` : '`NODE_ENV` unset';
}

export interface GatewayProcess {
  child: Child;
  /** Its processes: the gateway's, or with WORKERS > 1 the primary's and then each worker's. */
  pids: number[];
  /** With WORKERS > 1, each worker's id (its `worker` label in /metrics, its `X-Worker`) and pid, in the order of `pids`; else empty. */
  workers: { id: string; pid: number }[];
  /** `http://127.0.0.1:PORT`; GraphQL at `${origin}/graphql`. */
  origin: string;
  /** The variables set besides `HYPERSTUDY_API_URL`, `HOST` and `PORT` (what tables call "changed from the defaults"). */
  settings: Record<string, string>;
  metrics(): Promise<Metrics>;
}

/**
 * The gateway as the checkout's `npm start` runs it (its entry under tsx, with the NODE_ENV the script
 * sets), as one process: `node --import tsx`, without npm's and tsx's wrapper processes, so that the
 * CPU measured is the gateway's own. Configured by `settings` on top of the defaults (docs/configuration.md), listening
 * on 127.0.0.1; its JSON logs go to its log file. `checkout` is the repository it runs from: this one,
 * or another (`--baseline`) with its own `node_modules`.
 */
export async function startGateway(
  children: Children,
  name: string,
  upstreamUrl: string,
  settings: Record<string, string> = {},
  checkout: string = ROOT,
): Promise<GatewayProcess> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const command = startCommandOf(checkout);
    const nodeEnv = process.env.NODE_ENV || command.nodeEnv;
    const env = {
      ...(nodeEnv ? { NODE_ENV: nodeEnv } : {}),
      ...settings,
      HYPERSTUDY_API_URL: upstreamUrl,
      HOST: '127.0.0.1',
      PORT: String(port),
    };
    const child = children.spawnNode(name, ['--import', 'tsx', command.entry], env, checkout, nodeOfCheckout.get(checkout));
    const origin = `http://127.0.0.1:${port}`;
    try {
      await waitForHealth(child, `${origin}/health`);
      const workers = Number(settings.WORKERS ?? '1');
      const pids = [child.pid];
      const found: { id: string; pid: number }[] = [];
      if (workers > 1) {
        // Every worker listens before the primary says so; each logged its id and pid (its own log
        // lines are written asynchronously, so they may come after the primary's).
        await child.waitForOutput(/primary: every worker listening/);
        await child.waitForOutput(new RegExp(`("msg":"listening"[^]*){${workers}}`));
        const log = readFileSync(child.logPath, 'utf8');
        for (const match of log.matchAll(/"worker":"(\w+)".*"pid":(\d+),"msg":"listening"/g))
          found.push({ id: match[1] ?? '', pid: Number(match[2]) });
        // In the order of their ids, whichever listened first.
        found.sort((a, b) => Number(a.id) - Number(b.id));
        pids.push(...found.map((w) => w.pid));
        if (pids.length !== workers + 1) throw new Error(`${name}: expected ${workers} worker pids in its log, found ${pids.length - 1}`);
      }
      return { child, pids, workers: found, origin, settings, metrics: () => scrapeMetrics(`${origin}/metrics`) };
    } catch (error) {
      // Another process took the port between freePort() and the gateway's listen: try another.
      if (attempt < 3 && child.tail().includes('EADDRINUSE')) continue;
      await child.stop();
      throw error;
    }
  }
}

async function waitForHealth(child: Child, url: string, timeoutMs = 90_000): Promise<void> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    if (!child.running) throw new Error(`${child.name} exited while starting:\n${child.tail()}`);
    try {
      if ((await send(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (performance.now() > until) throw new Error(`${child.name} did not answer ${url} within ${timeoutMs} ms:\n${child.tail()}`);
    await sleep(100);
  }
}

export interface ServerProcess {
  child: Child;
  origin: string;
}

/**
 * Any HTTP server in its own process: `module` (a path from the repository root) default-exports a
 * function of `options` returning a Node request listener; `bench/servers/serve.ts` listens with it on a
 * free port and announces the URL. The hello-world ceiling is one; a scripted upstream stand-in for a
 * gateway (big bodies, slow routes) is another: write its module, start it here, and pass its origin
 * plus `/api/v3` to `startGateway`.
 */
export async function startServer(children: Children, name: string, module: string, options: unknown = {}): Promise<ServerProcess> {
  // Production mode like the gateway's `npm start`: the hello-world ceiling is graphql-yoga at its best.
  const env = { NODE_ENV: process.env.NODE_ENV || 'production' };
  const child = children.spawnNode(name, ['--import', 'tsx', 'bench/servers/serve.ts', module, JSON.stringify(options)], env);
  const [, origin = ''] = await child.waitForOutput(/listening on (http:\/\/\S+)/);
  return { child, origin };
}

export interface RedisProcess {
  child: Child;
  url: string;
}

/** A redis-server in memory only (no RDB, no AOF) on a free port of 127.0.0.1. */
export async function startRedisServer(children: Children): Promise<RedisProcess> {
  const port = await freePort();
  const child = children.spawn('redis', 'redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
  ]);
  await child.waitForOutput(/Ready to accept connections/);
  return { child, url: `redis://127.0.0.1:${port}` };
}
