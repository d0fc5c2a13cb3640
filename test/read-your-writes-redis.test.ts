import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayProcess, type GatewayProcess } from './helpers/process.ts';
import { startRedis, type RedisServer } from './helpers/redis.ts';
import { delay, json, startScripted, success, type Scripted } from './helpers/scripted.ts';

const QUERY = '{ experiment(id: "e1") { name } }';
const KEY = 'hst_test_ryw';

interface Answer {
  data: { experiment?: { name: string }; updateExperiment?: { name: string } };
  extensions: { upstream: { requests: number; cacheHits: number } };
}

// Two gateway processes (src/main.ts, as npm start runs them) sharing one Redis, in front of an upstream
// that answers the current name, slowly while `slow` is set.
describe('read-your-writes across two processes sharing Redis', () => {
  let redis: RedisServer;
  let upstream: Scripted;
  let a: GatewayProcess;
  let b: GatewayProcess;
  let name = 'old';
  let slow = false;

  beforeAll(async () => {
    redis = await startRedis();
    upstream = await startScripted(async (req, res) => {
      if (req.method === 'PUT') {
        let body = '';
        for await (const chunk of req) body += String(chunk);
        name = (JSON.parse(body) as { name: string }).name;
        return json(res, 200, success([{ id: 'e1', name }]));
      }
      const answer = name;
      if (slow) await delay(600);
      json(res, 200, success([{ id: 'e1', name: answer }]));
    });
    // Generous REDIS_TIMEOUT_MS: on a busy machine a slow answer would turn a process's state local.
    const env = { HYPERSTUDY_API_URL: upstream.url, REDIS_URL: redis.url, CACHE_TTL_MS: '60000', REDIS_TIMEOUT_MS: '2000' };
    [a, b] = await Promise.all([startGatewayProcess(env), startGatewayProcess(env)]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await upstream?.close();
    await redis?.stop();
  });

  const gql = async (gateway: GatewayProcess, query: string): Promise<Answer> => {
    const res = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': KEY },
      body: JSON.stringify({ query }),
    });
    return (await res.json()) as Answer;
  };

  it('after a write through one process, the other answers nothing older: not from its memory, Redis, or a read it had in flight', async () => {
    // Cached by B, found by A.
    expect((await gql(b, QUERY)).data.experiment?.name).toBe('old');
    // B stores the answer in Redis after answering: wait until it is there (a cache entry, `…}:c:…`).
    for (const end = Date.now() + 5_000; Date.now() < end; await delay(25)) {
      if ([...(await redis.keys()).keys()].some((k) => k.includes('}:c:'))) break;
    }
    const cached = await gql(a, QUERY);
    expect([cached.data.experiment?.name, cached.extensions.upstream.requests, cached.extensions.upstream.cacheHits]).toEqual([
      'old',
      0,
      1,
    ]);
    expect(upstream.seen.map((s) => s.method)).toEqual(['GET']);

    // A write through A…
    const write = await gql(a, 'mutation { updateExperiment(id: "e1", input: { name: "new" }) { name } }');
    expect(write.data.updateExperiment?.name).toBe('new');
    // …and B, which holds the old answer in memory (and Redis holds it too), reads the new one.
    const afterWrite = await gql(b, QUERY);
    expect([afterWrite.data.experiment?.name, afterWrite.extensions.upstream.requests]).toEqual(['new', 1]);
    await delay(100);
    const shared = await gql(a, QUERY);
    expect([shared.data.experiment?.name, shared.extensions.upstream.requests]).toEqual(['new', 0]);
    expect(upstream.seen.map((s) => s.method)).toEqual(['GET', 'PUT', 'GET']);

    // B has a slow read in flight (after another write cleared the cache) when A writes again: B's
    // reads after that write do not join it.
    await gql(a, 'mutation { updateExperiment(id: "e1", input: { name: "second" }) { name } }');
    slow = true;
    const inFlight = gql(b, QUERY);
    while (upstream.seen.length < 5) await delay(5);
    slow = false;
    await gql(a, 'mutation { updateExperiment(id: "e1", input: { name: "third" }) { name } }');
    const notJoined = await gql(b, QUERY);
    expect([notJoined.data.experiment?.name, notJoined.extensions.upstream.requests]).toEqual(['third', 1]);
    expect((await inFlight).data.experiment?.name).toBe('second');
    await delay(700);
    // The slow read's older answer was not stored over the newer one.
    const last = await gql(a, QUERY);
    expect([last.data.experiment?.name, last.extensions.upstream.requests]).toEqual(['third', 0]);
    expect(upstream.seen.map((s) => s.method)).toEqual(['GET', 'PUT', 'GET', 'PUT', 'GET', 'PUT', 'GET']);
  });
});
