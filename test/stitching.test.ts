import { readFileSync } from 'node:fs';
import { buildHTTPExecutor } from '@graphql-tools/executor-http';
import { stitchSchemas } from '@graphql-tools/stitch';
import { buildSchema, Kind, Lexer, parse, print, Source, TokenKind, type OperationDefinitionNode } from 'graphql';
import { createSchema, createYoga } from 'graphql-yoga';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createStitchedUpstreamCost, type StitchedUpstreamCost } from '../src/plugins/use-stitched-upstream-cost.ts';
import { firstParticipants, startStack, type Person, type Stack } from './helpers/stack.ts';
import { FULL } from './helpers/simulator.ts';

const EXP = 'exp_movie01';

let stack: Stack;
let people: Person[];
beforeAll(async () => {
  stack = await startStack({ rooms: 20, participantsPerRoom: 4 });
  people = await firstParticipants(stack, EXP, 50);
});
afterAll(() => stack.close());
beforeEach(() => stack.sim.stats.reset());

/**
 * A stitching gateway in-process: a local notes schema that knows participants by key, and this
 * gateway as a remote subschema over HTTP (its public schema.graphql, its HTTP executor, the caller's
 * key forwarded), Participant merged through participant(id:, roomId:) with batch execution — so the
 * delegations of one operation go out as one request of aliased root fields.
 */
function stitchingGateway(flagged: Person[]) {
  const sent: string[] = [];
  // Keeps what each answer of the remote gateway cost upstream, and reports the sum in the stitched answer.
  const cost = createStitchedUpstreamCost(async (url, init) => {
    if (typeof init?.body === 'string') sent.push(init.body);
    return fetch(url, init);
  });
  const executor = buildHTTPExecutor({
    endpoint: `${stack.url}/graphql`,
    headers: (request) => ({
      'x-api-key': (request?.context as { request?: Request } | undefined)?.request?.headers.get('x-api-key') ?? '',
    }),
    fetch: cost.fetch,
  });
  const notes = createSchema({
    typeDefs: /* GraphQL */ `
      type Participant {
        participantId: String!
        roomId: String!
        notes: String
      }
      type Query {
        flagged: [Participant!]!
      }
    `,
    resolvers: { Query: { flagged: () => flagged.map((p) => ({ ...p, notes: `note on ${p.participantId}` })) } },
  });
  const schema = stitchSchemas({
    subschemas: [
      { schema: notes },
      {
        schema: buildSchema(readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8')),
        executor,
        batch: true,
        merge: {
          Participant: {
            selectionSet: '{ participantId roomId }',
            fieldName: 'participant',
            args: (p: Person) => ({ id: p.participantId, roomId: p.roomId }),
          },
        },
      },
    ],
  });
  const yoga = createYoga({ schema, plugins: [cost.plugin()], logging: false });
  const ask = async (query: string) => {
    const res = await yoga.fetch('http://stitched/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': FULL },
      body: JSON.stringify({ query }),
    });
    return (await res.json()) as { data?: Record<string, unknown>; errors?: unknown[]; extensions?: { upstream?: StitchedUpstreamCost } };
  };
  return { ask, sent };
}

describe('behind a schema-stitching gateway (@graphql-tools/stitch, this gateway a remote subschema over HTTP)', () => {
  it("delegates 50 entities in one batched request of 50 aliased root fields, and this gateway's cost survives the proxy", async () => {
    const { ask, sent } = stitchingGateway(people);
    const res = await ask(
      `{ flagged { participantId notes name email role status completionCode joinedAt completedAt deploymentId events(first: 2) { totalCount } } }`,
    );
    expect(res.errors).toBeUndefined();
    const flagged = res.data?.flagged as { participantId: string; notes: string; events: { totalCount: number } }[];
    expect(flagged.map((p) => p.participantId)).toEqual(people.map((p) => p.participantId));
    expect(flagged.every((p) => p.notes === `note on ${p.participantId}` && p.events.totalCount === 30)).toBe(true);

    // One request reached this gateway: 50 aliased root fields (over the default MAX_ALIASES of 15, under MAX_ROOT_ALIASES).
    expect(sent).toHaveLength(1);
    const operation = parse((JSON.parse(sent[0] ?? '{}') as { query: string }).query).definitions[0] as OperationDefinitionNode;
    const roots = operation.selectionSet.selections.filter((s) => s.kind === Kind.FIELD);
    expect(roots.filter((s) => s.alias !== undefined && s.name.value === 'participant')).toHaveLength(50);
    // Some 45 tokens an entity: over the former MAX_TOKENS default of 2,000, under today's 5,000.
    const lexer = new Lexer(new Source(print(operation)));
    let tokens = 0;
    while (lexer.advance().kind !== TokenKind.EOF) tokens++;
    expect(tokens).toBeGreaterThan(2_000);

    // Upstream it cost what 50 siblings cost: one participants listing per room, the events lifted.
    const rooms = [...new Set(people.map((p) => p.roomId))];
    expect(stack.sim.stats.byPath()).toEqual({
      ...Object.fromEntries(rooms.map((r) => [`/api/v3/data/participants/room/${r}`, 1])),
      [`/api/v3/data/events/experiment/${EXP}`]: 3,
    });
    expect(stack.sim.stats.byKey()).toEqual({ demo_full: rooms.length + 3 });
    expect(res.extensions?.upstream).toEqual({ requests: rooms.length + 3, pages: rooms.length + 3, cacheHits: 0 });
  });
});

describe('alias bombs stay refused (default limits), before any upstream call', () => {
  const aliases = (n: number, field: (i: number) => string): string => Array.from({ length: n }, (_, i) => field(i)).join(' ');

  it('16 aliases under one root field: each repeats its work under every room', async () => {
    const res = await stack.gql(
      `{ experiment(id: "${EXP}") { rooms { edges { node { ${aliases(16, (i) => `e${i}: events(first: 1000) { totalCount }`)} } } } } }`,
    );
    expect(res.status).toBe(400);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'OPERATION_LIMIT_EXCEEDED', limit: 'aliases', max: 15, found: 16 });
  });

  it('101 aliased root fields', async () => {
    const res = await stack.gql(`{ ${aliases(101, (i) => `x${i}: experiment(id: "${EXP}") { name }`)} }`);
    expect(res.status).toBe(400);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({
      code: 'OPERATION_LIMIT_EXCEEDED',
      limit: 'rootAliases',
      max: 100,
      found: 101,
    });
    expect(stack.sim.stats.total).toBe(0);
  });
});
