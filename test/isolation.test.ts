import { describe, expect, it } from 'vitest';
import { startStack, startGateway, type GqlReply } from './helpers/stack.ts';
import { EVENTS_ONLY, FULL, OTHER, READONLY } from './helpers/simulator.ts';

const KEYS = [FULL, READONLY, EVENTS_ONLY, OTHER];
const QUERIES = [
  '{ experiments { edges { node { experimentId name } } } }',
  '{ experiment(id: "exp_other01") { name rooms { totalCount } } }',
  '{ experiment(id: "exp_movie01") { name recordings(first: 1) { totalCount } events(first: 2) { edges { node { id } } } } }',
  '{ room(id: "room_movie01_002") { participants { edges { node { participantId sparseRatings(first: 1) { totalCount } } } } } }',
];

/** What a caller can observe: the data and the error codes by path. */
const observed = (body: GqlReply['body']) => ({
  data: body.data ?? null,
  errors: (body.errors ?? []).map((e) => `${e.path?.join('.') ?? ''}:${String(e.extensions?.code)}`).sort(),
});

describe('isolation between keys', () => {
  it('with every cache on, concurrent mixed-key requests each see exactly what their own key may see', async () => {
    const stack = await startStack({ latencyMs: 25 }, { CACHE_TTL_MS: '60000', SCOPE_CACHE_TTL_MS: '60000' });
    const { gateway: truthGateway, url: truthUrl } = await startGateway({
      HYPERSTUDY_API_URL: stack.sim.url,
      CACHE_TTL_MS: '0',
      SCOPE_CACHE_TTL_MS: '0',
      PLANNER: 'off',
      UPSTREAM_QUOTA_GUARD: 'off',
    });
    const ask = async (url: string, key: string, query: string) => {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': key },
        body: JSON.stringify({ query }),
      });
      return observed((await res.json()) as GqlReply['body']);
    };
    try {
      const truth = new Map<string, ReturnType<typeof observed>>();
      for (const key of KEYS) for (const query of QUERIES) truth.set(`${key} ${query}`, await ask(truthUrl, key, query));
      // The keys really do see different things.
      expect(new Set([...truth.values()].map((t) => JSON.stringify(t))).size).toBeGreaterThanOrEqual(8);

      const jobs = Array.from({ length: 320 }, (_, i) => ({
        key: KEYS[(i * 7) % KEYS.length] ?? FULL,
        query: QUERIES[(i * 3 + Math.floor(i / 4)) % QUERIES.length] ?? '',
      }));
      for (let at = 0; at < jobs.length; at += 40) {
        const wave = jobs.slice(at, at + 40);
        const answers = await Promise.all(wave.map((j) => ask(stack.url, j.key, j.query)));
        answers.forEach((answer, i) => {
          const job = wave[i];
          expect(answer, `${job?.key.slice(-6)} ${job?.query.slice(0, 40)}`).toEqual(truth.get(`${job?.key} ${job?.query}`));
        });
      }
      // Sharing happened (this is not a test that passes by never caching)…
      const metrics = await (await fetch(`${stack.url}/metrics`)).text();
      expect(Number(/hsgql_upstream_shared_reads_total\{how="cached"\} (\d+)/.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(100);
      // …and every upstream request carried the key of the operation that sent it.
      expect(Object.keys(stack.sim.stats.byKey()).sort()).toEqual(['demo_events', 'demo_full', 'demo_other', 'demo_readonly']);
    } finally {
      await truthGateway.close();
      await stack.close();
    }
  });
});
