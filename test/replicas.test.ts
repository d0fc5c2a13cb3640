import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { createGateway, type Gateway } from '../src/server.ts';
import { startSimulator, type Simulator, type SimulatorOptions } from '../src/simulator/server.ts';
import { keyHash } from '../src/state/shared-reads.ts';
import { proxyRedis, startRedis, type RedisServer } from './helpers/redis.ts';
import { delay } from './helpers/scripted.ts';
import { type GqlReply } from './helpers/stack.ts';
import { FULL, NO_RATE_LIMIT } from './helpers/simulator.ts';

// Two gateways as two replicas: two createGateway instances in this test process, each with its own
// upstream pool, coalescing, memory cache, local quota and its own Redis connection, sharing only the
// Redis server and the simulator, which is what these properties depend on. (Separate processes are
// tested in workers.test.ts and read-your-writes-redis.test.ts.)

let redis: RedisServer;
let prefixes = 0;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

interface Replicas {
  sim: Simulator;
  /** Their REDIS_KEY_PREFIX. */
  prefix: string;
  gateways: [Gateway, Gateway];
  urls: [string, string];
  gql(replica: 0 | 1, query: string): Promise<GqlReply>;
  metric(replica: 0 | 1, line: string): Promise<number>;
  close(): Promise<void>;
}

/** `second`: settings of the second replica only (e.g. its own REDIS_URL). */
async function startReplicas(
  sim: Partial<SimulatorOptions>,
  env: Record<string, string>,
  second: Record<string, string> = {},
): Promise<Replicas> {
  const simulator = await startSimulator({ rateLimit: NO_RATE_LIMIT, ...sim });
  const prefix = `replicas${++prefixes}:`;
  const settings = {
    HYPERSTUDY_API_URL: simulator.url,
    LOG_LEVEL: 'silent',
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: prefix,
    REPLICAS: '2',
    // Generous: on a busy machine a slow answer would turn the state local, which only the Redis fault tests are about.
    REDIS_TIMEOUT_MS: '2000',
    ...env,
  };
  const gateways: [Gateway, Gateway] = [createGateway(loadConfig(settings)), createGateway(loadConfig({ ...settings, ...second }))];
  const urls: [string, string] = [await gateways[0].listen(0, '127.0.0.1'), await gateways[1].listen(0, '127.0.0.1')];
  return {
    sim: simulator,
    prefix,
    gateways,
    urls,
    async gql(replica, query) {
      const res = await fetch(`${urls[replica]}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': FULL },
        body: JSON.stringify({ query }),
      });
      return { status: res.status, body: (await res.json()) as GqlReply['body'] };
    },
    async metric(replica, line) {
      const text = await (await fetch(`${urls[replica]}/metrics`)).text();
      const escaped = line.replace(/[{}"]/g, '\\$&');
      return Number(new RegExp(`^${escaped} (\\d+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
    },
    async close() {
      await Promise.all(gateways.map((g) => g.close()));
      await simulator.close();
    },
  };
}

const NAME = '{ experiment(id: "exp_movie01") { name } }';
const codeOf = (reply: GqlReply): string => String(reply.body.errors?.[0]?.extensions?.code ?? 'ok');

describe('two replicas sharing Redis', () => {
  it('never draw a 429 from traffic spread over both: the excess over the per-minute limit is RATE_LIMITED by the gateways', async () => {
    // REPLICAS=1: each replica would take the whole limit if it kept its quota to itself (12 requests, 6 of them 429).
    const r = await startReplicas(
      { rateLimit: { enabled: true, perHour: 1000, perMinute: 6 } },
      { CACHE_TTL_MS: '0', UPSTREAM_MINUTE_LIMIT: '6', REPLICAS: '1' },
    );
    try {
      // 20 different experiments at once (nothing to coalesce), alternating between the replicas: one endpoint, one minute.
      const replies = await Promise.all(
        Array.from({ length: 20 }, (_, i) => r.gql(i % 2 === 0 ? 0 : 1, `{ experiment(id: "exp_missing_${i}") { name } }`)),
      );
      const codes = replies.map(codeOf);
      expect(codes.filter((c) => c === 'NOT_FOUND').length).toBe(6);
      expect(codes.filter((c) => c === 'RATE_LIMITED').length).toBe(14);
      for (const reply of replies.filter((x) => codeOf(x) === 'RATE_LIMITED'))
        expect(reply.body.errors?.[0]?.extensions).toMatchObject({
          code: 'RATE_LIMITED',
          retryAfter: expect.any(Number),
          upstream: { status: null },
        });
      expect(r.sim.stats.total).toBe(6);
      expect(r.sim.stats.requests.map((q) => q.status)).toEqual([404, 404, 404, 404, 404, 404]);
      // The limit holds in either replica alone, too.
      expect(codeOf(await r.gql(0, NAME))).toBe('RATE_LIMITED');
      expect(codeOf(await r.gql(1, NAME))).toBe('RATE_LIMITED');
      expect(r.sim.stats.total).toBe(6);
    } finally {
      await r.close();
    }
  });

  it('answer a read cached by one from the cache in the other', async () => {
    const r = await startReplicas({}, { CACHE_TTL_MS: '60000' });
    try {
      const first = await r.gql(0, NAME);
      expect(first.body.data).toEqual({ experiment: { name: 'Movie Watching Study' } });
      expect(first.body.extensions?.upstream).toMatchObject({ requests: 1, cacheHits: 0 });
      await delay(50); // the answer is stored in Redis after it is returned
      const second = await r.gql(1, NAME);
      expect(second.body.data).toEqual({ experiment: { name: 'Movie Watching Study' } });
      expect(second.body.extensions?.upstream).toMatchObject({ requests: 0, cacheHits: 1 });
      expect(r.sim.stats.total).toBe(1);
      expect(await r.metric(1, 'hsgql_upstream_shared_reads_total{how="cached"}')).toBe(1);
    } finally {
      await r.close();
    }
  });

  it('block a key in both once the upstream answered one of them 429', async () => {
    const r = await startReplicas(
      { rateLimit: { enabled: true, perHour: 1000, perMinute: 1 } },
      { CACHE_TTL_MS: '0', UPSTREAM_QUOTA_GUARD: 'off' },
    );
    try {
      expect(codeOf(await r.gql(0, NAME))).toBe('ok');
      const limited = await r.gql(0, NAME);
      expect(limited.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', upstream: { status: 429 } });
      expect(r.sim.stats.total).toBe(2);
      // The other replica does not ask: not the same endpoint, nor another.
      for (const query of [NAME, '{ experiments { totalCount } }']) {
        const reply = await r.gql(1, query);
        expect(reply.body.errors?.[0]?.extensions).toMatchObject({
          code: 'RATE_LIMITED',
          retryAfter: expect.any(Number),
          upstream: { status: null },
        });
        expect(Number(reply.body.errors?.[0]?.extensions?.retryAfter)).toBeGreaterThan(50);
      }
      expect(r.sim.stats.total).toBe(2);
    } finally {
      await r.close();
    }
  });

  it('keep answering while Redis is killed mid-run, and share again once it is back', async () => {
    const r = await startReplicas({ rooms: 2, participantsPerRoom: 2 }, { CACHE_TTL_MS: '60000', REDIS_TIMEOUT_MS: '100' });
    const queries = [NAME, '{ experiments { totalCount } }', '{ experiment(id: "exp_movie01") { rooms { totalCount } } }'];
    try {
      const answers: string[] = [];
      for (let i = 0; i < 30; i++) {
        if (i === 10) await redis.kill();
        if (i === 20) await redis.start();
        const reply = await r.gql(i % 2 === 0 ? 0 : 1, queries[i % queries.length] ?? NAME);
        answers.push(reply.status === 200 && reply.body.data && !reply.body.errors ? 'ok' : JSON.stringify(reply.body.errors));
      }
      expect(answers).toEqual(Array.from({ length: 30 }, () => 'ok'));
      for (const replica of [0, 1] as const) {
        for (let i = 0; i < 100 && (await r.metric(replica, 'hsgql_shared_state_redis_up')) !== 1; i++) await delay(50);
        expect(await r.metric(replica, 'hsgql_shared_state_redis_up')).toBe(1);
        expect(await r.metric(replica, 'hsgql_shared_state_transitions_total{to="down"}')).toBe(1);
        expect(await r.metric(replica, 'hsgql_shared_state_transitions_total{to="up"}')).toBe(1);
        expect(await r.metric(replica, 'hsgql_shared_state_fallbacks_total{part="cache"}')).toBeGreaterThan(0);
        expect(await r.metric(replica, 'hsgql_quota_limit{window="minute"}')).toBe(100);
      }
      // Shared again: what one reads, the other finds.
      const before = r.sim.stats.total;
      const fresh = '{ experiment(id: "exp_joint02") { name } }';
      expect((await r.gql(1, fresh)).body.extensions?.upstream).toMatchObject({ requests: 1 });
      await delay(50);
      expect((await r.gql(0, fresh)).body.extensions?.upstream).toMatchObject({ requests: 0, cacheHits: 1 });
      expect(r.sim.stats.total).toBe(before + 1);
    } finally {
      await r.close();
    }
  });
});

describe('two replicas through Redis faults', () => {
  // An hour of 20 requests, in the simulator and in the gateways; the cache off, so that each query is one upstream request.
  const HOURLY: Partial<SimulatorOptions> = { rateLimit: { enabled: true, perHour: 20, perMinute: 100 } };
  const QUOTA = { CACHE_TTL_MS: '0', UPSTREAM_HOURLY_LIMIT: '20' };

  async function redisUp(r: Replicas, replica: 0 | 1, up: 0 | 1): Promise<void> {
    for (let i = 0; i < 100 && (await r.metric(replica, 'hsgql_shared_state_redis_up')) !== up; i++) await delay(50);
    expect(await r.metric(replica, 'hsgql_shared_state_redis_up')).toBe(up);
  }

  /** NAME `n` times in turn through `replica`: 'ok', or the error's code. */
  async function spend(r: Replicas, replica: 0 | 1, n: number): Promise<string[]> {
    const codes: string[] = [];
    for (let i = 0; i < n; i++) codes.push(codeOf(await r.gql(replica, NAME)));
    return codes;
  }

  const times = (n: number, code: string): string[] => Array.from({ length: n }, () => code);

  /** Replica 1 spends 2 of the hour's 20, then replica 0 spends 14: 16 spent, and replica 1 last heard of 2. */
  async function spendSixteen(r: Replicas): Promise<void> {
    expect(await spend(r, 1, 2)).toEqual(times(2, 'ok'));
    expect(await spend(r, 0, 14)).toEqual(times(14, 'ok'));
    await redis.kill();
    await redisUp(r, 0, 0);
    await redisUp(r, 1, 0);
  }

  it("after Redis is killed, the two together never send more than what was left of the hour (each its share of what is left, from Redis's last count or the upstream's remaining)", async () => {
    const r = await startReplicas(HOURLY, QUOTA);
    try {
      await spendSixteen(r);
      // Replica 1 starts from the 2 it knew of, each request it sends counting twice (REPLICAS=2): 2 + 2 ≤ 20,
      // so one goes. Its answer says 3 remain (17 spent): it then counts at least 17, so 17 + 2 ≤ 20, one more
      // (18 spent), and 19 + 2 > 20: no more.
      expect(await spend(r, 1, 10)).toEqual([...times(2, 'ok'), ...times(8, 'RATE_LIMITED')]);
      // Replica 0 knew of 16: 16 + 2 ≤ 20, one goes (19 spent; it now counts 19), then 19 + 2 > 20.
      expect(await spend(r, 0, 10)).toEqual(['ok', ...times(9, 'RATE_LIMITED')]);
      // 19 of the 20 the upstream allows, and it refused none.
      expect(r.sim.stats.total).toBe(19);
      expect(new Set(r.sim.stats.requests.map((q) => q.status))).toEqual(new Set([200]));
    } finally {
      await r.close();
      await redis.start();
    }
  });

  it('after Redis restarts empty, its hour window holds the spend the replicas knew of, not only what one sent meanwhile', async () => {
    const r = await startReplicas(HOURLY, QUOTA);
    try {
      await spendSixteen(r);
      // Replica 1 sends one meanwhile; the upstream's answer tells it 17 were spent.
      expect(await spend(r, 1, 1)).toEqual(['ok']);
      await redis.start();
      await redisUp(r, 0, 1);
      await redisUp(r, 1, 1);
      // Replica 1 added the one it sent and raised the window to the 17 it knew of; replica 0 knew of 16, which it holds.
      const window = await redis.client.hgetall(`${r.prefix}{${keyHash(FULL)}}:q:h`);
      expect(Object.values(window).reduce((sum, n) => sum + Number(n), 0)).toBe(17);
      expect(r.sim.stats.total).toBe(17);
      // So the fleet sends the 3 left of the hour, and no more.
      expect([...(await spend(r, 0, 2)), ...(await spend(r, 1, 2))]).toEqual(['ok', 'ok', 'ok', 'RATE_LIMITED']);
      expect(r.sim.stats.total).toBe(20);
      expect(new Set(r.sim.stats.requests.map((q) => q.status))).toEqual(new Set([200]));
    } finally {
      await r.close();
      await redis.start();
    }
  });

  it("a blip on one replica's link to Redis: it answers nothing another replica's write superseded, while cut off or after", async () => {
    const proxy = await proxyRedis(redis);
    const r = await startReplicas({}, { CACHE_TTL_MS: '60000' }, { REDIS_URL: proxy.url });
    try {
      // Replica 1 reads and keeps the answer (in its memory and in Redis).
      expect((await r.gql(1, NAME)).body.data).toEqual({ experiment: { name: 'Movie Watching Study' } });
      proxy.cut();
      await redisUp(r, 1, 0);
      expect(await r.metric(0, 'hsgql_shared_state_redis_up')).toBe(1);
      // Cut off, it reads through to the upstream…
      const during = await r.gql(1, NAME);
      expect([during.body.data, during.body.extensions?.upstream]).toMatchObject([
        { experiment: { name: 'Movie Watching Study' } },
        { requests: 1, cacheHits: 0 },
      ]);
      // …replica 0 renames the experiment…
      const write = await r.gql(0, 'mutation { updateExperiment(id: "exp_movie01", input: { name: "Renamed" }) { name } }');
      expect(write.body.data).toEqual({ updateExperiment: { name: 'Renamed' } });
      // …and replica 1, still cut off, answers the new name (from the upstream), not the one it read before.
      const after = await r.gql(1, NAME);
      expect([after.body.data, after.body.extensions?.upstream]).toMatchObject([
        { experiment: { name: 'Renamed' } },
        { requests: 1, cacheHits: 0 },
      ]);
      proxy.restore();
      await redisUp(r, 1, 1);
      // Back on Redis, its memory's first answer is of an older generation than the key's: not served either.
      const back = await r.gql(1, NAME);
      expect([back.body.data, back.body.extensions?.upstream]).toMatchObject([{ experiment: { name: 'Renamed' } }, { requests: 1 }]);
      await delay(50); // the answer is stored in Redis after it is returned
      const cached = await r.gql(0, NAME);
      expect([cached.body.data, cached.body.extensions?.upstream]).toMatchObject([
        { experiment: { name: 'Renamed' } },
        { requests: 0, cacheHits: 1 },
      ]);
    } finally {
      await r.close();
      await proxy.close();
    }
  });
});
