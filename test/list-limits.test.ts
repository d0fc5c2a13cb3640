import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { startStack, type GqlReply, type Stack } from './helpers/stack.ts';
import { FULL } from './helpers/simulator.ts';

// Issue 17, item 2: before, list arguments had no bound before execution: 75,000 representations of
// `_entities` held the gateway 25.9 s, and graphql-js coerced every item before any resolver could refuse.
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({}, { MAX_LOOKUPS: '5', MAX_LIST_ITEMS: '20' });
});
afterAll(() => stack.close());
beforeEach(() => stack.sim.stats.reset());

const nodeId = (type: string, id: string): string => Buffer.from(`${type}:${id}`).toString('base64');
const experiments = (n: number) => Array.from({ length: n }, (_, i) => ({ __typename: 'Experiment', experimentId: `exp_${i}` }));
const ENTITIES = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Experiment { name } } }';

const lookups = (found: number) =>
  `The operation exceeds the lookups limit of 5 (found ${found}): each id of nodes(ids:) and each representation of _entities is an upstream request`;
const items = (found: number) => `The operation exceeds the list items limit of 20 (found ${found})`;

/** Refused with HTTP 400 and exactly these errors, before any upstream request. */
function expectRefused(res: GqlReply, errors: { message: string; limit: string; max: number; found: number }[]): void {
  expect(res.status).toBe(400);
  expect(res.body.data).toBeUndefined();
  expect(res.body.errors).toEqual(
    errors.map(({ message, limit, max, found }) => ({
      message,
      extensions: { code: 'OPERATION_LIMIT_EXCEEDED', limit, max, found },
    })),
  );
  expect(stack.sim.stats.total).toBe(0);
}

describe('list arguments are bounded before execution', () => {
  it('_entities representations in a variable: MAX_LOOKUPS', async () => {
    expectRefused(await stack.gql(ENTITIES, { key: FULL, variables: { r: experiments(6) } }), [
      { message: lookups(6), limit: 'lookups', max: 5, found: 6 },
    ]);
    // At the limit, each representation is read.
    const res = await stack.gql(ENTITIES, { key: FULL, variables: { r: experiments(5) } });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ _entities: [null, null, null, null, null] });
    expect(stack.sim.stats.total).toBe(5);
  });

  it('nodes(ids:) in literals, summed over aliases and fragments (a fragment spread twice counts twice)', async () => {
    const ids = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => JSON.stringify(nodeId('Experiment', `exp_${from + i}`))).join(', ');
    expectRefused(await stack.gql(`{ nodes(ids: [${ids(0, 6)}]) { id } }`, { key: FULL }), [
      { message: lookups(6), limit: 'lookups', max: 5, found: 6 },
    ]);
    expectRefused(await stack.gql(`{ a: nodes(ids: [${ids(0, 3)}]) { id } b: nodes(ids: [${ids(3, 3)}]) { id } }`, { key: FULL }), [
      { message: lookups(6), limit: 'lookups', max: 5, found: 6 },
    ]);
    expectRefused(
      await stack.gql(
        `query { ...Twice } fragment Twice on Query { ...Three ...Three } fragment Three on Query { nodes(ids: [${ids(0, 3)}]) { id } }`,
        {
          key: FULL,
        },
      ),
      [{ message: lookups(6), limit: 'lookups', max: 5, found: 6 }],
    );
  });

  it('before graphql-js coerces the variables: a bad item among too many is not even looked at', async () => {
    const ids = [null, ...Array.from({ length: 5 }, (_, i) => nodeId('Experiment', `exp_${i}`))];
    expectRefused(await stack.gql('query($ids: [ID!]!) { nodes(ids: $ids) { id } }', { key: FULL, variables: { ids } }), [
      { message: lookups(6), limit: 'lookups', max: 5, found: 6 },
    ]);
  });

  it('any list argument: MAX_LIST_ITEMS, in variables and literals', async () => {
    const event = { eventType: 'custom.marker', experimentId: 'exp_movie01', roomId: 'room_movie01_001', participantId: 'p' };
    expectRefused(
      await stack.gql('mutation($e: [EventInput!]!) { recordEvents(events: $e) { recorded } }', {
        key: FULL,
        variables: { e: Array.from({ length: 21 }, () => event) },
      }),
      [{ message: items(21), limit: 'listItems', max: 20, found: 21 }],
    );
    const literal = Array.from(
      { length: 21 },
      () => '{ eventType: "custom.marker", experimentId: "exp_movie01", roomId: "room_movie01_001", participantId: "p" }',
    );
    expectRefused(await stack.gql(`mutation { recordEvents(events: [${literal.join(' ')}]) { recorded } }`, { key: FULL }), [
      { message: items(21), limit: 'listItems', max: 20, found: 21 },
    ]);
  });

  it('nested lists in input objects count too, and a variable left out counts its default', async () => {
    const examples = Array.from({ length: 21 }, (_, i) => `example ${i}`);
    expectRefused(
      await stack.gql('mutation($p: PersonaInput!) { createPersona(input: $p) { name } }', {
        key: FULL,
        variables: { p: { name: 'x', prompt: { examples } } },
      }),
      [{ message: items(21), limit: 'listItems', max: 20, found: 21 }],
    );
    expectRefused(
      await stack.gql(
        `mutation($x: [String!] = [${examples.map((e) => JSON.stringify(e)).join(', ')}]) { createPersona(input: { name: "x", prompt: { examples: $x } }) { name } }`,
        { key: FULL },
      ),
      [{ message: items(21), limit: 'listItems', max: 20, found: 21 }],
    );
  });

  it('both limits at once', async () => {
    expectRefused(await stack.gql(ENTITIES, { key: FULL, variables: { r: experiments(21) } }), [
      { message: lookups(21), limit: 'lookups', max: 5, found: 21 },
      { message: items(21), limit: 'listItems', max: 20, found: 21 },
    ]);
  });
});

// Issue 17, item 2: coercion refuses unknown keys anyway, but graphql-tools' executor printed the whole
// object into the message of each (up to 50): 200,000 keys (2.6 MB) held the gateway 25 s.
describe('input objects wider than their type', () => {
  const refusedWith = async (query: string, variables: Record<string, unknown>, message: string) => {
    const res = await stack.gql(query, { key: FULL, variables });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ message, extensions: { code: 'BAD_USER_INPUT' } }]);
    expect(stack.sim.stats.total).toBe(0);
  };
  const keys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));

  it('are refused before coercion, at any depth', async () => {
    await refusedWith(
      'mutation($p: PersonaInput!) { createPersona(input: $p) { name } }',
      { p: { name: 'x', ...keys(30_000) } },
      'Variable "$p" got invalid value at "p"; "PersonaInput" defines 20 fields, and the value holds more keys; Field "k0" is not defined by type "PersonaInput".',
    );
    await refusedWith(
      'mutation($p: PersonaInput!) { createPersona(input: $p) { name } }',
      { p: { name: 'x', guardrails: { maxTurns: 1, ...keys(4) } } },
      'Variable "$p" got invalid value at "p.guardrails"; "PersonaGuardrailsInput" defines 4 fields, and the value holds more keys; Field "k0" is not defined by type "PersonaGuardrailsInput".',
    );
    const event = { eventType: 'custom.marker', experimentId: 'exp_movie01', roomId: 'room_movie01_001', participantId: 'p' };
    await refusedWith(
      'mutation($e: [EventInput!]!) { recordEvents(events: $e) { recorded } }',
      { e: [event, event, { ...event, ...keys(20) }] },
      'Variable "$e" got invalid value at "e[2]"; "EventInput" defines 15 fields, and the value holds more keys; Field "k0" is not defined by type "EventInput".',
    );
  });
});

describe('MAX_LOOKUPS', () => {
  it('is UPSTREAM_BUDGET unless set: more lookups could never all be answered', () => {
    const defaults = loadConfig({});
    expect(defaults.limits.lookups).toBe(defaults.budget);
    expect(loadConfig({ UPSTREAM_BUDGET: '50' }).limits.lookups).toBe(50);
    expect(loadConfig({ UPSTREAM_BUDGET: '50', MAX_LOOKUPS: '20' }).limits.lookups).toBe(20);
  });
});
