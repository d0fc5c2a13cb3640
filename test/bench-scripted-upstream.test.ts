import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import scriptedUpstream from '../bench/servers/scripted-upstream.ts';
import { type Gateway } from '../src/server.ts';
import { call } from './helpers/http.ts';
import { startGateway } from './helpers/stack.ts';

/** The bench's scripted upstream stand-in must speak the envelope the gateway reads, pages included. */
describe('the bench’s scripted upstream stand-in', () => {
  const upstream = createServer(scriptedUpstream({ records: 2_500, recordBytes: 5 }));
  let gateway: Gateway;
  let url = '';
  beforeAll(async () => {
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()));
    const { port } = upstream.address() as AddressInfo;
    ({ gateway, url } = await startGateway({
      HYPERSTUDY_API_URL: `http://127.0.0.1:${port}/api/v3`,
      CACHE_TTL_MS: '0',
      UPSTREAM_QUOTA_GUARD: 'off',
    }));
  });
  afterAll(async () => {
    await gateway.close();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  it('answers any key with an experiment and paged listings', async () => {
    const reply = await call<{ data: unknown; errors?: unknown }>(`${url}/graphql`, {
      key: 'hst_test_any_key_at_all',
      body: {
        query: `{ experiment(id: "exp_x") {
          name
          head: events(first: 2) { totalCount pageInfo { hasNextPage } edges { node { id onset participantId } } }
          tail: events(last: 1) { edges { node { id } } }
        } }`,
      },
    });
    expect(reply.body.errors).toBeUndefined();
    expect(reply.body.data).toEqual({
      experiment: {
        name: 'Scripted experiment',
        head: {
          totalCount: 2_500,
          pageInfo: { hasNextPage: true },
          edges: [
            { node: { id: 'rec_0', onset: 0, participantId: 'ppt_scripted' } },
            { node: { id: 'rec_1', onset: 1000, participantId: 'ppt_scripted' } },
          ],
        },
        tail: { edges: [{ node: { id: 'rec_2499' } }] },
      },
    });
  });
});
