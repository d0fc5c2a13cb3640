import { afterAll, beforeAll } from 'vitest';
import { startSimulator, type Simulator } from '../../src/simulator/server.ts';
import { startGatewayProcess, type GatewayProcess } from './process.ts';
import { startRedis, type RedisServer } from './redis.ts';
import { delay } from './scripted.ts';
import { subscribeSse, type SseSubscription } from './sse.ts';
import { FULL, NO_RATE_LIMIT } from './simulator.ts';

// Gateway processes (src/main.ts, as npm start runs them) sharing one Redis, in front of the simulator
// in the test's process, whose request log says which subscription's poller sent each request (X-Request-Id).

export const EXP = 'exp_movie01';
export const LEASE_MS = 1_500;
export const INTERVAL_MS = 300;
export const FAST = {
  UPSTREAM_QUOTA_GUARD: 'on',
  UPSTREAM_HOURLY_LIMIT: '1000000',
  UPSTREAM_MINUTE_LIMIT: '1000000',
  LIVE_MIN_INTERVAL_MS: String(INTERVAL_MS),
  LIVE_LATE_MS: '600000',
  LIVE_LEASE_MS: String(LEASE_MS),
  CACHE_TTL_MS: '0',
  REPLICAS: '2',
  // Generous: on a busy machine a slow answer would turn the state local, which only one test is about.
  REDIS_TIMEOUT_MS: '2000',
};
export const ROOM_EVENTS = `subscription($room: ID!) { roomEvents(roomId: $room) { id eventType } }`;
export type Events = { roomEvents: { id: string; eventType: string } };

export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await delay(25)) if (await check()) return;
  throw new Error(`not within ${timeoutMs} ms`);
}

export const idsOf = (sub: SseSubscription<Events>): (string | undefined)[] => sub.payloads.map((p) => p.data?.roomEvents.id);

/** Every value Redis holds (strings, hashes, sorted sets, streams) and every key name, as one text. */
export async function everythingIn(r: RedisServer): Promise<string> {
  const parts: string[] = [];
  for (const key of await r.client.keys('*')) {
    parts.push(key);
    const type = await r.client.type(key);
    if (type === 'string') parts.push(String(await r.client.get(key)));
    else if (type === 'hash') parts.push(JSON.stringify(await r.client.hgetall(key)));
    else if (type === 'zset') parts.push(JSON.stringify(await r.client.zrange(key, 0, -1)));
    else if (type === 'stream') parts.push(JSON.stringify(await r.client.xrange(key, '-', '+')));
    else parts.push(`<${type}>`);
  }
  return parts.join('\n');
}

/**
 * A Redis and a live simulator for one test file (started before its tests, stopped after), and the
 * gateway processes and subscriptions its groups start on them.
 */
export function useFleet() {
  let redis: RedisServer | undefined;
  let sim: Simulator | undefined;
  let prefixes = 0;
  const subs: SseSubscription[] = [];
  const gateways: GatewayProcess[] = [];
  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} has not started`);
    return value;
  };

  beforeAll(async () => {
    redis = await startRedis();
    sim = await startSimulator({
      rateLimit: NO_RATE_LIMIT,
      live: { rate: 40, tickMs: 250, roomEveryMs: 0, paused: true },
    });
  }, 30_000);

  /** Ends the subscriptions started so far. */
  function unsubscribe(): void {
    for (const s of subs.splice(0)) s.close();
  }

  /** Ends the subscriptions and gateways started so far (after each group, so that none polls into the next). */
  async function cleanup(): Promise<void> {
    unsubscribe();
    await Promise.all(gateways.splice(0).map((g) => g.stop()));
  }

  afterAll(async () => {
    await cleanup();
    await sim?.close();
    await redis?.stop();
  });

  const fleet = {
    get redis(): RedisServer {
      return need(redis, 'Redis');
    },
    get sim(): Simulator {
      return need(sim, 'The simulator');
    },
    /** The number of the last gateway pair's Redis key prefix (`fleet<n>:`). */
    get prefixes(): number {
      return prefixes;
    },
    /** Subscriptions to end after the group (those not started by `subscribe`). */
    subs,
    unsubscribe,
    cleanup,
    async gatewayPair(env: Record<string, string> = {}): Promise<[GatewayProcess, GatewayProcess]> {
      const all = {
        ...FAST,
        HYPERSTUDY_API_URL: fleet.sim.url,
        REDIS_URL: fleet.redis.url,
        REDIS_KEY_PREFIX: `fleet${++prefixes}:`,
        ...env,
      };
      const pair = await Promise.all([startGatewayProcess(all), startGatewayProcess(all)]);
      gateways.push(...pair);
      return pair;
    },
    /** One gateway process on a key prefix of its own (`prefix`). */
    async gateway(env: Record<string, string> = {}): Promise<{ gateway: GatewayProcess; prefix: string }> {
      const prefix = `fleet${++prefixes}:`;
      const gateway = await startGatewayProcess({
        ...FAST,
        HYPERSTUDY_API_URL: fleet.sim.url,
        REDIS_URL: fleet.redis.url,
        REDIS_KEY_PREFIX: prefix,
        ...env,
      });
      gateways.push(gateway);
      return { gateway, prefix };
    },
    async subscribe(gateway: GatewayProcess, room: string, requestId: string): Promise<SseSubscription<Events>> {
      const sub = await subscribeSse<Events>(gateway.url, ROOM_EVENTS, { variables: { room }, headers: { 'x-request-id': requestId } });
      subs.push(sub);
      return sub;
    },
    /** Requests to a room's events listing, by the subscription whose poller sent them. */
    pollsOf: (room: string, requestId: string): number =>
      fleet.sim.stats.requests.filter((r) => r.path.endsWith(`/data/events/room/${room}`) && r.requestId?.startsWith(`${requestId}:`))
        .length,
    /** Writes `n` events to a room straight to the upstream; their ids in order. */
    async write(room: string, n: number, tag: string): Promise<string[]> {
      const url = fleet.sim.url;
      const participantId = String(
        (
          (await (await fetch(`${url}/data/participants/room/${room}?limit=1`, { headers: { 'x-api-key': FULL } })).json()) as {
            data: { id: string }[];
          }
        ).data[0]?.id,
      );
      const events = Array.from({ length: n }, (_, i) => ({
        experimentId: EXP,
        roomId: room,
        participantId,
        eventType: `custom.${tag}_${i}`,
        timestamp: new Date(Date.now() + i).toISOString(),
      }));
      const res = await fetch(`${url}/data/events/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': FULL },
        body: JSON.stringify({ events }),
      });
      return ((await res.json()) as { data: { eventIds: string[] }[] }).data[0]?.eventIds ?? [];
    },
  };
  return fleet;
}
