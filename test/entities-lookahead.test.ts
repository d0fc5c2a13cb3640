/**
 * `_entities`, `node(id:)` and `nodes(ids:)` look ahead as `experiment(id:)` and `room(id:)` do: the
 * same nested selection costs the same upstream requests, in the same sequential rounds, whether it
 * arrives through a supergraph (as a Federation entity), by Relay node id, or directly.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sequentialRounds } from './helpers/dashboard.ts';
import { startStack, type GqlReply, type Stack } from './helpers/stack.ts';

const EXP = 'exp_movie01';
const ROOM = 'room_movie01_003';
// Rounds are told apart by gaps of half this: wide enough that a busy machine does not split one.
const LATENCY = 300;

/** The dashboard's selection below the experiment (test/helpers/dashboard.ts). */
const EXPERIMENT_SELECTION = `experimentId name
  rooms(first: 1000) { totalCount edges { node {
    roomId status
    participants(first: 100) { edges { node {
      participantId completionCode
      events(first: 1000) { totalCount edges { cursor node { id eventType onset roomId } } }
      sparseRatings(first: 1000) { totalCount edges { node { ratingId value } } }
    } } }
  } } }`;

/** A room's participants with their data, and the room's own first events. */
const ROOM_SELECTION = `roomId status
  events(first: 5) { totalCount edges { node { id participantId } } }
  participants(first: 100) { totalCount edges { node {
    participantId
    events(first: 1000) { totalCount edges { node { id onset } } }
    continuousRatings(first: 1000) { totalCount }
  } } }`;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ rooms: 20, participantsPerRoom: 4, latencyMs: LATENCY });
  // A key's first request in a process goes alone until the upstream confirms the key.
  await stack.gql(`{ experiment(id: "${EXP}") { name } }`);
});
afterAll(() => stack.close());
beforeEach(() => stack.sim.stats.reset());

interface Cost {
  byPath: Record<string, number>;
  total: number;
  rounds: number;
  reported: number | undefined;
}

/** Runs an operation and reads what it cost upstream: requests by path (with queries), rounds, and the reported count. */
async function costOf<D>(query: string, variables?: Record<string, unknown>): Promise<{ reply: GqlReply<D>; cost: Cost }> {
  stack.sim.stats.reset();
  const reply = await stack.gql<D>(query, { variables });
  expect(reply.body.errors).toBeUndefined();
  const cost = {
    byPath: stack.sim.stats.byPath(true),
    total: stack.sim.stats.total,
    rounds: sequentialRounds(stack.sim.stats.requests, LATENCY),
    reported: reply.body.extensions?.upstream?.requests,
  };
  return { reply, cost };
}

const ENTITIES = 'query($r: [_Any!]!) { _entities(representations: $r) { __typename ';

describe('_entities looks ahead like experiment(id:) and room(id:)', () => {
  it('an Experiment entity with the dashboard below costs 7 requests in 2 rounds, as experiment(id:) does', async () => {
    const direct = await costOf<{ experiment: unknown }>(`{ experiment(id: "${EXP}") { ${EXPERIMENT_SELECTION} } }`);
    // The experiment, rooms, participants, sparse ratings and the events' first page; then events' pages 2 and 3.
    expect(direct.cost).toEqual({
      byPath: {
        [`/api/v3/experiments/${EXP}`]: 1,
        [`/api/v3/data/rooms/experiment/${EXP}?limit=5000&offset=0`]: 1,
        [`/api/v3/data/participants/experiment/${EXP}?limit=1000&offset=0`]: 1,
        [`/api/v3/data/ratings/sparse/experiment/${EXP}?limit=1000&offset=0`]: 1,
        [`/api/v3/data/events/experiment/${EXP}?limit=1000&offset=0`]: 1,
        [`/api/v3/data/events/experiment/${EXP}?limit=1000&offset=1000`]: 1,
        [`/api/v3/data/events/experiment/${EXP}?limit=400&offset=2000`]: 1,
      },
      total: 7,
      rounds: 2,
      reported: 7,
    });
    const entity = await costOf<{ _entities: unknown[] }>(`${ENTITIES} ... on Experiment { ${EXPERIMENT_SELECTION} } } }`, {
      r: [{ __typename: 'Experiment', experimentId: EXP }],
    });
    expect(entity.cost).toEqual(direct.cost);
    expect(entity.reply.body.data?._entities).toEqual([{ __typename: 'Experiment', ...(direct.reply.body.data?.experiment as object) }]);
  });

  it('a Room entity costs what room(id:) costs, its selection in a named fragment or behind one on Node', async () => {
    const direct = await costOf<{ room: unknown }>(`{ room(id: "${ROOM}") { ${ROOM_SELECTION} } }`);
    // The room, and at room scope: participants, events and continuous ratings — one round.
    expect(direct.cost).toEqual({
      byPath: {
        [`/api/v3/data/rooms/room/${ROOM}?limit=1&offset=0`]: 1,
        [`/api/v3/data/events/room/${ROOM}?limit=1000&offset=0`]: 1,
        [`/api/v3/data/participants/room/${ROOM}?limit=1000&offset=0`]: 1,
        [`/api/v3/data/ratings/continuous/room/${ROOM}?limit=1000&offset=0`]: 1,
      },
      total: 4,
      rounds: 1,
      reported: 4,
    });
    const entity = await costOf<{ _entities: unknown[] }>(
      `${ENTITIES} ...RoomFields } } fragment RoomFields on Room { ${ROOM_SELECTION} }`,
      { r: [{ __typename: 'Room', roomId: ROOM }] },
    );
    expect(entity.cost).toEqual(direct.cost);
    expect(entity.reply.body.data?._entities).toEqual([{ __typename: 'Room', ...(direct.reply.body.data?.room as object) }]);
    // The same behind a fragment on the Node interface.
    const behindNode = await costOf<{ _entities: unknown[] }>(`${ENTITIES} ... on Node { ... on Room { ${ROOM_SELECTION} } } } }`, {
      r: [{ __typename: 'Room', roomId: ROOM }],
    });
    expect(behindNode.cost).toEqual(direct.cost);
    expect(behindNode.reply.body.data).toEqual(entity.reply.body.data);
  });

  it('an Experiment and a Room in one _entities cost what the two root fields cost side by side', async () => {
    const direct = await costOf<{ e: unknown; r: unknown }>(
      `{ e: experiment(id: "${EXP}") { ${EXPERIMENT_SELECTION} } r: room(id: "${ROOM}") { ${ROOM_SELECTION} } }`,
    );
    const entity = await costOf<{ _entities: unknown[] }>(
      `${ENTITIES} ... on Experiment { ${EXPERIMENT_SELECTION} } ... on Room { ${ROOM_SELECTION} } } }`,
      {
        r: [
          { __typename: 'Experiment', experimentId: EXP },
          { __typename: 'Room', roomId: ROOM },
        ],
      },
    );
    expect(entity.cost).toEqual(direct.cost);
    expect(direct.cost.rounds).toBe(2);
    expect(entity.reply.body.data?._entities).toEqual([
      { __typename: 'Experiment', ...(direct.reply.body.data?.e as object) },
      { __typename: 'Room', ...(direct.reply.body.data?.r as object) },
    ]);
  });
});

/** A Relay node id as the gateway gives it out (base64 of `Type:id`). */
const nodeId = (type: string, id: string): string => Buffer.from(`${type}:${id}`).toString('base64');

describe('node(id:) and nodes(ids:) look ahead like experiment(id:) and room(id:)', () => {
  it('an Experiment node with the dashboard below costs 7 requests in 2 rounds, as experiment(id:) does', async () => {
    const direct = await costOf<{ experiment: unknown }>(`{ experiment(id: "${EXP}") { ${EXPERIMENT_SELECTION} } }`);
    expect([direct.cost.total, direct.cost.rounds]).toEqual([7, 2]);
    const node = await costOf<{ node: unknown }>(`query($id: ID!) { node(id: $id) { ... on Experiment { ${EXPERIMENT_SELECTION} } } }`, {
      id: nodeId('Experiment', EXP),
    });
    expect(node.cost).toEqual(direct.cost);
    expect(node.reply.body.data?.node).toEqual(direct.reply.body.data?.experiment);
  });

  it('a Room node costs what room(id:) costs, its selection in a named fragment', async () => {
    const direct = await costOf<{ room: unknown }>(`{ room(id: "${ROOM}") { ${ROOM_SELECTION} } }`);
    expect([direct.cost.total, direct.cost.rounds]).toEqual([4, 1]);
    const node = await costOf<{ node: unknown }>(
      `query($id: ID!) { node(id: $id) { ...RoomFields } } fragment RoomFields on Room { ${ROOM_SELECTION} }`,
      {
        id: nodeId('Room', ROOM),
      },
    );
    expect(node.cost).toEqual(direct.cost);
    expect(node.reply.body.data?.node).toEqual(direct.reply.body.data?.room);
  });

  it('an Experiment and a Room in one nodes(ids:) cost what the two root fields cost side by side', async () => {
    const direct = await costOf<{ e: unknown; r: unknown }>(
      `{ e: experiment(id: "${EXP}") { ${EXPERIMENT_SELECTION} } r: room(id: "${ROOM}") { ${ROOM_SELECTION} } }`,
    );
    const nodes = await costOf<{ nodes: unknown[] }>(
      `query($ids: [ID!]!) { nodes(ids: $ids) { ... on Experiment { ${EXPERIMENT_SELECTION} } ... on Room { ${ROOM_SELECTION} } } }`,
      { ids: [nodeId('Experiment', EXP), nodeId('Room', ROOM)] },
    );
    expect(nodes.cost).toEqual(direct.cost);
    expect(direct.cost.rounds).toBe(2);
    expect(nodes.reply.body.data?.nodes).toEqual([direct.reply.body.data?.e, direct.reply.body.data?.r]);
  });
});
