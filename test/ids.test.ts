import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sequentialRounds } from './helpers/dashboard.ts';
import { startStack, type Stack } from './helpers/stack.ts';

const EXP = 'exp_movie01';
const ROOM = 'room_movie01_002';
const LATENCY = 100;
const nodeId = (type: string, id: string): string => Buffer.from(`${type}:${id}`).toString('base64');

let stack: Stack;
let participant: { id: string; roomId: string; relay: string };
beforeAll(async () => {
  stack = await startStack({ latencyMs: LATENCY });
  const p = (await stack.rest(`/data/participants/room/${ROOM}?limit=1&offset=1`)).data[0];
  const res = await stack.gql<{ participant: { id: string } }>(`{ participant(id: "${String(p?.id)}", roomId: "${ROOM}") { id } }`);
  participant = { id: String(p?.id), roomId: ROOM, relay: res.body.data?.participant.id ?? '' };
});
afterAll(() => stack.close());
beforeEach(() => stack.sim.stats.reset());

describe('root fields take the node id the graph hands out as well as the upstream id', () => {
  it('experiment(id:): the same answer, and the lookahead starts at once with the decoded id', async () => {
    const listed = await stack.gql<{ experiments: { edges: { node: { id: string; experimentId: string } }[] } }>(
      '{ experiments(first: 1) { edges { node { id experimentId } } } }',
    );
    const relay = listed.body.data?.experiments.edges[0]?.node.id ?? '';
    expect(relay).toBe(nodeId('Experiment', EXP));
    const query = (id: string) => `{ experiment(id: "${id}") { id experimentId name rooms(first: 2) { edges { node { roomId } } } } }`;
    const byUpstream = await stack.gql(query(EXP));
    stack.sim.stats.reset();
    const byNode = await stack.gql(query(relay));
    expect(byNode.body.errors).toBeUndefined();
    expect(byNode.body.data).toEqual(byUpstream.body.data);
    expect(byNode.body.data).toMatchObject({ experiment: { id: relay, experimentId: EXP, name: 'Movie Watching Study' } });
    expect(stack.sim.stats.byPath()).toEqual({ [`/api/v3/experiments/${EXP}`]: 1, [`/api/v3/data/rooms/experiment/${EXP}`]: 1 });
    expect(sequentialRounds(stack.sim.stats.requests, LATENCY)).toBe(1);
  });

  it('room(id:): the lookahead reads the room scope of the decoded id', async () => {
    const relay = nodeId('Room', ROOM);
    const res = await stack.gql(
      `{ room(id: "${relay}") { id roomId experimentId events(first: 2) { totalCount } participants { totalCount } } }`,
    );
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data).toEqual({
      room: { id: relay, roomId: ROOM, experimentId: EXP, events: { totalCount: 90 }, participants: { totalCount: 3 } },
    });
    expect(stack.sim.stats.byPath()).toEqual({
      [`/api/v3/data/rooms/room/${ROOM}`]: 1,
      [`/api/v3/data/events/room/${ROOM}`]: 1,
      [`/api/v3/data/participants/room/${ROOM}`]: 1,
    });
    expect(sequentialRounds(stack.sim.stats.requests, LATENCY)).toBe(1);
  });

  it('participant(id:): a node id needs no roomId; with one it must be its room', async () => {
    const res = await stack.gql(`{
      byNode: participant(id: "${participant.relay}") { id participantId roomId experimentId }
      both: participant(id: "${participant.relay}", roomId: "${ROOM}") { participantId }
      upstream: participant(id: "${participant.id}", roomId: "${nodeId('Room', ROOM)}") { participantId }
    }`);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data).toEqual({
      byNode: { id: participant.relay, participantId: participant.id, roomId: ROOM, experimentId: EXP },
      both: { participantId: participant.id },
      upstream: { participantId: participant.id },
    });
    // One participants listing for the room, shared by the three.
    expect(stack.sim.stats.byPath()).toEqual({ [`/api/v3/data/participants/room/${ROOM}`]: 1 });
  });

  it('deployment(id:) and persona(id:) too', async () => {
    const res = await stack.gql(`{
      deployment(id: "${nodeId('Deployment', 'dep_movie01_a')}") { deploymentId name }
      persona(id: "${nodeId('Persona', 'psn_demo_partner')}") { personaId }
    }`);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data).toEqual({
      deployment: { deploymentId: 'dep_movie01_a', name: 'Lab pilot' },
      persona: { personaId: 'psn_demo_partner' },
    });
  });
});

describe('ids that cannot be right are BAD_USER_INPUT, before any upstream call', () => {
  it.each([
    [
      'a Room node id to experiment(id:)',
      `{ experiment(id: "${nodeId('Room', ROOM)}") { name } }`,
      'id',
      "'id' is the node id of a Room, not of an Experiment (pass its `id` or its upstream id)",
    ],
    [
      'an Experiment node id to room(id:)',
      `{ room(id: "${nodeId('Experiment', EXP)}") { roomId } }`,
      'id',
      "'id' is the node id of an Experiment, not of a Room (pass its `id` or its upstream id)",
    ],
    [
      'a Room node id to participant(id:)',
      `{ participant(id: "${nodeId('Room', ROOM)}") { name } }`,
      'id',
      "'id' is the node id of a Room, not of a Participant (pass its `id` or its upstream id)",
    ],
    [
      'an upstream participant id without roomId',
      `{ participant(id: "ppt_x") { name } }`,
      'roomId',
      "'roomId' is needed with an upstream participant id (a participant is addressed within its room); or pass the participant's node id (`id`), which carries its room",
    ],
  ])('%s', async (_name, query, argument, message) => {
    const res = await stack.gql(query);
    expect(res.body.errors).toEqual([
      expect.objectContaining({ message, extensions: expect.objectContaining({ code: 'BAD_USER_INPUT', argument }) }),
    ]);
    expect(stack.sim.stats.total).toBe(0);
  });

  it('a participant node id with another roomId', async () => {
    const res = await stack.gql(`{ participant(id: "${participant.relay}", roomId: "room_movie01_001") { name } }`);
    expect(res.body.errors?.[0]?.message).toBe(`'roomId' room_movie01_001 is not the room of this participant (${ROOM})`);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'roomId' });
    expect(stack.sim.stats.total).toBe(0);
  });
});

describe('nullability', () => {
  const fieldsOf = async (type: string): Promise<Record<string, string>> => {
    const res = await stack.gql<{ __type: { fields: { name: string; type: { kind: string } }[] } }>(
      `{ __type(name: "${type}") { fields { name type { kind } } } }`,
    );
    return Object.fromEntries((res.body.data?.__type.fields ?? []).map((f) => [f.name, f.type.kind]));
  };

  it('ids the upstream always sends and the connection structure are non-null; loaded back-links are not', async () => {
    const participantFields = await fieldsOf('Participant');
    expect(participantFields).toMatchObject({
      id: 'NON_NULL',
      participantId: 'NON_NULL',
      roomId: 'NON_NULL',
      experimentId: 'NON_NULL',
      raw: 'NON_NULL',
      room: 'OBJECT',
      experiment: 'OBJECT',
      name: 'SCALAR',
      events: 'OBJECT',
    });
    expect(await fieldsOf('Room')).toMatchObject({ roomId: 'NON_NULL', experimentId: 'SCALAR', experiment: 'OBJECT' });
    expect(await fieldsOf('Experiment')).toMatchObject({ experimentId: 'NON_NULL', rooms: 'OBJECT' });
    expect(await fieldsOf('EventConnection')).toMatchObject({
      edges: 'NON_NULL',
      totalCount: 'NON_NULL',
      pageInfo: 'NON_NULL',
      warnings: 'NON_NULL',
    });
    expect(await fieldsOf('EventEdge')).toEqual({ cursor: 'NON_NULL', node: 'NON_NULL' });
    expect(stack.sim.stats.total).toBe(0);
  });
});
