import { GraphQLError, parse } from 'graphql';
import { createSchema, createYoga, type Plugin } from 'graphql-yoga';
import { useDeferStream } from '@graphql-yoga/plugin-defer-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalLeaves, canonicalOutputs, settleListItems, useJit } from '../src/plugins/use-jit.ts';
import { schema as gatewaySchema } from '../src/schema/index.ts';
import { type Gateway } from '../src/server.ts';
import { DASHBOARD } from './helpers/dashboard.ts';
import { forwarded, json, startScripted, type Scripted } from './helpers/scripted.ts';
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
function server(jit: boolean, schema = testSchema, maskedErrors = false) {
  const seen: Seen = { compiled: 0, errors: [] };
  const inspect: Plugin = {
    onExecute: () => ({
      onExecuteDone({ result }) {
        if ('errors' in result && result.errors) seen.errors.push(...result.errors);
      },
    }),
  };
  const yoga = createYoga({
    schema: schema(),
    maskedErrors,
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

/**
 * Leaves of every kind, with values their types must serialize or refuse. `canonical` wraps the
 * resolvers as the gateway's schema is wrapped (canonicalOutputs); the reference runs them unwrapped.
 */
const leafSchema = (canonical: boolean) => () => {
  const schema = createSchema({
    typeDefs: `
      enum Kind { A B }
      enum Mapped { ONE TWO }
      type View { s: String n: Int }
      type Query {
        big: Int
        word: String
        obj: String
        flag: Boolean
        yes: Boolean
        ratio: Float
        half: Float
        id: ID
        kind: Kind
        kinds: [Kind]
        ints: [Int!]
        nested: [[Int]]
        later: Int
        laterWord: String
        mapped: Mapped
        view: View
      }
    `,
    resolvers: {
      Mapped: { ONE: 1, TWO: 2 },
      Query: {
        big: () => 2 ** 40,
        word: () => 42,
        obj: () => ({ a: 1 }),
        flag: () => 'yes',
        yes: () => true,
        ratio: () => 'x',
        half: () => '0.5',
        id: () => 7,
        kind: () => 'NOPE',
        kinds: () => ['A', 'NOPE', Promise.resolve('B'), Promise.reject(new Boom('no kind'))],
        ints: () => [1, 2 ** 40],
        nested: () => [[1, 2.5], null, [3]],
        later: () => Promise.resolve(2.5),
        laterWord: () => Promise.resolve(false),
        mapped: () => 2,
        view: () => ({ s: 5, n: 2 ** 40 }),
      },
    },
  });
  return settleListItems(canonical ? canonicalOutputs(schema) : schema);
};

interface Dashboard {
  name: string | null;
  rooms: {
    edges: {
      node: {
        status: string | null;
        participants: {
          edges: {
            node: {
              completionCode: string | null;
              events: { edges: { node: { onset: number | null; eventType: string | null } }[] };
              sparseRatings: { edges: { node: { ratingId: string | null; value: number | null } }[] };
            };
          }[];
        };
      };
    }[];
  };
}

const LEAVES = '{ big word obj flag yes ratio half id kind kinds ints nested later laterWord }';

describe('canonical leaves (graphql-jit without leaf serialization)', () => {
  it('answers as graphql-js does over the unwrapped resolvers: each value serialized, each refusal its error', async () => {
    const jit = server(true, leafSchema(true));
    const reference = server(false, leafSchema(false));
    const answer = parsed(await jit.post(LEAVES));
    expect(answer).toEqual(parsed(await reference.post(LEAVES)));
    expect(answer.data).toEqual({
      big: null,
      word: '42',
      obj: null,
      flag: null,
      yes: true,
      ratio: null,
      half: 0.5,
      id: '7',
      kind: null,
      kinds: ['A', null, 'B', null],
      ints: null,
      nested: [[1, null], null, [3]],
      later: null,
      laterWord: 'false',
    });
    expect(answer.errors?.map((e) => [JSON.stringify((e as { path?: unknown }).path), (e as { message?: string }).message])).toEqual([
      ['["big"]', 'Int cannot represent non 32-bit signed integer value: 1099511627776'],
      ['["flag"]', 'Boolean cannot represent a non boolean value: "yes"'],
      ['["ints",1]', 'Int cannot represent non 32-bit signed integer value: 1099511627776'],
      ['["kind"]', 'Enum "Kind" cannot represent value: "NOPE"'],
      ['["kinds",1]', 'Enum "Kind" cannot represent value: "NOPE"'],
      ['["kinds",3]', 'no kind'],
      ['["later"]', 'Int cannot represent non-integer value: 2.5'],
      ['["nested",0,1]', 'Int cannot represent non-integer value: 2.5'],
      ['["obj"]', 'String cannot represent value: { a: 1 }'],
      ['["ratio"]', 'Float cannot represent non numeric value: "x"'],
    ]);
  });

  it("leaves to graphql-jit's serialization the operations selecting a leaf it cannot vouch for", async () => {
    const schema = leafSchema(true)();
    expect(canonicalLeaves(schema, parse(LEAVES))).toBe(true);
    expect(canonicalLeaves(schema, parse('{ __typename big }'))).toBe(true);
    // An enum whose values are not their names; fields read as properties; introspection.
    expect(canonicalLeaves(schema, parse('{ big mapped }'))).toBe(false);
    expect(canonicalLeaves(schema, parse('{ view { s } }'))).toBe(false);
    expect(canonicalLeaves(schema, parse('{ __schema { queryType { name } } }'))).toBe(false);
    expect(canonicalLeaves(schema, parse('{ unknown }'))).toBe(false);
    const jit = server(true, leafSchema(true));
    const reference = server(false, leafSchema(false));
    for (const query of ['{ big mapped }', '{ view { s n } }'])
      expect(parsed(await jit.post(query))).toEqual(parsed(await reference.post(query)));
    expect(JSON.parse((await jit.post('{ mapped view { s n } }')).body).data).toEqual({ mapped: 'TWO', view: { s: '5', n: null } });
  });

  it("answers a wrapped resolver's refusals as each executor answered its own, masked or not", async () => {
    const query = '{ big flag kinds ints later yes }';
    const answers: Record<string, unknown> = {};
    for (const jit of [true, false])
      for (const masked of [true, false]) {
        const wrapped = parsed(await server(jit, leafSchema(true), masked).post(query));
        expect(wrapped).toEqual(parsed(await server(jit, leafSchema(false), masked).post(query)));
        answers[`${jit ? 'jit' : 'executor'}${masked ? ', masked' : ''}`] = wrapped.errors?.map((e) => (e as { message: string }).message);
      }
    const refusals = [
      'Int cannot represent non 32-bit signed integer value: 1099511627776',
      'Boolean cannot represent a non boolean value: "yes"',
      'Int cannot represent non 32-bit signed integer value: 1099511627776',
      'Enum "Kind" cannot represent value: "NOPE"',
      'no kind',
      'Int cannot represent non-integer value: 2.5',
    ];
    // graphql-jit reports its refusals as they are; the usual executor throws them as plain Errors, which
    // Yoga masks (as it masks the resolver's own error, 'no kind').
    const masked = (m: string): string => (m === 'no kind' ? 'Unexpected error.' : m);
    expect(answers).toEqual({
      jit: refusals,
      'jit, masked': refusals.map(masked),
      executor: refusals,
      'executor, masked': refusals.map(() => 'Unexpected error.'),
    });
  });

  it('leaves the values of wrapped resolvers as they were to every other execution (@defer, tables, the usual executor)', async () => {
    const fields = leafSchema(true)().getQueryType()?.getFields();
    const call = (name: string): unknown => fields?.[name]?.resolve?.({}, {}, {}, {} as never);
    expect([call('big'), call('word'), call('id'), call('kind')]).toEqual([2 ** 40, 42, 7, 'NOPE']);
    expect(fields?.big?.extensions).toEqual({ canonicalOutput: true });
  });

  it('answers @defer as the usual executor does', async () => {
    const jit = server(true, leafSchema(true));
    const reference = server(false, leafSchema(false));
    const query = '{ word ... @defer { id kind kinds half laterWord } }';
    const [a, b] = [await jit.post(query, undefined, 'multipart/mixed'), await reference.post(query, undefined, 'multipart/mixed')];
    expect(a.body.replace(/-{3,}[^\r\n]*/g, '')).toEqual(b.body.replace(/-{3,}[^\r\n]*/g, ''));
    expect(a.body).toContain('"data":{"id":"7","kind":null,"kinds":["A",null,"B",null],"half":0.5,"laterWord":"false"}');
  });

  it("vouches for the gateway's dashboard and not for fields it cannot", () => {
    expect(canonicalLeaves(gatewaySchema, parse(DASHBOARD))).toBe(true);
    // A record's Int (32-bit in GraphQL, not in the upstream's records); a field read as a property that vouches for nothing.
    expect(canonicalLeaves(gatewaySchema, parse('{ experiment(id: "e") { syncMetrics { edges { node { aggregationWindow } } } } }'))).toBe(
      false,
    );
    expect(
      canonicalLeaves(gatewaySchema, parse('{ room(id: "r") { participants { edges { node { counts { types { dataType } } } } } } }')),
    ).toBe(false);
    expect(
      canonicalLeaves(gatewaySchema, parse('{ experiment(id: "e") { name rooms { totalCount pageInfo { hasNextPage endCursor } } } }')),
    ).toBe(true);
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

  /**
   * The upstream's records with values of the wrong JSON types (as a careless upstream may send them):
   * the gateway's readers make them what the schema says or null, the same with graphql-jit's leaves
   * handed out as they are (the dashboard vouches for all its leaves) as with graphql-js serializing them.
   */
  const garbled = (record: Record<string, unknown>, i: number): Record<string, unknown> => {
    const r = { ...record };
    if ('name' in r) r.name = 42;
    if ('status' in r) r.status = false;
    if ('completionCode' in r) r.completionCode = ['x'];
    if ('onset' in r) r.onset = [String(r.onset), 'abc', r.onset, null][i % 4];
    if ('eventType' in r) r.eventType = [7, true, { a: 1 }, r.eventType][i % 4];
    if ('value' in r) r.value = i % 2 ? String(r.value) : 'high';
    if ('ratingId' in r) r.ratingId = i;
    return r;
  };

  it('answers the dashboard over records of the wrong types identically', async () => {
    const base = stack.sim.url.replace(/\/api\/v3$/, '');
    const upstream: Scripted = await startScripted(async (req, res) => {
      const { status, body } = await forwarded(base, req);
      const envelope = JSON.parse(body.toString()) as { data?: unknown };
      if (Array.isArray(envelope.data)) envelope.data = envelope.data.map((r: Record<string, unknown>, i) => garbled(r, i));
      else if (envelope.data && typeof envelope.data === 'object') envelope.data = garbled(envelope.data as Record<string, unknown>, 0);
      json(res, status, envelope);
    });
    const env = { HYPERSTUDY_API_URL: upstream.url, CACHE_TTL_MS: '0', UPSTREAM_QUOTA_GUARD: 'off' };
    const withJit = await startGateway(env);
    const without = await startGateway({ ...env, GRAPHQL_JIT: 'off' });
    try {
      const variables = { id: 'exp_movie01' };
      const [jit, reference] = [await ask(withJit.url, DASHBOARD, FULL, variables), await ask(without.url, DASHBOARD, FULL, variables)];
      expect(jit).toEqual(reference);
      const experiment = (jit.data as { experiment: Dashboard }).experiment;
      expect(experiment.name).toBe('42');
      const rooms = experiment.rooms.edges.map((e) => e.node);
      expect(rooms.map((r) => r.status)).toEqual(rooms.map(() => 'false'));
      const people = rooms.flatMap((r) => r.participants.edges.map((e) => e.node));
      expect(people.map((p) => p.completionCode)).toEqual(people.map(() => null));
      const events = people.flatMap((p) => p.events.edges.map((e) => e.node));
      expect(events.length).toBe(18 * 30);
      expect(new Set(events.map((e) => typeof e.onset))).toEqual(new Set(['number', 'object']));
      expect(new Set(events.map((e) => e.eventType).filter((t) => t === '7' || t === 'true' || t === null))).toEqual(
        new Set(['7', 'true', null]),
      );
      const ratings = people.flatMap((p) => p.sparseRatings.edges.map((e) => e.node));
      expect(ratings.length).toBeGreaterThan(0);
      expect(ratings.every((r) => typeof r.ratingId === 'string' && (r.value === null || typeof r.value === 'number'))).toBe(true);
      expect(jit.errors).toBeUndefined();
    } finally {
      await withJit.gateway.close();
      await without.gateway.close();
      await upstream.close();
    }
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
