/**
 * The contract suite: read-only, it asserts shapes and invariants, never seeded values, so that it can
 * run against the real HyperStudy API (`npm run test:contract` with HYPERSTUDY_API_URL and
 * HYPERSTUDY_API_KEY) as well as against the simulator (in `npm test`). Each test bounds what it costs
 * upstream, counted on the gateway side.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LISTINGS } from '../../src/spec/data-types.ts';
import { nodes } from '../helpers/stack.ts';
import { startContractTarget, type ContractTarget } from './target.ts';

let target: ContractTarget | undefined;
/** An experiment with rooms the key may read (CONTRACT_EXPERIMENT_ID picks one). */
let experimentId: string;
let roomId: string;

type Conn<T = Record<string, unknown>> = { totalCount: number; edges: { cursor: string; node: T }[]; pageInfo: { hasNextPage: boolean } };

beforeAll(async () => {
  target = await startContractTarget();
  const chosen = process.env.CONTRACT_EXPERIMENT_ID;
  const res = await target.gql<{ experiments: Conn<{ experimentId: string; roomCount: number | null }> }>(
    '{ experiments(first: 20) { totalCount edges { cursor node { experimentId roomCount } } pageInfo { hasNextPage } } }',
  );
  const candidates = nodes<{ experimentId: string; roomCount: number | null }>(res.body.data?.experiments);
  const experiment = chosen ? { experimentId: chosen } : candidates.find((e) => (e.roomCount ?? 0) > 0);
  if (!experiment) throw new Error(`No experiment with rooms visible to the key at ${target.upstream}; set CONTRACT_EXPERIMENT_ID`);
  experimentId = experiment.experimentId;
  const rooms = await target.gql<{ experiment: { rooms: Conn<{ roomId: string }> } }>(
    `query($id: ID!) { experiment(id: $id) { rooms(first: 1) { edges { node { roomId } } } } }`,
    { id: experimentId },
  );
  const room = nodes<{ roomId: string }>(rooms.body.data?.experiment.rooms)[0];
  if (!room) throw new Error(`Experiment ${experimentId} has no rooms`);
  roomId = room.roomId;
});
afterAll(async () => {
  // Nothing to report or close when the target never started (its error is the suite's one message).
  if (target === undefined) return;
  // What the whole suite cost the key, so that users of a real key know.
  console.info(`contract suite against ${target.upstream}: ${target.spent()} upstream requests`);
  await target.close();
});

/** An operation's answer and what it cost upstream. */
async function ask<D>(query: string, variables: Record<string, unknown> = {}) {
  if (target === undefined) throw new Error('the contract target did not start');
  const res = await target.gql<D>(query, variables);
  return { data: res.body.data as D, errors: res.body.errors ?? [], requests: res.body.extensions?.upstream?.requests ?? Number.NaN };
}

describe('contract: experiments', () => {
  it('lists experiments as a connection whose pages join up', async () => {
    const all = await ask<{ experiments: Conn<{ experimentId: string }> }>(
      '{ experiments(first: 4) { totalCount edges { cursor node { experimentId } } } }',
    );
    expect(all.errors).toEqual([]);
    expect(all.data.experiments.totalCount).toBeGreaterThanOrEqual(all.data.experiments.edges.length);
    const ids = nodes<{ experimentId: string }>(all.data.experiments).map((e) => e.experimentId);
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    if (ids.length >= 2) {
      const first = all.data.experiments.edges[0]?.cursor;
      const next = await ask<{ experiments: Conn<{ experimentId: string }> }>(
        'query($after: String) { experiments(first: 1, after: $after) { edges { node { experimentId } } } }',
        { after: first },
      );
      expect(nodes<{ experimentId: string }>(next.data.experiments).map((e) => e.experimentId)).toEqual([ids[1]]);
    }
    expect(all.requests).toBeLessThanOrEqual(1);
  });

  it('answers an experiment by id with its own id, and its access', async () => {
    const res = await ask<{ experiment: { experimentId: string; name: string | null; access: { canView: boolean } } }>(
      'query($id: ID!) { experiment(id: $id) { experimentId name access { canView } } }',
      { id: experimentId },
    );
    expect(res.errors).toEqual([]);
    expect(res.data.experiment).toMatchObject({ experimentId, access: { canView: true } });
    expect(res.requests).toBeLessThanOrEqual(2);
  });

  it('answers NOT_FOUND or FORBIDDEN for an experiment that does not exist, and refuses bad arguments without a request', async () => {
    const missing = await ask('{ experiment(id: "exp_contract_does_not_exist_0") { name } }');
    expect(['NOT_FOUND', 'FORBIDDEN']).toContain(missing.errors[0]?.extensions?.code);
    const bad = await ask('query($id: ID!) { experiment(id: $id) { events(first: 1001) { totalCount } } }', { id: experimentId });
    expect(bad.errors[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(bad.requests).toBeLessThanOrEqual(1);
  });
});

describe('contract: every listing at experiment scope', () => {
  const listings = LISTINGS.filter((spec) => spec.scopes.includes('experiment'));
  it(`reads ${listings.map((s) => s.field).join(', ')} in one round: records of the experiment, counts consistent`, async () => {
    const fields = listings.map((s) => `${s.field}(first: 3) { totalCount warnings edges { node { raw } } }`).join('\n');
    const res = await ask<{ experiment: Record<string, Conn<{ raw: Record<string, unknown> }>> }>(
      `query($id: ID!) { experiment(id: $id) { ${fields} } }`,
      { id: experimentId },
    );
    for (const spec of listings) {
      const error = res.errors.find((e) => e.path?.[1] === spec.field);
      if (error) {
        // A key may lack a scope (or the upstream may not offer a type to it): that is an answer, with a code.
        expect(['FORBIDDEN', 'NOT_FOUND', 'BAD_USER_INPUT'], `${spec.field}: ${error.message}`).toContain(error.extensions?.code);
        continue;
      }
      const conn = res.data.experiment[spec.field];
      expect(conn, spec.field).toBeDefined();
      expect(conn?.totalCount, spec.field).toBeGreaterThanOrEqual(conn?.edges.length ?? 0);
      for (const { node } of conn?.edges ?? []) {
        if ('experimentId' in node.raw) expect(node.raw.experimentId, spec.field).toBe(experimentId);
      }
    }
    // The experiment and one first page per listing (lookahead starts them at once).
    expect(res.requests).toBeLessThanOrEqual(1 + listings.length);
  });
});

describe('contract: planner invariants', () => {
  it("serves a room's events from the experiment listing exactly as the room's own listing", async () => {
    const viaExperiment = await ask<{ experiment: { rooms: Conn<{ roomId: string; events: Conn<{ raw: unknown }> }> } }>(
      `query($id: ID!) { experiment(id: $id) { rooms(first: 3) { edges { node { roomId events(first: 50) { totalCount edges { node { raw } } } } } } } }`,
      { id: experimentId },
    );
    expect(viaExperiment.errors).toEqual([]);
    for (const room of nodes<{ roomId: string; events: Conn<{ raw: unknown }> }>(viaExperiment.data.experiment.rooms)) {
      const own = await ask<{ room: { events: Conn<{ raw: unknown }> } }>(
        'query($id: ID!) { room(id: $id) { events(first: 50) { totalCount edges { node { raw } } } } }',
        { id: room.roomId },
      );
      expect(own.data.room.events.totalCount).toBe(room.events.totalCount);
      expect(nodes<{ raw: unknown }>(own.data.room.events).map((n) => n.raw)).toEqual(
        nodes<{ raw: unknown }>(room.events).map((n) => n.raw),
      );
    }
  });

  it('pages a listing with cursors exactly as one larger window', async () => {
    const q = `query($id: ID!, $first: Int!, $after: String) { room(id: $id) { events(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { raw } } } } }`;
    type R = { room: { events: Conn<{ raw: unknown }> & { pageInfo: { endCursor: string | null } } } };
    const whole = await ask<R>(q, { id: roomId, first: 6 });
    const a = await ask<R>(q, { id: roomId, first: 3 });
    const b = await ask<R>(q, { id: roomId, first: 3, after: a.data.room.events.pageInfo.endCursor });
    const raws = (r: R) => nodes<{ raw: unknown }>(r.room.events).map((n) => n.raw);
    expect([...raws(a.data), ...raws(b.data)]).toEqual(raws(whole.data));
    expect(a.data.room.events.totalCount).toBe(whole.data.room.events.totalCount);
  });
});

describe('contract: newer data', () => {
  it('reads room variables, participant counts and recording download URLs with their shapes', async () => {
    const res = await ask<{
      room: {
        variables: { writes: { variable: string | null }[]; names: string[] } | null;
        participants: Conn<{ counts: { types: { dataType: string; count: number; hasData: boolean }[] } | null }>;
        recordings: Conn<{ downloadUrl: string | null }>;
      };
    }>(
      `query($id: ID!) { room(id: $id) {
        variables { writes { variable } names }
        participants(first: 1) { edges { node { counts { types { dataType count hasData } } } } }
        recordings(first: 1) { edges { node { downloadUrl } } }
      } }`,
      { id: roomId },
    );
    const allowed = ['FORBIDDEN', 'NOT_FOUND'];
    for (const error of res.errors) expect(allowed, error.message).toContain(error.extensions?.code);
    const counts = nodes<{ counts: { types: { count: number; hasData: boolean }[] } | null }>(res.data.room.participants)[0]?.counts;
    for (const c of counts?.types ?? []) {
      expect(c.count).toBeGreaterThanOrEqual(0);
      expect(c.hasData).toBe(c.count > 0);
    }
    for (const r of nodes<{ downloadUrl: string | null }>(res.data.room.recordings)) expect(r.downloadUrl).toMatch(/^https?:\/\//);
    // room, participants and recordings pages, variables, one participant's counts, one download URL.
    expect(res.requests).toBeLessThanOrEqual(6);
  });

  it('reads agent runs and decisions, deployments and personas, each as data or a clear code', async () => {
    const res = await ask<{
      experiment: { agentRuns: Conn; agentDecisions: Conn & { truncated: boolean }; deployments: Conn };
      personas: Conn<{ personaId: string; name: string | null }> | null;
      cognitionCatalog: { abilities: { name: string }[] } | null;
    }>(
      `query($id: ID!) {
        experiment(id: $id) {
          agentRuns(first: 2) { totalCount edges { node { runId participantId } } }
          agentDecisions(first: 2, limitPerRoom: 10) { totalCount truncated edges { node { decisionId seq } } }
          deployments(first: 2) { totalCount edges { node { deploymentId experimentId } } }
        }
        personas(first: 2) { totalCount edges { node { personaId name } } }
        cognitionCatalog { abilities { name } }
      }`,
      { id: experimentId },
    );
    for (const error of res.errors) expect(['FORBIDDEN', 'NOT_FOUND'], error.message).toContain(error.extensions?.code);
    for (const d of nodes<{ experimentId: string }>(res.data.experiment.deployments)) expect(d.experimentId).toBe(experimentId);
    for (const p of nodes<{ personaId: string }>(res.data.personas)) expect(p.personaId.length).toBeGreaterThan(0);
    for (const a of res.data.cognitionCatalog?.abilities ?? []) expect(a.name.length).toBeGreaterThan(0);
    expect(res.requests).toBeLessThanOrEqual(6);
  });
});
