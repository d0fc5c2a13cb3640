import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMocked, type Mocked } from './helpers/mocked.ts';

let mocked: Mocked;
let agent: Mocked['agent'];
let url: string;
beforeAll(async () => {
  mocked = await startMocked();
  ({ agent, url } = mocked);
});
afterAll(() => mocked.close());

describe('back-links from malformed upstream records', () => {
  it('link nowhere for a blank or dot-segment id instead of addressing another route', async () => {
    const pool = agent.get('http://upstream.test');
    pool
      .intercept({ path: '/api/v3/data/rooms/room/r1?limit=1&offset=0', method: 'GET' })
      .reply(200, { status: 'success', data: [{ id: 'r1', experimentId: '' }], metadata: { pagination: { total: 1 } } });
    pool.intercept({ path: '/api/v3/data/events/room/r1?limit=1000&offset=0', method: 'GET' }).reply(200, {
      status: 'success',
      data: [
        { id: 'e1', experimentId: ' ', roomId: '', participantId: '' },
        { id: 'e2', experimentId: '..', roomId: '.', participantId: '..' },
      ],
      metadata: { pagination: { total: 2 } },
    });
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'hst_test_k' },
      body: JSON.stringify({
        query:
          '{ room(id: "r1") { experiment { name } events { edges { node { id experiment { name } room { roomId } participant { name } } } } } }',
      }),
    });
    const body = (await res.json()) as { data: unknown; errors?: unknown };
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({
      room: {
        experiment: null,
        events: {
          edges: [
            { node: { id: 'e1', experiment: null, room: null, participant: null } },
            { node: { id: 'e2', experiment: null, room: null, participant: null } },
          ],
        },
      },
    });
    // Only the two intercepted requests were made: a blank id reached no other route.
    agent.assertNoPendingInterceptors();
  });
});
