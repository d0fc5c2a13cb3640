import { describe, expect, it } from 'vitest';
import { delay, json, startScripted, success } from './helpers/scripted.ts';
import { startGateway } from './helpers/stack.ts';

const QUERY = '{ experiment(id: "e1") { name } }';

// Issue 9, item 6: before, a read issued after the key's write joined a GET that had started before the
// write (answering the old name), and that GET's answer was then cached for CACHE_TTL_MS.
describe('read-your-writes', () => {
  it("after a key's write, its reads never answer older data, from a request in flight or the cache", async () => {
    let name = 'old';
    const upstream = await startScripted(async (req, res, seen) => {
      if (req.method === 'PUT') {
        let body = '';
        for await (const chunk of req) body += String(chunk);
        name = (JSON.parse(body) as { name: string }).name;
        return json(res, 200, success([{ id: 'e1', name }]));
      }
      const answer = name;
      // Reads are slow: the write overtakes the first one.
      await delay(seen.key === 'hst_test_k' ? 400 : 0);
      json(res, 200, success([{ id: 'e1', name: answer }]));
    });
    const { gateway, url } = await startGateway({ HYPERSTUDY_API_URL: upstream.url, CACHE_TTL_MS: '5000' });
    const gql = async (query: string) => {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': 'hst_test_k' },
        body: JSON.stringify({ query }),
      });
      return (await res.json()) as { data: Record<string, { name: string }>; extensions: { upstream: { requests: number } } };
    };
    try {
      const first = gql(QUERY);
      while (upstream.seen.length === 0) await delay(5);
      const write = await gql('mutation { updateExperiment(id: "e1", input: { name: "new" }) { name } }');
      expect(write.data.updateExperiment?.name).toBe('new');
      const second = await gql(QUERY);
      expect(second.data.experiment?.name).toBe('new');
      // The read that started before the write answers what was true when it started…
      expect((await first).data.experiment?.name).toBe('old');
      // …and is not remembered: the next read is the cached answer of the read after the write.
      const third = await gql(QUERY);
      expect(third.data.experiment?.name).toBe('new');
      expect(third.extensions.upstream.requests).toBe(0);
      expect(upstream.seen.map((s) => s.method)).toEqual(['GET', 'PUT', 'GET']);
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });
});
