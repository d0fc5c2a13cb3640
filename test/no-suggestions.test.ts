import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscribeSse } from './helpers/sse.ts';
import { startStack, type Stack } from './helpers/stack.ts';
import { FULL } from './helpers/simulator.ts';

/**
 * With INTROSPECTION=false no error suggests a name ("Did you mean …"), nor says that one was hidden:
 * validation, and variables that do not coerce (enum values, input fields, nested ones), under
 * graphql-jit and under Yoga's own executor.
 */
const CASES: { name: string; query: string; variables?: Record<string, unknown>; errors: [string, string][] }[] = [
  {
    name: 'an enum value in a variable',
    query: 'query($s: EventSort) { experiment(id: "exp_movie01") { events(sort: $s) { totalCount } } }',
    variables: { s: 'ONSE' },
    errors: [['Variable "$s" got invalid value "ONSE"; Value "ONSE" does not exist in "EventSort" enum.', 'BAD_USER_INPUT']],
  },
  {
    name: 'the sort order in a variable',
    query: 'query($o: SortOrder) { experiment(id: "exp_movie01") { events(order: $o) { totalCount } } }',
    variables: { o: 'DES' },
    errors: [['Variable "$o" got invalid value "DES"; Value "DES" does not exist in "SortOrder" enum.', 'BAD_USER_INPUT']],
  },
  {
    name: 'an input field in a variable (in a list)',
    query: 'mutation($e: [EventInput!]!) { recordEvents(events: $e) { recorded } }',
    variables: { e: [{ eventType: 'x', experimentID: 'e', participantId: 'p', roomId: 'r' }] },
    errors: [
      [
        'Variable "$e" got invalid value { eventType: "x", experimentID: "e", participantId: "p", roomId: "r" } at "e[0]"; Field "experimentId" of required type "ID!" was not provided.',
        'BAD_USER_INPUT',
      ],
      [
        'Variable "$e" got invalid value { eventType: "x", experimentID: "e", participantId: "p", roomId: "r" } at "e[0]"; Field "experimentID" is not defined by type "EventInput".',
        'BAD_USER_INPUT',
      ],
    ],
  },
  {
    name: 'a nested input field and an enum value in a variable',
    query: 'mutation($p: PersonaInput!) { createPersona(input: $p) { name } }',
    variables: { p: { name: 'x', guardrails: { maxTurn: 1 }, visibility: 'PRIVAT' } },
    errors: [
      [
        'Variable "$p" got invalid value { maxTurn: 1 } at "p.guardrails"; Field "maxTurn" is not defined by type "PersonaGuardrailsInput".',
        'BAD_USER_INPUT',
      ],
      [
        'Variable "$p" got invalid value "PRIVAT" at "p.visibility"; Value "PRIVAT" does not exist in "PersonaVisibility" enum.',
        'BAD_USER_INPUT',
      ],
    ],
  },
  {
    name: 'input fields and enum values in literals, nested too',
    query:
      'mutation { recordEvents(events: [{ eventType: "x", experimentID: "e", participantId: "p", roomId: "r" }]) { recorded } createPersona(input: { name: "x", guardrails: { maxTurn: 1 }, visibility: PRIVAT }) { name } }',
    errors: [
      ['Field "EventInput.experimentId" of required type "ID!" was not provided.', 'GRAPHQL_VALIDATION_FAILED'],
      ['Field "experimentID" is not defined by type "EventInput".', 'GRAPHQL_VALIDATION_FAILED'],
      ['Field "maxTurn" is not defined by type "PersonaGuardrailsInput".', 'GRAPHQL_VALIDATION_FAILED'],
      ['Value "PRIVAT" does not exist in "PersonaVisibility" enum.', 'GRAPHQL_VALIDATION_FAILED'],
    ],
  },
  {
    name: 'fields, arguments and types',
    query: 'query($t: DateTim) { experiment(id: "exp_movie01") { nme events(frist: 1, startTime: $t) { totalCount } } }',
    errors: [
      ['Unknown type "DateTim".', 'GRAPHQL_VALIDATION_FAILED'],
      ['Cannot query field "nme" on type "Experiment".', 'GRAPHQL_VALIDATION_FAILED'],
      ['Unknown argument "frist" on field "Experiment.events".', 'GRAPHQL_VALIDATION_FAILED'],
    ],
  },
];

describe.each(['on', 'off'])('no suggestions with INTROSPECTION=false (GRAPHQL_JIT=%s)', (jit) => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({}, { INTROSPECTION: 'false', GRAPHQL_JIT: jit });
  });
  afterAll(() => stack.close());

  it.each(CASES)('$name', async ({ query, variables, errors }) => {
    stack.sim.stats.reset();
    const res = await stack.gql(query, { key: FULL, variables });
    expect(res.status).toBe(400);
    expect(res.body.errors?.map((e) => [e.message, e.extensions?.code])).toEqual(errors);
    expect(stack.sim.stats.total).toBe(0);
  });

  it('an enum value in a variable of a subscription (over SSE)', async () => {
    const subscription = await subscribeSse(
      stack.url,
      'subscription($s: EventSort) { roomEvents(roomId: "room_movie01_001") { participant { events(sort: $s) { totalCount } } } }',
      { key: FULL, variables: { s: 'ONSE' } },
    );
    try {
      await subscription.waitFor(1);
      expect(subscription.payloads.map((p) => p.errors?.map((e) => [e.message, e.extensions?.code]))).toEqual([
        [['Variable "$s" got invalid value "ONSE"; Value "ONSE" does not exist in "EventSort" enum.', 'BAD_USER_INPUT']],
      ]);
    } finally {
      subscription.close();
    }
  });
});
