import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSubgraphSchema, printSubgraphSchema } from '@apollo/subgraph';
import { createGatewayRuntime, type GatewayRuntime } from '@graphql-hive/gateway-runtime';
import { composeServices } from '@theguild/federation-composition';
import { graphql, parse, printSchema, specifiedDirectives } from 'graphql';
import { createYoga } from 'graphql-yoga';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { builder } from '../src/schema/builder.ts';
import { buildSubgraphSchema as buildServedSubgraph, FEDERATION_DIRECTIVES, printSubgraphSdl } from '../src/schema/index.ts';
import { TableDirective } from '../src/tables/directive.ts';
import { firstParticipants, startStack, startGateway, type Person, type Stack } from './helpers/stack.ts';
import { FULL, READONLY } from './helpers/simulator.ts';

const EXP = 'exp_movie01';
const SUBGRAPH_SDL = readFileSync(new URL('../subgraph.graphql', import.meta.url), 'utf8').trimEnd();

let stack: Stack;
/** The first 50 participants of the experiment's listing, from several rooms. */
let people: Person[];
beforeAll(async () => {
  stack = await startStack({ rooms: 20, participantsPerRoom: 4 });
  people = await firstParticipants(stack, EXP, 50);
});
afterAll(() => stack.close());
beforeEach(() => stack.sim.stats.reset());

describe('the Federation subgraph', () => {
  it('answers _service { sdl } without a key and without an upstream request: the SDL subgraph.graphql holds', async () => {
    const res = await stack.gql<{ _service: { sdl: string } }>('{ _service { sdl } }', { key: null });
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data?._service.sdl).toBe(SUBGRAPH_SDL);
    for (const key of [
      '@key(fields: "experimentId")',
      '@key(fields: "roomId")',
      '@key(fields: "participantId roomId")',
      '@key(fields: "deploymentId")',
      '@key(fields: "personaId")',
    ])
      expect(SUBGRAPH_SDL).toContain(key);
    expect(stack.sim.stats.total).toBe(0);
  });

  it('imports in @link the Federation directives the types use (FEDERATION_DIRECTIVES), as Pothos finds them when not given', () => {
    const found = builder.toSubGraphSchema({ directives: [...specifiedDirectives, TableDirective] });
    const link = (sdl: string): string | undefined => sdl.split('\n\n')[0];
    expect(link(printSubgraphSchema(found))).toBe(
      'extend schema\n  @link(url: "https://specs.apollo.dev/federation/v2.6", import: ["@key"])',
    );
    expect(link(printSubgraphSdl())).toBe(link(printSubgraphSchema(found)));
    expect(FEDERATION_DIRECTIVES).toEqual(['@key']);
  });

  it('is the schema Pothos builds (toSubGraphSchema), its _service { sdl } printed on the first request for it', async () => {
    const pothos = builder.toSubGraphSchema({
      federationDirectives: FEDERATION_DIRECTIVES,
      directives: [...specifiedDirectives, TableDirective],
    });
    const served = buildServedSubgraph();
    expect(printSchema(served)).toBe(printSchema(pothos));
    expect(printSubgraphSchema(served)).toBe(printSubgraphSchema(pothos));
    expect(Object.keys(served.getTypeMap())).toEqual(Object.keys(pothos.getTypeMap()));
    const sdlOf = async (schema: typeof served): Promise<unknown> => (await graphql({ schema, source: '{ _service { sdl } }' })).data;
    const answered = await sdlOf(pothos);
    expect(answered).toEqual({ _service: { sdl: SUBGRAPH_SDL } });
    expect(await sdlOf(served)).toEqual(answered);
    expect(await sdlOf(served)).toEqual(answered);
  });

  it('refuses _entities without a key (401, before any upstream call), and _service with introspection off', async () => {
    const res = await stack.gql(
      '{ _entities(representations: [{ __typename: "Experiment", experimentId: "exp_movie01" }]) { __typename } }',
      {
        key: null,
      },
    );
    expect(res.status).toBe(401);
    expect(res.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const { gateway: closed, url } = await startGateway({ HYPERSTUDY_API_URL: stack.sim.url, INTROSPECTION: 'false' });
    try {
      const refused = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ _service { sdl } }' }),
      });
      const body = (await refused.json()) as { errors?: { message: string }[]; data?: unknown };
      expect(body.data).toBeUndefined();
      expect(body.errors?.[0]?.message).toBe(
        'With introspection off, the subgraph SDL (`_service`) is not served either: compose from subgraph.graphql',
      );
    } finally {
      await closed.close();
    }
    expect(stack.sim.stats.total).toBe(0);
  });

  it('resolves 50 Participant representations as 50 siblings cost: one participants listing per room, their events lifted', async () => {
    const selection = 'participantId roomId name events(first: 5) { totalCount edges { node { eventType onset } } }';
    const entities = await stack.gql<{ _entities: Record<string, unknown>[] }>(
      `query($r: [_Any!]!) { _entities(representations: $r) { ... on Participant { ${selection} } } }`,
      { variables: { r: people.map((p) => ({ __typename: 'Participant', ...p })) } },
    );
    expect(entities.body.errors).toBeUndefined();
    const rooms = [...new Set(people.map((p) => p.roomId))];
    expect(rooms.length).toBeGreaterThan(5);
    const expected = {
      ...Object.fromEntries(rooms.map((r) => [`/api/v3/data/participants/room/${r}`, 1])),
      // 2,400 events in the experiment: the first page probes, pages 2 and 3 follow (3 ≤ 50 parents: lifted).
      [`/api/v3/data/events/experiment/${EXP}`]: 3,
    };
    expect(stack.sim.stats.byPath()).toEqual(expected);
    expect(entities.body.extensions?.upstream?.requests).toBe(rooms.length + 3);

    stack.sim.stats.reset();
    const siblings = await stack.gql<Record<string, Record<string, unknown>>>(
      `{ ${people.map((p, i) => `p${i}: participant(id: "${p.participantId}", roomId: "${p.roomId}") { ${selection} }`).join('\n')} }`,
    );
    expect(siblings.body.errors).toBeUndefined();
    expect(stack.sim.stats.byPath()).toEqual(expected);
    expect(entities.body.data?._entities).toEqual(people.map((_p, i) => siblings.body.data?.[`p${i}`]));
    expect(entities.body.data?._entities[0]).toMatchObject({ participantId: people[0]?.participantId, events: { totalCount: 30 } });
  });

  it('resolves every entity type, and a bad or unknown representation fails alone', async () => {
    const res = await stack.gql<{ _entities: unknown[] }>(
      `query($r: [_Any!]!) { _entities(representations: $r) {
        __typename
        ... on Experiment { experimentId name }
        ... on Room { roomId inExperiment: experimentId }
        ... on Participant { participantId roomId }
        ... on Deployment { deploymentId name }
        ... on Persona { personaId }
      } }`,
      {
        variables: {
          r: [
            { __typename: 'Experiment', experimentId: EXP },
            { __typename: 'Room', roomId: 'room_movie01_003' },
            { __typename: 'Participant', ...people[0] },
            { __typename: 'Deployment', deploymentId: 'dep_movie01_a' },
            { __typename: 'Persona', personaId: 'psn_demo_partner' },
            { __typename: 'Participant', participantId: people[0]?.participantId, roomId: '..' },
            { __typename: 'Experiment', experimentId: 'exp_nope' },
          ],
        },
      },
    );
    expect(res.body.data?._entities).toEqual([
      { __typename: 'Experiment', experimentId: EXP, name: 'Movie Watching Study' },
      { __typename: 'Room', roomId: 'room_movie01_003', inExperiment: EXP },
      { __typename: 'Participant', ...people[0] },
      { __typename: 'Deployment', deploymentId: 'dep_movie01_a', name: 'Lab pilot' },
      { __typename: 'Persona', personaId: 'psn_demo_partner' },
      null,
      null,
    ]);
    expect(res.body.errors?.map((e) => [e.path, e.extensions?.code])).toEqual([
      [['_entities', 5], 'BAD_USER_INPUT'],
      [['_entities', 6], 'NOT_FOUND'],
    ]);
  });
});

// --- A supergraph: this gateway and a tiny subgraph that adds `notes` to Participant ------------

const NOTES_SDL = `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", import: ["@key"])
  type Participant @key(fields: "participantId roomId") {
    participantId: String!
    roomId: String!
    "A researcher's note (another subgraph's field)."
    notes: String
  }
  type Query {
    "Participants a researcher flagged (this subgraph knows only their keys)."
    flagged: [Participant!]!
  }
`;

function notesSubgraph(flagged: () => Person[]): Server {
  const schema = buildSubgraphSchema({
    typeDefs: parse(NOTES_SDL),
    resolvers: {
      Query: { flagged: () => flagged() },
      Participant: {
        __resolveReference: (ref: Person) => ({ ...ref, notes: `note on ${ref.participantId}` }),
        notes: (p: Person & { notes?: string }) => p.notes ?? `note on ${p.participantId}`,
      },
    },
  });
  return createServer(createYoga({ schema, logging: false }));
}

const listen = (server: Server): Promise<string> =>
  new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`)),
  );

describe('in a supergraph (composed with @theguild/federation-composition, served by Hive Gateway)', () => {
  let notes: Server;
  let gateway: GatewayRuntime;
  beforeAll(async () => {
    notes = notesSubgraph(() => people.slice(0, 12));
    const notesUrl = await listen(notes);
    // What a composition tool does: ask each subgraph for its SDL (without a key), then compose.
    const sdl = await stack.gql<{ _service: { sdl: string } }>('{ _service { sdl } }', { key: null });
    const composed = composeServices([
      { name: 'hyperstudy', typeDefs: parse(sdl.body.data?._service.sdl ?? ''), url: `${stack.url}/graphql` },
      { name: 'notes', typeDefs: parse(NOTES_SDL), url: notesUrl },
    ]);
    expect(composed.errors).toBeUndefined();
    gateway = createGatewayRuntime({
      supergraph: composed.supergraphSdl ?? '',
      logging: false,
      // The caller's key travels to this gateway (and only to it): the Hive Gateway config of docs/federation.md.
      propagateHeaders: {
        fromClientToSubgraphs: ({ request, subgraphName }) =>
          subgraphName === 'hyperstudy'
            ? { 'x-api-key': request.headers.get('x-api-key'), 'x-organization-id': request.headers.get('x-organization-id') }
            : {},
      },
    });
  });
  afterAll(async () => {
    await gateway?.dispose();
    await new Promise((resolve) => notes?.close(resolve));
  });

  const ask = async (query: string, key: string | null) => {
    const res = await gateway.fetch('http://supergraph/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key === null ? {} : { 'x-api-key': key }) },
      body: JSON.stringify({ query }),
    });
    return (await res.json()) as { data?: Record<string, unknown>; errors?: { message: string; extensions?: Record<string, unknown> }[] };
  };

  it("extends this gateway's Participant with the other subgraph's field, the caller's key reaching the upstream", async () => {
    const participants = (await stack.rest('/data/participants/room/room_movie01_001')).data;
    stack.sim.stats.reset();
    const res = await ask(
      `{ room(id: "room_movie01_001") { roomId participants { totalCount edges { node { participantId name notes } } } } }`,
      READONLY,
    );
    expect(res.errors).toBeUndefined();
    // The room and its participants (the lookahead's one listing), both with the caller's key.
    expect(stack.sim.stats.byKey()).toEqual({ demo_readonly: 2 });
    expect(res.data).toEqual({
      room: {
        roomId: 'room_movie01_001',
        participants: {
          totalCount: 4,
          edges: participants.map((p) => ({ node: { participantId: p.id, name: p.name, notes: `note on ${String(p.id)}` } })),
        },
      },
    });
  });

  it("resolves the other subgraph's participants through _entities in one request, batched like siblings", async () => {
    const res = await ask(`{ flagged { participantId roomId notes completionCode events(first: 2) { totalCount } } }`, FULL);
    expect(res.errors).toBeUndefined();
    const flagged = res.data?.flagged as { participantId: string; notes: string; events: { totalCount: number } }[];
    expect(flagged.map((p) => p.participantId)).toEqual(people.slice(0, 12).map((p) => p.participantId));
    expect(flagged.every((p) => p.notes === `note on ${p.participantId}` && p.events.totalCount === 30)).toBe(true);
    const rooms = [...new Set(people.slice(0, 12).map((p) => p.roomId))];
    // One participants listing per room, then the events lifted to the experiment (3 pages ≤ 12 parents),
    // every request with the caller's key.
    expect(stack.sim.stats.byPath()).toEqual({
      ...Object.fromEntries(rooms.map((r) => [`/api/v3/data/participants/room/${r}`, 1])),
      [`/api/v3/data/events/experiment/${EXP}`]: 3,
    });
    expect(stack.sim.stats.byKey()).toEqual({ demo_full: rooms.length + 3 });
  });

  it('without a key, the supergraph answers UNAUTHENTICATED from this subgraph, and nothing reaches the upstream', async () => {
    const res = await ask(`{ room(id: "room_movie01_001") { roomId } }`, null);
    expect(res.data?.room ?? null).toBeNull();
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(stack.sim.stats.total).toBe(0);
  });
});
