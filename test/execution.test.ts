import { GraphQLError } from 'graphql';
import { createSchema, createYoga, type Plugin } from 'graphql-yoga';
import { useDeferStream } from '@graphql-yoga/plugin-defer-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settleListItems, useJit } from '../src/plugins/use-jit.ts';
import { type Gateway } from '../src/server.ts';
import { DASHBOARD } from './helpers/dashboard.ts';
import { startStack, startGateway, type Stack } from './helpers/stack.ts';
import { EVENTS_ONLY, FULL } from './helpers/simulator.ts';

class Boom extends Error {
  override name = 'Boom';
}

/** A schema whose fields fail every way a field can, for graphql-js and graphql-jit side by side. */
const testSchema = () =>
  settleListItems(
    createSchema({
      typeDefs: `
        type Item { id: ID! name: String }
        type Query {
          items: [Item]
          strict: [Item!]
          boom: String
          coded: String
          missing: String!
          nested: Item
          echo(n: Int!): Int
          slow: Item
        }
      `,
      resolvers: {
        Query: {
          items: () => [
            Promise.resolve({ id: 'a' }),
            new Promise((_resolve, reject) => setTimeout(() => reject(new Boom('b failed')), 5)),
            Promise.reject(new Boom('c failed')),
            { id: 'd' },
          ],
          strict: () => [{ id: 'a' }, Promise.reject(new Boom('strict failed'))],
          boom: () => {
            throw new Boom('boom');
          },
          coded: () => Promise.reject(new GraphQLError('coded', { extensions: { code: 'NOT_FOUND', detail: 1 } })),
          missing: () => null,
          nested: () => ({ id: 'n' }),
          echo: (_root: unknown, args: { n: number }) => args.n,
          slow: () => new Promise((resolve) => setTimeout(() => resolve({ id: 's', name: 'slow' }), 5)),
        },
        Item: { name: (item: { id: string }) => (item.id === 'n' ? Promise.reject(new Boom('no name')) : `item ${item.id}`) },
      },
    }),
  );

interface Seen {
  compiled: number;
  errors: GraphQLError[];
}

/** A Yoga over the test schema; with `jit`, graphql-jit executes; `seen` records compilations and the errors later plugins see. */
function server(jit: boolean) {
  const seen: Seen = { compiled: 0, errors: [] };
  const inspect: Plugin = {
    onExecute: () => ({
      onExecuteDone({ result }) {
        if ('errors' in result && result.errors) seen.errors.push(...result.errors);
      },
    }),
  };
  const yoga = createYoga({
    schema: testSchema(),
    maskedErrors: false,
    logging: false,
    plugins: [useDeferStream(), ...(jit ? [useJit({ onCompile: () => void seen.compiled++ })] : []), inspect],
  });
  const post = async (query: string, variables?: Record<string, unknown>, accept = 'application/json') => {
    const res = await yoga.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept },
      body: JSON.stringify({ query, variables }),
    });
    return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
  };
  return { post, seen };
}

/**
 * An answer with its errors in path order: graphql-jit lists the errors of non-null fields after the
 * others (the order of errors is not specified; their paths, locations and extensions are).
 */
const parsed = (reply: { status: number; body: string }) => {
  const { data, errors } = JSON.parse(reply.body) as { data: unknown; errors?: { path?: unknown[] }[] };
  const key = (e: { path?: unknown[] }): string => JSON.stringify(e.path ?? []);
  return { status: reply.status, data, errors: errors?.sort((a, b) => key(a).localeCompare(key(b))) };
};

const QUERY = `query Everything {
  items { id name }
  strict { id }
  boom
  coded
  nested { id name }
  slow { id name }
  echo(n: 3)
}`;

describe('graphql-jit execution (useJit)', () => {
  it('answers as graphql-js does, field errors and list items included, compiling a document once', async () => {
    const jit = server(true);
    const reference = server(false);
    const first = await jit.post(QUERY);
    expect(parsed(first)).toEqual(parsed(await reference.post(QUERY)));
    expect(JSON.parse(first.body)).toMatchObject({
      data: {
        items: [{ id: 'a', name: 'item a' }, null, null, { id: 'd', name: 'item d' }],
        strict: null,
        nested: { id: 'n', name: null },
        echo: 3,
      },
    });
    expect(await jit.post(QUERY)).toEqual(first);
    expect(jit.seen.compiled).toBe(1);
    // A non-null field answering null nulls the whole data, as in graphql-js.
    expect(parsed(await jit.post('{ missing nested { id } }'))).toEqual(parsed(await reference.post('{ missing nested { id } }')));
  });

  it('hands later plugins graphql-js errors: extensions, nodes and the original error', async () => {
    const jit = server(true);
    await jit.post(QUERY);
    const boom = jit.seen.errors.find((e) => e.path?.join('.') === 'boom');
    expect(boom?.originalError).toBeInstanceOf(Boom);
    expect(boom?.extensions).toEqual({});
    expect(boom?.nodes?.map((n) => n.kind)).toEqual(['Field']);
    expect(boom?.locations).toEqual([{ line: 4, column: 3 }]);
    const coded = jit.seen.errors.find((e) => e.path?.join('.') === 'coded');
    expect(coded?.extensions).toEqual({ code: 'NOT_FOUND', detail: 1 });
    expect(jit.seen.errors.map((e) => e.path?.join('.')).sort()).toEqual([
      'boom',
      'coded',
      'items.1',
      'items.2',
      'nested.name',
      'strict.1',
    ]);
  });

  it('leaves @defer/@stream and variables that do not coerce to the usual executor', async () => {
    const jit = server(true);
    const reference = server(false);
    const deferred = '{ nested { id } ... @defer { slow { id name } } }';
    const incremental = await jit.post(deferred, undefined, 'multipart/mixed');
    expect(incremental.type).toMatch(/^multipart\/mixed/);
    expect(incremental.body).toContain('"incremental":[{"data":{"slow":{"id":"s","name":"item s"}},"path":[]}]');
    expect(jit.seen.compiled).toBe(0);
    const badVariables = ['query($n: Int!) { echo(n: $n) }', { n: 'three' }] as const;
    expect(await jit.post(...badVariables)).toEqual(await reference.post(...badVariables));
    expect(await jit.post('query($n: Int!) { echo(n: $n) }', { n: 4 })).toEqual({
      status: 200,
      type: 'application/json; charset=utf-8',
      body: '{"data":{"echo":4}}',
    });
  });
});

describe('the gateway with GRAPHQL_JIT on and off', () => {
  let stack: Stack;
  let off: Gateway;
  let offUrl: string;
  beforeAll(async () => {
    stack = await startStack({ rooms: 6, participantsPerRoom: 3 });
    ({ gateway: off, url: offUrl } = await startGateway({
      HYPERSTUDY_API_URL: stack.sim.url,
      CACHE_TTL_MS: '0',
      UPSTREAM_QUOTA_GUARD: 'off',
      GRAPHQL_JIT: 'off',
    }));
  });
  afterAll(async () => {
    await off.close();
    await stack.close();
  });

  const ask = async (url: string, query: string, key: string | null, variables?: Record<string, unknown>) => {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key === null ? {} : { 'x-api-key': key }) },
      body: JSON.stringify({ query, variables }),
    });
    const { data, errors } = (await res.json()) as { data?: unknown; errors?: unknown };
    return { status: res.status, data, errors };
  };

  it.each([
    ['the dashboard', DASHBOARD, FULL, { id: 'exp_movie01' }],
    ['the dashboard with a key lacking read:ratings (FORBIDDEN per participant)', DASHBOARD, EVENTS_ONLY, { id: 'exp_movie01' }],
    ['an experiment that does not exist', '{ experiment(id: "exp_nope") { name rooms { totalCount } } }', FULL, undefined],
    ['an id that is not one', '{ room(id: "..") { roomId } experiment(id: "exp_movie01") { name } }', FULL, undefined],
    ['a bad cursor', '{ experiment(id: "exp_movie01") { events(after: "nope") { totalCount } } }', FULL, undefined],
    ['no key', '{ experiment(id: "exp_movie01") { name } }', null, undefined],
    [
      'a variable that does not coerce',
      'query($t: DateTime) { experiment(id: "exp_movie01") { events(startTime: $t) { totalCount } } }',
      FULL,
      { t: 'yesterday' },
    ],
  ])('answers %s identically', async (_what, query, key, variables) => {
    const [jit, reference] = [await ask(stack.url, query, key, variables), await ask(offUrl, query, key, variables)];
    expect(jit).toEqual(reference);
  });

  it('compiles each document once', async () => {
    const compiled = async () =>
      (await stack.gateway.metrics.registry.getSingleMetric('hsgql_jit_compilations_total')?.get())?.values.find(
        (v) => v.labels.outcome === 'compiled',
      )?.value ?? 0;
    const query = '{ experiment(id: "exp_movie01") { experimentId } }';
    const before = await compiled();
    await ask(stack.url, query, FULL);
    await ask(stack.url, query, FULL);
    expect((await compiled()) - before).toBe(1);
  });
});
