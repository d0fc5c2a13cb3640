import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startStack, stackPerTest, type Stack } from './helpers/stack.ts';
import { FULL } from './helpers/simulator.ts';

/** A stack of the test's own, closed after it. */
const ownStack = stackPerTest();

let stack: Stack;
beforeAll(async () => {
  stack = await startStack(
    {},
    { MAX_DEPTH: '8', MAX_ALIASES: '3', MAX_ROOT_ALIASES: '3', MAX_TOKENS: '120', MAX_DIRECTIVES: '2', MAX_BODY_BYTES: '2048' },
  );
});
afterAll(() => stack.close());
beforeEach(() => stack.sim.stats.reset());

const refused = async (query: string, message: string, limit: string) => {
  const res = await stack.gql(query);
  expect(res.status).toBe(400);
  expect(res.body.errors?.[0]?.message).toBe(message);
  expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'OPERATION_LIMIT_EXCEEDED', limit });
  expect(res.body.data).toBeUndefined();
  expect(stack.sim.stats.total).toBe(0);
};

describe('operation limits are refused before any upstream call', () => {
  it('depth', async () => {
    await stack
      .gql('{ experiment(id: "exp_movie01") { rooms { edges { node { roomId } } } } }')
      .then((r) => expect(r.body.errors).toBeUndefined());
    stack.sim.stats.reset();
    await refused(
      '{ experiment(id: "exp_movie01") { rooms { edges { node { participants { edges { node { room { roomId } } } } } } } } }',
      'The operation exceeds the depth limit of 8 (found 9)',
      'depth',
    );
  });

  it('aliases under one root field, fragments included (they multiply the work of every parent)', async () => {
    await refused(
      '{ experiment(id: "x") { rooms { edges { node { a: roomId b: roomId ...More } } } } } fragment More on Room { c: status d: status }',
      'The operation exceeds the aliases limit of 3 (found 4) under one root field',
      'aliases',
    );
  });

  it('aliased root fields, counted apart (what batching gateways send)', async () => {
    await refused(
      '{ a: experiment(id: "x") { name } b: experiment(id: "y") { name } c: experiment(id: "z") { name } d: experiment(id: "w") { name } }',
      'The operation exceeds the root aliases limit of 3 (found 4)',
      'rootAliases',
    );
    // Three aliased roots with three aliases each: neither limit is passed, nor do nested aliases add up across roots.
    const res = await stack.gql(
      `{ ${['a', 'b', 'c'].map((r) => `${r}: experiment(id: "exp_movie01") { x: name y: name z: experimentId }`).join(' ')} }`,
    );
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data).toEqual(
      Object.fromEntries(['a', 'b', 'c'].map((r) => [r, { x: 'Movie Watching Study', y: 'Movie Watching Study', z: 'exp_movie01' }])),
    );
    expect(stack.sim.stats.total).toBe(1);
  });

  it('tokens', async () => {
    await refused(
      `{ experiment(id: "exp_movie01") { ${Array.from({ length: 150 }, () => 'name').join(' ')} } }`,
      'The operation exceeds the tokens limit of 120',
      'tokens',
    );
  });

  it('directives', async () => {
    await refused(
      '{ experiment(id: "exp_movie01") { name @include(if: true) @include(if: true) @skip(if: false) } }',
      'The operation exceeds the directives limit of 2 (found 3)',
      'directives',
    );
  });

  it('directives: @defer and @stream count like any other', async () => {
    await refused(
      '{ experiment(id: "exp_movie01") { ... @defer { name } ... @defer { description } rooms { edges @stream { cursor } } } }',
      'The operation exceeds the directives limit of 2 (found 3)',
      'directives',
    );
  });

  it('request body size', async () => {
    const res = await fetch(`${stack.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': FULL },
      body: JSON.stringify({ query: `{ __typename }`, variables: { pad: 'x'.repeat(4_000) } }),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      errors: [{ message: 'The request body exceeds 2048 bytes', extensions: { code: 'PAYLOAD_TOO_LARGE' } }],
    });
  });

  it('request body size, also for a chunked body of unknown length', async () => {
    const { request } = await import('node:http');
    const send = (body: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(
          `${stack.url}/graphql`,
          { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': FULL } },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          },
        );
        req.on('error', reject);
        // Two writes without a content-length: Node sends the body chunked.
        req.write(body.slice(0, 10));
        req.end(body.slice(10));
      });
    const small = await send(JSON.stringify({ query: '{ experiment(id: "exp_movie01") { name } }' }));
    expect([small.status, JSON.parse(small.text).data]).toEqual([200, { experiment: { name: 'Movie Watching Study' } }]);
    const big = await send(JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(4_000) } }));
    expect(big.status).toBe(413);
    expect(JSON.parse(big.text).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('batched (array) operations are off by default', async () => {
    const res = await fetch(`${stack.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': FULL },
      body: JSON.stringify([{ query: '{ __typename }' }, { query: '{ __typename }' }]),
    });
    expect(res.status).toBe(400);
    expect(stack.sim.stats.total).toBe(0);
  });
});

describe('production settings', () => {
  it('turns off introspection, GraphiQL and field suggestions; bounds batching when on', async () => {
    const prod = await ownStack({}, { INTROSPECTION: 'false', GRAPHIQL: 'false', BATCHING_LIMIT: '2', MAX_BODY_BYTES: '100000' });
    const intro = await prod.gql('{ __schema { queryType { name } } }');
    expect(intro.body.errors?.[0]?.message).toMatch(/introspection/i);
    const typo = await prod.gql('{ experimnt(id: "x") { name } }');
    expect(typo.body.errors?.[0]?.message).not.toMatch(/Did you mean/);
    // Nor enum values, argument names or type names.
    for (const query of [
      '{ experiments { edges { node { participants(completionCode: SUCCES) { totalCount } } } } }',
      '{ experiment(id: "x") { events(frist: 1) { totalCount } } }',
      'query($t: DateTim) { experiment(id: "x") { events(startTime: $t) { totalCount } } }',
    ]) {
      const res = await prod.gql(query);
      expect(res.status, query).toBe(400);
      expect(res.body.errors?.length, query).toBeGreaterThan(0);
      for (const error of res.body.errors ?? []) expect(error.message, query).not.toMatch(/Did you mean/);
    }
    const page = await fetch(`${prod.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(await page.text()).not.toContain('GraphiQL');
    const batch = async (n: number) =>
      fetch(`${prod.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': FULL },
        body: JSON.stringify(Array.from({ length: n }, () => ({ query: '{ __typename }' }))),
      });
    expect(await (await batch(2)).json()).toEqual([
      { data: { __typename: 'Query' }, extensions: expect.any(Object) },
      { data: { __typename: 'Query' }, extensions: expect.any(Object) },
    ]);
    const over = await batch(3);
    expect(over.status).toBe(413);
    expect(await over.json()).toEqual({
      errors: [{ message: 'Batching is limited to 2 operations per request.', extensions: { code: 'BAD_REQUEST' } }],
    });
    const dev = await stack.gql('{ experimnt(id: "x") { name } }');
    expect(dev.body.errors?.[0]?.message).toMatch(/Did you mean "experiment"/);
    const devEnum = await stack.gql('{ experiments { edges { node { participants(completionCode: SUCCES) { totalCount } } } } }');
    expect(devEnum.body.errors?.[0]?.message).toMatch(/Did you mean the enum value "SUCCESS"/);
  });
});
