import { describe, expect, it } from 'vitest';
import { delay, failure, json, startScripted, success } from './helpers/scripted.ts';
import { startGateway } from './helpers/stack.ts';

async function gatewayOn(upstreamUrl: string, env: Record<string, string> = {}) {
  const { gateway, url } = await startGateway({ HYPERSTUDY_API_URL: upstreamUrl, CACHE_TTL_MS: '0', UPSTREAM_QUOTA_GUARD: 'off', ...env });
  const gql = async (key: string, query: string, variables: Record<string, unknown> = {}) => {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key },
      body: JSON.stringify({ query, variables }),
    });
    return (await res.json()) as { data: Record<string, unknown> | null; errors?: { extensions: Record<string, unknown> }[] };
  };
  return { gateway, gql };
}

// Issue 9, item 3: before, one `nodes(ids: [300 ids])` sent 300 GETs at once into the shared pool:
// another key's request queued behind them (its latency multiplied 6×).
describe('fairness on the upstream pool', () => {
  it("bounds one operation's fan-out and lets another key's request go at once", async () => {
    const upstream = await startScripted(async (_req, res, seen) => {
      await delay(20);
      json(res, 200, success([{ id: seen.path.split('/').pop(), name: 'x' }]));
    });
    const { gateway, gql } = await gatewayOn(upstream.url);
    try {
      const ids = Array.from({ length: 300 }, (_, i) => Buffer.from(`Experiment:e${i}`).toString('base64'));
      const big = gql('hst_test_a', 'query($ids: [ID!]!) { nodes(ids: $ids) { id } }', { ids });
      while (upstream.seen.length < 40) await delay(2);
      const issued = upstream.seen.length;
      const other = await gql('hst_test_b', '{ experiment(id: "b1") { name } }');
      expect(other.data).toEqual({ experiment: { name: 'x' } });
      const fanOut = await big;
      expect((fanOut.data?.nodes as unknown[]).length).toBe(300);
      const aSeen = upstream.seen.filter((s) => s.key === 'hst_test_a');
      expect(aSeen).toHaveLength(300);
      // UPSTREAM_OPERATION_CONCURRENCY (16) at most at once…
      expect(Math.max(...aSeen.map((s) => s.keyInFlight))).toBe(16);
      // …so the other key's request went out beside them, not after the remaining ~260: within a few of
      // the fan-out's rounds of 16 (its own parse and execution take a round or two on a busy machine).
      const bIndex = upstream.seen.findIndex((s) => s.key === 'hst_test_b');
      expect(bIndex - issued).toBeLessThanOrEqual(48);
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });

  it('keys take turns when the pool is busy', async () => {
    const upstream = await startScripted(async (_req, res) => {
      await delay(20);
      json(res, 200, success([{ id: 'x', name: 'x' }]));
    });
    // One connection: every request waits for the pool; three operations of key a queue 3 × 8 requests.
    const { gateway, gql } = await gatewayOn(upstream.url, { UPSTREAM_CONNECTIONS: '1', UPSTREAM_OPERATION_CONCURRENCY: '8' });
    try {
      const ids = (p: string) => Array.from({ length: 8 }, (_, i) => Buffer.from(`Experiment:${p}${i}`).toString('base64'));
      const query = 'query($ids: [ID!]!) { nodes(ids: $ids) { id } }';
      const a = [
        gql('hst_test_a', query, { ids: ids('a') }),
        gql('hst_test_a', query, { ids: ids('c') }),
        gql('hst_test_a', query, { ids: ids('d') }),
      ];
      while (upstream.seen.length < 1) await delay(2);
      const b = await gql('hst_test_b', query, { ids: ids('b') });
      expect((b.data?.nodes as unknown[]).length).toBe(8);
      await Promise.all(a);
      const order = upstream.seen.map((s) => (s.key === 'hst_test_a' ? 'a' : 'b')).join('');
      // After the first of a's, b's 8 alternate with a's: b never waits for all 24 of a's.
      expect(order.lastIndexOf('b')).toBeLessThan(20);
      expect(order.slice(1, 17)).toMatch(/^(ab|ba){8}$/);
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });

  it('cancels what an operation still has going upstream once it has answered', async () => {
    const upstream = await startScripted(async (_req, res, seen) => {
      const offset = Number(seen.query.get('offset'));
      if (offset === 1000) {
        await delay(30);
        return json(res, 400, failure('INVALID_PARAMETER', 'No such page', { parameter: 'offset' }));
      }
      await delay(offset === 0 ? 0 : 3_000); // long enough to be in flight when the operation answers, however loaded the machine
      const records = Array.from({ length: 1000 }, (_, i) => ({ id: `p${offset + i}`, roomId: 'r1' }));
      json(res, 200, success(records, { pagination: { total: 40_000, returned: 1000, hasMore: true, limit: 1000, offset } }));
    });
    const { gateway, gql } = await gatewayOn(upstream.url);
    try {
      const res = await gql('hst_test_a', '{ participant(id: "p5", roomId: "r1") { participantId } }');
      const answeredAt = upstream.now();
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
      await delay(900);
      const pages = upstream.seen.filter((s) => s.path === '/data/participants/room/r1');
      // The first page, then UPSTREAM_PAGE_CONCURRENCY (16) pages at once; none after the answer…
      expect(pages).toHaveLength(17);
      expect(pages.filter((s) => s.at >= answeredAt)).toEqual([]);
      // …and the 15 still in flight were cut off, not read to the end.
      expect(pages.filter((s) => s.cut)).toHaveLength(15);
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });
});
