import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMocked, type Mocked } from './helpers/mocked.ts';
import { deeperThan, MAX_JSON_DEPTH } from '../src/schema/json.ts';

/** A JSON text nested `depth` levels deep (built as text: the test must not recurse either). */
const nested = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

let mocked: Mocked;
let agent: Mocked['agent'];
let url: string;
beforeAll(async () => {
  mocked = await startMocked();
  ({ agent, url } = mocked);
});
afterAll(() => mocked.close());

const post = async (body: string) => {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'hst_test_k' },
    body,
  });
  return {
    status: res.status,
    body: (await res.json()) as { data?: unknown; errors?: { message: string; path?: unknown[]; extensions?: Record<string, unknown> }[] },
  };
};

describe('deeply nested JSON', () => {
  it('measures depth without recursion', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(deeperThan(deep, MAX_JSON_DEPTH)).toBe(true);
    expect(deeperThan(JSON.parse(nested(MAX_JSON_DEPTH)), MAX_JSON_DEPTH)).toBe(false);
    expect(deeperThan(JSON.parse(nested(MAX_JSON_DEPTH + 1)), MAX_JSON_DEPTH)).toBe(true);
    expect(deeperThan({ a: [1, 'x', null], b: { c: true } }, 2)).toBe(false);
  });

  it('fails only the field of an upstream value nested 5,000 levels deep; the rest arrives', async () => {
    const pool = agent.get('http://upstream.test');
    pool
      .intercept({ path: '/api/v3/data/rooms/room/r1?limit=1&offset=0', method: 'GET' })
      .reply(200, { status: 'success', data: [{ id: 'r1', experimentId: 'e1' }], metadata: { pagination: { total: 1 } } });
    pool
      .intercept({ path: '/api/v3/data/events/room/r1?limit=1000&offset=0', method: 'GET' })
      .reply(
        200,
        `{"status":"success","data":[{"id":"e1","response":${nested(5000)}},{"id":"e2","response":{"value":1}}],"metadata":{"pagination":{"total":2}}}`,
      );
    const res = await post(JSON.stringify({ query: '{ room(id: "r1") { roomId events { edges { node { id response } } } } }' }));
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({
      room: { roomId: 'r1', events: { edges: [{ node: { id: 'e1', response: null } }, { node: { id: 'e2', response: { value: 1 } } }] } },
    });
    expect(res.body.errors).toEqual([
      expect.objectContaining({
        message: `The HyperStudy API sent a value nested deeper than ${MAX_JSON_DEPTH} levels`,
        path: ['room', 'events', 'edges', 0, 'node', 'response'],
        extensions: expect.objectContaining({ code: 'UPSTREAM_ERROR' }),
      }),
    ]);
  });

  it('fails the list item nested too deep (its list of non-null items is null), and nulls the record of a non-null raw', async () => {
    const pool = agent.get('http://upstream.test');
    pool
      .intercept({ path: '/api/v3/data/rooms/room/r2?limit=1&offset=0', method: 'GET' })
      .reply(200, { status: 'success', data: [{ id: 'r2', experimentId: 'e1' }], metadata: { pagination: { total: 1 } } });
    pool
      .intercept({ path: '/api/v3/data/variables/room/r2', method: 'GET' })
      .reply(200, `{"status":"success","data":[],"metadata":{"timeline":[{"stateId":"s1"},${nested(100)}]}}`);
    pool
      .intercept({ path: '/api/v3/data/events/room/r2?limit=1000&offset=0', method: 'GET' })
      .reply(200, `{"status":"success","data":[{"id":"e1","deep":${nested(100)}}],"metadata":{"pagination":{"total":1}}}`);
    const res = await post(JSON.stringify({ query: '{ room(id: "r2") { variables { timeline } events { edges { node { raw } } } } }' }));
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ room: { variables: { timeline: null }, events: null } });
    const deep = {
      message: `The HyperStudy API sent a value nested deeper than ${MAX_JSON_DEPTH} levels`,
      locations: expect.any(Array),
      extensions: { code: 'UPSTREAM_ERROR', upstream: { status: null, code: null, details: { maxDepth: MAX_JSON_DEPTH } } },
    };
    expect(res.body.errors).toEqual(
      expect.arrayContaining([
        { ...deep, path: ['room', 'variables', 'timeline', 1] },
        { ...deep, path: ['room', 'events', 'edges', 0, 'node', 'raw'] },
      ]),
    );
    expect(res.body.errors).toHaveLength(2);
  });

  it('refuses a JSON variable nested deeper than the bound as BAD_USER_INPUT, before any upstream call', async () => {
    const res = await post(
      `{"query":"mutation($s: JSON) { validateExperiment(input: { variables: $s }) { valid } }","variables":{"s":${nested(5000)}}}`,
    );
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([expect.objectContaining({ extensions: { code: 'BAD_USER_INPUT' } })]);
    expect(res.body.errors?.[0]?.message).toMatch(/A JSON value may nest at most 64 levels$/);
  });
});

describe('variables that do not coerce', () => {
  it.each([
    ['a DateTime of "yesterday"', 'query($t: DateTime) { room(id: "r1") { events(startTime: $t) { totalCount } } }', { t: 'yesterday' }],
    ['a missing required variable', 'mutation($e: [EventInput!]!) { recordEvents(events: $e) { recorded } }', {}],
    ['an unknown category kind', 'query($c: EventCategory) { room(id: "r1") { events(category: $c) { totalCount } } }', { c: 7 }],
  ])('%s is BAD_USER_INPUT with HTTP 400', async (_what, query, variables) => {
    const res = await post(JSON.stringify({ query, variables }));
    expect(res.status).toBe(400);
    expect(res.body.errors?.map((e) => e.extensions?.code)).toEqual(['BAD_USER_INPUT']);
  });
});
