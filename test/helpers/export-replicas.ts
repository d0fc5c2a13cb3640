/** Export jobs across gateway processes on one real Redis and one shared EXPORT_DIR (the replica tests). */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { Simulator } from '../../src/simulator/server.ts';
import { startGatewayProcess, type GatewayProcess } from './process.ts';
import { startRedis, type RedisServer } from './redis.ts';
import { simulatorPerTest } from './simulator.ts';
import { EVENTS_PATH } from './exports.ts';

export const LEASE_MS = 1_500;

/** 5,000 events (five pages), read two a 3-second window at EXPORT_QUOTA_SHARE 0.5: a job is mid-way for several seconds. */
export const SLOW = {
  rooms: 5,
  participantsPerRoom: 4,
  eventsPerParticipant: 250,
  rateLimit: { enabled: true, perHour: 1000, perMinute: 4, minuteMs: 3_000 },
};

/** The environment of a replica of the slow simulator's pace on `redis` under `prefix`, sharing `dir`. */
export function replicaEnv(sim: Simulator, redis: RedisServer, prefix: string, dir: string): Record<string, string> {
  return {
    HYPERSTUDY_API_URL: sim.url,
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: prefix,
    REDIS_TIMEOUT_MS: '2000',
    REPLICAS: '2',
    EXPORT_DIR: dir,
    EXPORT_LEASE_MS: String(LEASE_MS),
    CACHE_TTL_MS: '0',
    UPSTREAM_MINUTE_LIMIT: '4',
    UPSTREAM_MINUTE_WINDOW_MS: '3000',
    EXPORT_QUOTA_SHARE: '0.5',
  };
}

/**
 * The replica tests' setup: one redis-server for the file, a simulator per test, gateway processes
 * stopped after each test, and a Redis key prefix of each test's own.
 */
export function useReplicas() {
  const simulator = simulatorPerTest();
  let redis: RedisServer | null = null;
  let prefixes = 0;
  const gateways: GatewayProcess[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  }, 30_000);
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((g) => g.stop(2_000)));
  });
  afterAll(async () => {
    await redis?.stop();
  });
  const server = (): RedisServer => {
    if (!redis) throw new Error('redis-server has not started');
    return redis;
  };
  return {
    simulator,
    redis: server,
    /** A key prefix of the test's own. */
    prefix: () => `exports${++prefixes}:`,
    /** A gateway process, stopped after the test. */
    async start(env: Record<string, string>): Promise<GatewayProcess> {
      const gateway = await startGatewayProcess(env);
      gateways.push(gateway);
      return gateway;
    },
    /** `n` replicas of `replicaEnv` (and `extra`) on one prefix and one EXPORT_DIR, and their environment. */
    async replicas(sim: Simulator, dir: string, extra: Record<string, string> = {}, n = 2) {
      const env = { ...replicaEnv(sim, server(), `exports${++prefixes}:`, dir), ...extra };
      const started = await Promise.all(Array.from({ length: n }, () => startGatewayProcess(env)));
      gateways.push(...started);
      return { gateways: started, env };
    },
  };
}

/** The offsets of the events listing's pages a job has on disk (none once its pages are gone). */
export function pagesOnDisk(dir: string, id: string): string[] {
  try {
    return readdirSync(join(dir, id, 'pages'))
      .filter((n) => n.endsWith('.json'))
      .map((n) => n.replace(/^p-0-(\d+)\.json$/, '$1'))
      .sort((a, b) => Number(a) - Number(b));
  } catch {
    return [];
  }
}

/** A job's statuses while it goes. */
export const GOING = ['QUEUED', 'RUNNING', 'WAITING'];
/** One page of the slow simulator at the jobs' pace (two requests a 3-second window): 1.5 s; two, to be sure. */
export const TWO_PAGES_MS = 3_000;

export const pair = (started: { gateways: GatewayProcess[] }): [GatewayProcess, GatewayProcess] => {
  const [a, b] = started.gateways;
  if (!a || !b) throw new Error('two replicas expected');
  return [a, b];
};

/** Waits for `check` (up to 30 s). */
export async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await delay(50);
  }
  throw new Error(`not seen: ${what}`);
}

/** A process's log lines about one job. */
export const linesOf = (g: GatewayProcess, id: string) => g.lines().filter((l) => l.export === id);
export const eventsRequests = (sim: Simulator): number => sim.stats.requests.filter((r) => r.path === EVENTS_PATH).length;
