/**
 * The newer upstream data in the graph (issue 8), each compared record for record with direct REST
 * calls to the simulator, with the upstream requests each costs.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { nodes, startStack, stackPerTest, type Stack } from './helpers/stack.ts';
import { EVENTS_ONLY, OTHER, FULL } from './helpers/simulator.ts';

/** A stack of the test's own, closed after it. */
const ownStack = stackPerTest();

const EXP = 'exp_movie01';
const JOINT = 'exp_joint02';
const ROOM = 'room_movie01_001';
const JOINT_ROOM = 'room_joint02_001';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack.close());
beforeEach(() => stack.sim.stats.reset());

type Raw = { raw: Record<string, unknown> };
const raws = (connection: unknown): Record<string, unknown>[] => nodes<Raw>(connection).map((n) => n.raw);
const paths = (): string[] =>
  stack.sim.stats.requests.map((r) => `${r.method} ${r.path.replace('/api/v3', '')}${r.query ? `?${r.query}` : ''}`);

async function rest(path: string, headers: Record<string, string> = {}): Promise<{ data: unknown; metadata: Record<string, unknown> }> {
  const res = await fetch(`${stack.sim.url}${path}`, { headers: { 'x-api-key': FULL, ...headers } });
  return (await res.json()) as never;
}

describe('room variables and participant counts', () => {
  it('reads a room’s variables: the write log and the metadata, in one request', async () => {
    const res = await stack.gql<{ room: { variables: Record<string, unknown> } }>(`{ room(id: "${ROOM}") {
      variables { writes { variable value source persisted stateId timestamp raw } names timeline matrixColumns droppedWrites { variable reason } mode }
    } }`);
    expect(res.body.errors).toBeUndefined();
    const sent = paths();
    const expected = await rest(`/data/variables/room/${ROOM}`);
    const v = res.body.data?.room.variables ?? {};
    expect((v.writes as Raw[]).map((w) => w.raw)).toEqual(expected.data);
    expect((v.writes as Record<string, unknown>[])[0]).toMatchObject({
      variable: 'condition',
      value: 'A',
      source: 'seed',
      persisted: true,
    });
    expect(v.names).toEqual(expected.metadata.variableNames);
    expect(v.timeline).toEqual(expected.metadata.timeline);
    expect(v.matrixColumns).toEqual(expected.metadata.matrixColumns);
    expect(v.droppedWrites).toEqual(expected.metadata.droppedWrites);
    expect((v.droppedWrites as unknown[]).length).toBeGreaterThan(0);
    expect(v.mode).toBe('replay');
    expect(sent).toEqual([`GET /data/rooms/room/${ROOM}?limit=1&offset=0`, `GET /data/variables/room/${ROOM}`]);
  });

  it('reads per-type counts of every participant of a room, and they follow a write', async () => {
    const query = `{ room(id: "${ROOM}") { participants { edges { node { participantId counts { total types { dataType count hasData } } } } } } }`;
    const res = await stack.gql<{ room: { participants: unknown } }>(query);
    expect(res.body.errors).toBeUndefined();
    const people = nodes<{
      participantId: string;
      counts: { total: number; types: { dataType: string; count: number; hasData: boolean }[] };
    }>(res.body.data?.room.participants);
    expect(people).toHaveLength(3);
    for (const p of people) {
      const [row] = (await rest(`/data/counts/participant/${p.participantId}?roomId=${ROOM}`)).data as Record<
        string,
        Record<string, unknown>
      >[];
      const counts = row?.counts ?? {};
      expect(p.counts.types).toEqual(
        Object.entries(counts).map(([dataType, count]) => ({ dataType, count, hasData: row?.hasData?.[dataType] })),
      );
      expect(p.counts.total).toBe(Object.values(counts).reduce((a, b) => Number(a) + Number(b), 0));
    }
    const first = people[0];
    const before = first?.counts.types.find((t) => t.dataType === 'events')?.count ?? 0;
    await stack.gql(
      `mutation { recordEvents(events: [{ experimentId: "${EXP}", roomId: "${ROOM}", participantId: "${first?.participantId}", eventType: "custom.counted" }]) { recorded } }`,
    );
    const after = await stack.gql<{ participant: { counts: { types: { dataType: string; count: number }[] } } }>(
      `{ participant(id: "${first?.participantId}", roomId: "${ROOM}") { counts { types { dataType count } } } }`,
    );
    expect(after.body.data?.participant.counts.types.find((t) => t.dataType === 'events')?.count).toBe(before + 1);
  });
});

describe('recordings’ download URLs', () => {
  it('asks the download route once per recording whose row has no URL, and serves older rows as they are', async () => {
    const listing = (await rest(`/data/recordings/experiment/${EXP}`)).data as Record<string, unknown>[];
    const without = listing.filter((r) => !('downloadUrl' in r));
    const carried = listing.filter((r) => 'downloadUrl' in r);
    expect(without.length).toBeGreaterThan(0);
    expect(carried.length).toBeGreaterThan(0);
    stack.sim.stats.reset();
    const res = await stack.gql<{ experiment: { recordings: unknown; again: unknown } }>(`{ experiment(id: "${EXP}") {
      recordings(first: 1000) { edges { node { recordingId roomId downloadPath downloadUrl } } }
      again: recordings(first: 1000) { edges { node { downloadUrl } } }
    } }`);
    expect(res.body.errors).toBeUndefined();
    const got = nodes<{ recordingId: string; roomId: string; downloadPath: string | null; downloadUrl: string }>(
      res.body.data?.experiment.recordings,
    );
    for (const r of got) {
      const row = listing.find((l) => l.recordingId === r.recordingId);
      if (row && 'downloadUrl' in row) expect(r.downloadUrl).toBe(row.downloadUrl);
      else {
        expect(r.downloadPath).toBe(`/data/recordings/download/${r.roomId}/${r.recordingId}`);
        expect(r.downloadUrl).toMatch(/^https:\/\/.+/);
      }
    }
    const downloads = paths().filter((p) => p.includes('/recordings/download/'));
    expect(downloads.sort()).toEqual(
      without.map((r) => `GET /data/recordings/download/${String(r.roomId)}/${String(r.recordingId)}`).sort(),
    );
  });
});

describe('agent decisions and runs', () => {
  it('lists an experiment’s decisions and runs as the upstream does, and its agent runs', async () => {
    const res = await stack.gql<{
      experiment: { agentDecisions: Record<string, unknown>; agentRuns: unknown };
    }>(`{ experiment(id: "${JOINT}") {
      agentDecisions(first: 1000) { totalCount truncated runs { raw } edges { node { decisionId seq turnKind action value raw } } }
      agentRuns { totalCount edges { node { runId personaId orphaned endedAt raw } } }
    } }`);
    expect(res.body.errors).toBeUndefined();
    const sent = paths();
    const rows = (await rest(`/data/agent-decisions/experiment/${JOINT}`)).data as Record<string, unknown>[];
    const decisions = res.body.data?.experiment.agentDecisions ?? {};
    expect(raws(decisions)).toEqual(rows.filter((r) => r._type === 'decision'));
    expect((decisions.runs as Raw[]).map((r) => r.raw)).toEqual(rows.filter((r) => r._type === 'run'));
    expect(decisions.truncated).toBe(false);
    expect(decisions.totalCount).toBe(rows.filter((r) => r._type === 'decision').length);
    const runs = (await rest(`/data/agent-runs/experiment/${JOINT}`)).data;
    expect(raws(res.body.data?.experiment.agentRuns)).toEqual(runs);
    expect(nodes(res.body.data?.experiment.agentRuns)[0]).toMatchObject({ personaId: 'psn_demo_partner', orphaned: true, endedAt: null });
    expect(sent.filter((p) => p.includes('agent-')).sort()).toEqual([
      `GET /data/agent-decisions/experiment/${JOINT}`,
      `GET /data/agent-runs/experiment/${JOINT}`,
    ]);
  });

  it('caps decisions per room and says so; asks for the detail only when the selection needs it', async () => {
    const capped = await stack.gql<{ room: { agentDecisions: { truncated: boolean; totalCount: number } } }>(
      `{ room(id: "${JOINT_ROOM}") { agentDecisions(limitPerRoom: 3) { truncated totalCount edges { node { seq } } } } }`,
    );
    expect(capped.body.data?.room.agentDecisions).toMatchObject({ truncated: true, totalCount: 3 });
    stack.sim.stats.reset();
    const detail = await stack.gql<{ room: { agentDecisions: unknown } }>(
      `{ room(id: "${JOINT_ROOM}") { agentDecisions(first: 2) { edges { node { decisionId prompt reasoning chain { stage output } } } } } }`,
    );
    expect(detail.body.errors).toBeUndefined();
    const first = nodes<{ decisionId: string; prompt: string; chain: { stage: string }[] }>(detail.body.data?.room.agentDecisions)[0];
    expect(typeof first?.prompt).toBe('string');
    expect(first?.chain.map((c) => c.stage)).toContain('decide');
    expect(paths()).toContain(`GET /data/agent-decisions/room/${JOINT_ROOM}?detail=true`);
    const bad = await stack.gql(`{ room(id: "${JOINT_ROOM}") { agentDecisions(limitPerRoom: 0) { totalCount } } }`);
    expect(bad.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'limitPerRoom' });
  });

  it('reads one decision with its detail, and NOT_FOUND for another', async () => {
    const rows = (await rest(`/data/agent-decisions/room/${JOINT_ROOM}`)).data as Record<string, unknown>[];
    const id = String(rows.find((r) => r._type === 'decision')?.id);
    const res = await stack.gql<{ room: { agentDecision: Record<string, unknown>; missing: null } }>(
      `{ room(id: "${JOINT_ROOM}") { agentDecision(id: "${id}") { decisionId raw participant { participantId } } missing: agentDecision(id: "ppt_nope_1") { decisionId } } }`,
    );
    const expected = (await rest(`/data/agent-decisions/room/${JOINT_ROOM}/decision/${id}`)).data as Record<string, unknown>;
    expect(res.body.data?.room.agentDecision).toEqual({
      decisionId: id,
      raw: expected,
      participant: { participantId: expected.participantId },
    });
    expect(res.body.errors?.map((e) => [e.path?.at(-1), e.extensions?.code])).toEqual([['missing', 'NOT_FOUND']]);
  });
});

describe('deployments', () => {
  it('lists, filters and reads deployments; fields only the single route carries are loaded once each', async () => {
    const res = await stack.gql<Record<string, unknown>>(`{
      all: deployments { totalCount edges { node { deploymentId raw } } }
      active: deployments(experimentId: "${JOINT}", status: "active") { edges { node { deploymentId participantCount maxParticipants } } }
      one: deployment(id: "dep_movie01_a") { deploymentId name participantCount updatedAt experiment { experimentId } raw }
      experiment(id: "${EXP}") { deployments { edges { node { deploymentId } } } }
    }`);
    expect(res.body.errors).toBeUndefined();
    const sent = paths();
    expect(raws(res.body.data?.all)).toEqual((await rest('/deployments')).data);
    const active = (await rest(`/deployments?experimentId=${JOINT}&status=active`)).data as Record<string, unknown>[];
    const expectedActive = await Promise.all(
      active.map(async (d) => {
        const full = (await rest(`/deployments/${String(d.id)}`)).data as Record<string, unknown>;
        return { deploymentId: d.id, participantCount: full.participantCount, maxParticipants: full.maxParticipants };
      }),
    );
    expect(nodes(res.body.data?.active)).toEqual(expectedActive);
    const one = (await rest('/deployments/dep_movie01_a')).data as Record<string, unknown>;
    expect(res.body.data?.one).toEqual({
      deploymentId: 'dep_movie01_a',
      name: 'Lab pilot',
      participantCount: one.participantCount,
      updatedAt: one.updatedAt,
      experiment: { experimentId: EXP },
      raw: one,
    });
    expect(nodes(res.body.data?.experiment && (res.body.data.experiment as Record<string, unknown>).deployments)).toEqual([
      { deploymentId: 'dep_movie01_a' },
      { deploymentId: 'dep_movie01_b' },
    ]);
    const gets = sent.filter((p) => /^GET \/deployments\/dep_/.test(p));
    expect(gets.sort()).toEqual(
      [...new Set(['GET /deployments/dep_movie01_a', ...active.map((d) => `GET /deployments/${String(d.id)}`)])].sort(),
    );
  });

  it('reads a deployment’s sessions and agent spend', async () => {
    const res = await stack.gql<{
      deployment: { sessions: unknown; agentSpend: { total: number; perRoom: { roomId: string; usd: number }[] } };
    }>(
      `{ deployment(id: "dep_joint02_agents") { sessions { totalCount edges { node { roomId status raw } } } agentSpend { total perRoom { roomId usd } } } }`,
    );
    expect(res.body.errors).toBeUndefined();
    expect(raws(res.body.data?.deployment.sessions)).toEqual((await rest('/deployments/dep_joint02_agents/sessions')).data);
    const spend = (await rest('/deployments/dep_joint02_agents/agent-spend')).data as { total: number; perRoom: Record<string, number> };
    expect(res.body.data?.deployment.agentSpend).toEqual({
      total: spend.total,
      perRoom: Object.entries(spend.perRoom).map(([roomId, usd]) => ({ roomId, usd })),
    });
  });

  it('creates an agent deployment whose rooms start, runs more, stops one; each write is one request', async () => {
    const created = await stack.gql<{
      createDeployment: { deploymentId: string; type: string; status: string; deployment: { name: string } };
    }>(
      `mutation { createDeployment(input: { experimentId: "${JOINT}", name: "Gateway agents", rooms: 2, budgetUsd: 3.5 }) { deploymentId type status deployment { name } } }`,
    );
    expect(created.body.errors).toBeUndefined();
    const made = created.body.data?.createDeployment;
    expect(made).toMatchObject({ type: 'agent-only', deployment: { name: 'Gateway agents' } });
    const id = made?.deploymentId ?? '';
    const post = stack.sim.stats.requests.find((r) => r.method === 'POST');
    expect(post?.path).toBe('/api/v3/deployments');
    const sessions = await stack.gql<{ deployment: { sessions: unknown } }>(
      `{ deployment(id: "${id}") { sessions { edges { node { roomId status } } } } }`,
    );
    const rooms = nodes<{ roomId: string; status: string }>(sessions.body.data?.deployment.sessions);
    expect(rooms.map((r) => r.status)).toEqual(['active', 'active']);

    stack.sim.stats.reset();
    const more = await stack.gql<{ runMoreRooms: { requestedRooms: number; batchId: string } }>(
      `mutation { runMoreRooms(deploymentId: "${id}", rooms: 1, budgetUsd: 1) { batchId requestedRooms } }`,
    );
    expect(more.body.data?.runMoreRooms).toMatchObject({ requestedRooms: 1, batchId: expect.any(String) });
    const stopped = await stack.gql<{ stopRoom: { stopped: boolean; roomId: string; room: { status: string } } }>(
      `mutation { stopRoom(deploymentId: "${id}", roomId: "${rooms[0]?.roomId}") { stopped roomId room { status } } }`,
    );
    expect(stopped.body.data?.stopRoom).toEqual({ stopped: true, roomId: rooms[0]?.roomId, room: { status: 'completed' } });
    expect(stack.sim.stats.requests.filter((r) => r.method === 'POST').map((r) => r.path.replace('/api/v3', ''))).toEqual([
      `/deployments/${id}/run-more`,
      `/deployments/${id}/rooms/${rooms[0]?.roomId}/stop`,
    ]);
  });

  it('reports a refused preflight per role, retries only a failed room, and checks arguments first', async () => {
    const refused = await stack.gql(
      `mutation { createDeployment(input: { experimentId: "${EXP}", name: "x", rooms: 1, budgetUsd: 1 }) { deploymentId } }`,
    );
    const error = refused.body.errors?.[0];
    expect(error?.message).toBe('Agent role preflight failed');
    expect(error?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      outcome: 'NOT_APPLIED',
      preflight: [{ role: null, reason: expect.any(String) }],
    });

    const retried = await stack.gql<{ retryRoom: { requestedRooms: number } }>(
      'mutation { retryRoom(deploymentId: "dep_joint02_agents", roomId: "room_joint02_spawn01") { requestedRooms } }',
    );
    expect(retried.body.data?.retryRoom).toEqual({ requestedRooms: 1 });
    const again = await stack.gql(
      'mutation { retryRoom(deploymentId: "dep_joint02_agents", roomId: "room_joint02_spawn01") { requestedRooms } }',
    );
    expect(again.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', outcome: 'NOT_APPLIED' });

    stack.sim.stats.reset();
    for (const [mutation, argument] of [
      [`createDeployment(input: { experimentId: "${JOINT}", name: " ", rooms: 1, budgetUsd: 1 }) { deploymentId }`, 'input.name'],
      [`createDeployment(input: { experimentId: "${JOINT}", name: "x", rooms: 0, budgetUsd: 1 }) { deploymentId }`, 'input.rooms'],
      [`createDeployment(input: { experimentId: "${JOINT}", name: "x", rooms: 1, budgetUsd: -2 }) { deploymentId }`, 'input.budgetUsd'],
      ['runMoreRooms(deploymentId: "..", rooms: 1, budgetUsd: 1) { batchId }', 'deploymentId'],
    ]) {
      const res = await stack.gql(`mutation { ${mutation} }`);
      expect(res.body.errors?.[0]?.extensions, mutation).toMatchObject({ code: 'BAD_USER_INPUT', argument });
    }
    expect(stack.sim.stats.total).toBe(0);
  });
});

describe('personas and the cognition catalog', () => {
  it('lists and reads personas as the upstream does; another user’s is NOT_FOUND', async () => {
    const res = await stack.gql<Record<string, unknown>>(`{
      personas { totalCount edges { node { personaId name provider guardrails { maxTurns budgetTokens } prompt { examples } raw } } }
      persona(id: "psn_demo_partner") { personaId raw }
      hidden: persona(id: "psn_other_private") { personaId }
      cognitionCatalog { abilities { name description } recipes { name abilities } offlineRecipes { name } raw }
    }`);
    expect(raws(res.body.data?.personas)).toEqual((await rest('/personas')).data);
    expect(res.body.data?.persona).toEqual({ personaId: 'psn_demo_partner', raw: (await rest('/personas/psn_demo_partner')).data });
    expect(res.body.errors?.map((e) => [e.path?.[0], e.extensions?.code])).toEqual([['hidden', 'NOT_FOUND']]);
    const [catalog] = (await rest('/agent-cognition/catalog')).data as Record<string, Record<string, unknown>>[];
    const got = res.body.data?.cognitionCatalog as Record<string, unknown>;
    expect(got.raw).toEqual(catalog);
    expect(got.abilities).toEqual(
      Object.entries(catalog?.abilities ?? {}).map(([name, a]) => ({ name, description: (a as { description: string }).description })),
    );
    expect(got.recipes).toEqual(Object.entries(catalog?.recipes ?? {}).map(([name, abilities]) => ({ name, abilities })));
  });

  it('creates, merge-patches, duplicates and deletes a persona', async () => {
    const created = await stack.gql<{ createPersona: Record<string, unknown> }>(`mutation { createPersona(input: {
      name: "Tester", provider: "anthropic", visibility: PRIVATE, memoryPersistence: NONE,
      prompt: { persona: "A tester", examples: ["hi"] }, guardrails: { maxTurns: 10 }, pacing: { minDelayMs: 100 }
    }) { personaId name visibility memoryPersistence ownerId guardrails { maxTurns budgetTokens } prompt { persona examples } } }`);
    expect(created.body.errors).toBeUndefined();
    const made = created.body.data?.createPersona ?? {};
    expect(made).toMatchObject({
      name: 'Tester',
      visibility: 'private',
      memoryPersistence: 'none',
      ownerId: 'user_demo',
      guardrails: { maxTurns: 10, budgetTokens: 500000 },
    });
    const id = String(made.personaId);

    const patched = await stack.gql<{ updatePersona: Record<string, unknown> }>(
      `mutation { updatePersona(id: "${id}", patch: { description: "patched", pacing: null, guardrails: { budgetTokens: 2000 } }) { description pacing guardrails { maxTurns budgetTokens } prompt { persona } } }`,
    );
    expect(patched.body.errors).toBeUndefined();
    expect(patched.body.data?.updatePersona).toEqual({
      description: 'patched',
      pacing: null,
      guardrails: { maxTurns: 10, budgetTokens: 2000 },
      prompt: { persona: 'A tester' },
    });
    const put = stack.sim.stats.requests.find((r) => r.method === 'PUT');
    expect(put?.path).toBe(`/api/v3/personas/${id}`);

    const copy = await stack.gql<{ duplicatePersona: { personaId: string; name: string; visibility: string } }>(
      `mutation { duplicatePersona(id: "${id}") { personaId name visibility } }`,
    );
    expect(copy.body.data?.duplicatePersona).toMatchObject({ name: 'Tester (copy)', visibility: 'private' });
    const gone = await stack.gql<{ deletePersona: unknown }>(`mutation { deletePersona(id: "${id}") { personaId deleted } }`);
    expect(gone.body.data?.deletePersona).toEqual({ personaId: id, deleted: true });
    const missing = await stack.gql(`{ persona(id: "${id}") { personaId } }`);
    expect(missing.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('checks persona input before the upstream', async () => {
    for (const [input, argument] of [
      ['name: " "', 'input.name'],
      ['name: "x", provider: "custom"', 'input.model'],
      ['name: "x", guardrails: { budgetTokens: 10 }', 'input.guardrails.budgetTokens'],
      ['name: "x", guardrails: { budgetUsd: 0 }', 'input.guardrails.budgetUsd'],
      ['name: "x", seedMemories: { a: 1 }', 'input.seedMemories'],
    ]) {
      const res = await stack.gql(`mutation { createPersona(input: { ${input} }) { personaId } }`);
      expect(res.body.errors?.[0]?.extensions, input).toMatchObject({ code: 'BAD_USER_INPUT', argument });
    }
    const empty = await stack.gql('mutation { updatePersona(id: "psn_demo_partner", patch: {}) { personaId } }');
    expect(empty.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'patch' });
    expect(stack.sim.stats.total).toBe(0);
  });
});

describe('shared experiments and X-Organization-Id', () => {
  it('forwards the caller’s organization with the operation, and never shares answers across organizations', async () => {
    const query =
      '{ sharedExperiments { totalCount edges { node { experimentId accessType permissions dataPermissions expiresAt sharedAt ownerOrganizationId raw } } } }';
    const res = await stack.gql<{ sharedExperiments: unknown }>(query, { headers: { 'x-organization-id': 'org_demo' } });
    expect(res.body.errors).toBeUndefined();
    const sent = stack.sim.stats.requests.map((r) => [r.path, r.organizationId]);
    expect(raws(res.body.data?.sharedExperiments)).toEqual((await rest('/experiments/shared', { 'x-organization-id': 'org_demo' })).data);
    expect(nodes(res.body.data?.sharedExperiments)[0]).toMatchObject({
      experimentId: 'exp_other01',
      accessType: 'shared',
      permissions: ['view'],
      dataPermissions: ['view'],
      expiresAt: null,
    });
    expect(sent).toEqual([['/api/v3/experiments/shared', 'org_demo']]);

    stack.sim.stats.reset();
    const other = await stack.gql(query, { headers: { 'x-organization-id': 'org_other' } });
    expect(other.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const none = await stack.gql(query);
    expect(none.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(stack.sim.stats.requests.map((r) => r.organizationId)).toEqual(['org_other', null]);
  });

  it('reads the nested data of a shared experiment for a member of the organization, and refuses it to others', async () => {
    const selection = `experimentId name
      rooms(first: 10) { totalCount edges { node { roomId participants(first: 10) { totalCount edges { node { participantId events(first: 2) { totalCount edges { node { id eventType } } } } } } } } }
      events(first: 3) { totalCount edges { node { id participantId } } }
      sparseRatings(first: 2) { totalCount }
      config`;
    const member = await stack.gql<{ sharedExperiments: unknown }>(`{ sharedExperiments { edges { node { ${selection} } } } }`, {
      headers: { 'x-organization-id': 'org_demo' },
    });
    expect(member.body.errors).toBeUndefined();
    // Every request of the operation went as the organization.
    expect(new Set(stack.sim.stats.requests.map((r) => [r.status, r.organizationId].join(' ')))).toEqual(new Set(['200 org_demo']));
    const owner = await stack.gql<{ experiment: Record<string, unknown> }>(`{ experiment(id: "exp_other01") { ${selection} } }`, {
      key: OTHER,
    });
    expect(owner.body.errors).toBeUndefined();
    expect(nodes(member.body.data?.sharedExperiments)).toEqual([owner.body.data?.experiment]);
    const shared = nodes<{ rooms: { totalCount: number }; events: { totalCount: number } }>(member.body.data?.sharedExperiments)[0];
    expect(shared?.rooms.totalCount).toBe(1);
    expect(shared?.events.totalCount).toBeGreaterThan(0);

    // The same experiment by id: a member with the header reads it, no header or another organization is FORBIDDEN.
    const byId = `{ experiment(id: "exp_other01") { name events(first: 1) { totalCount } access { canView canExport } } }`;
    const asMember = await stack.gql<{ experiment: Record<string, unknown> }>(byId, { headers: { 'x-organization-id': 'org_demo' } });
    expect(asMember.body.errors).toBeUndefined();
    expect(asMember.body.data?.experiment).toMatchObject({ name: 'Private Replication', access: { canView: true, canExport: false } });
    for (const headers of [{}, { 'x-organization-id': 'org_other' }] as Record<string, string>[]) {
      const refused = await stack.gql<{ experiment: unknown }>(byId, { headers });
      expect(refused.body.data?.experiment).toBeNull();
      expect(refused.body.errors?.map((e) => [e.path, e.extensions?.code])).toEqual([[['experiment'], 'FORBIDDEN']]);
    }
    // Naming an organization the key's user is not in: FORBIDDEN, whether the user is the demo user or another.
    for (const [key, org] of [
      [FULL, 'org_other'],
      [OTHER, 'org_demo'],
    ]) {
      const nested = await stack.gql(`{ sharedExperiments { edges { node { name events(first: 1) { totalCount } } } } }`, {
        key,
        headers: { 'x-organization-id': org ?? '' },
      });
      expect(nested.body.errors?.map((e) => [e.path, e.extensions?.code])).toEqual([[['sharedExperiments'], 'FORBIDDEN']]);
    }
  });

  it('keeps answers of one key apart per organization in the shared cache', async () => {
    const cached = await ownStack({}, { CACHE_TTL_MS: '60000' });
    const query = '{ sharedExperiments { totalCount } }';
    await cached.gql(query, { headers: { 'x-organization-id': 'org_demo' } });
    const again = await cached.gql(query, { headers: { 'x-organization-id': 'org_demo' } });
    expect(again.body.extensions?.upstream?.cacheHits).toBe(1);
    const other = await cached.gql(query, { headers: { 'x-organization-id': 'org_other' } });
    expect(other.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(cached.sim.stats.requests.map((r) => r.organizationId)).toEqual(['org_demo', 'org_other']);
  });

  it('refuses an X-Organization-Id that is not an id before any upstream call', async () => {
    const res = await stack.gql('{ experiments { totalCount } }', { headers: { 'x-organization-id': 'org demo/../x' } });
    expect(res.status).toBe(400);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'X-Organization-Id' });
    expect(stack.sim.stats.total).toBe(0);
  });
});

describe('listing metadata', () => {
  it('carries the upstream’s processing and warnings on the connection and in extensions.upstream.warnings', async () => {
    const res = await stack.gql<{
      experiment: { events: { processing: Record<string, unknown>; warnings: string[] }; rooms: { warnings: string[] } };
    }>(
      `{ experiment(id: "${EXP}") { events(first: 1, sort: ONSET) { processing { firstStateStartedAt enriched version } warnings } rooms(first: 1) { warnings } } }`,
    );
    const expected = await rest(`/data/events/experiment/${EXP}?sort=onset&limit=1`);
    const warnings = expected.metadata._warnings as string[];
    expect(warnings[0]).toMatch(/^MISSING_INDEX: /);
    expect(res.body.data?.experiment.events).toEqual({
      processing: {
        firstStateStartedAt: (expected.metadata.processing as Record<string, unknown>).firstStateStartedAt,
        enriched: true,
        version: '3.0.0',
      },
      warnings,
    });
    expect(res.body.data?.experiment.rooms.warnings).toEqual([]);
    expect((res.body.extensions?.upstream as { warnings?: string[] }).warnings).toEqual(warnings);
  });

  it('reads events of categories the gateway has never seen', async () => {
    const res = await stack.gql<{ room: { events: unknown } }>(
      `{ room(id: "${ROOM}") { events(first: 1000, category: SCANNER) { edges { node { category } } } } }`,
    );
    const got = nodes<{ category: string }>(res.body.data?.room.events);
    expect(got.length).toBeGreaterThan(0);
    expect(new Set(got.map((e) => e.category))).toEqual(new Set(['scanner']));
    await stack.gql(
      `mutation { recordEvents(events: [{ experimentId: "${EXP}", roomId: "${ROOM}", participantId: "${String(((await rest(`/data/participants/room/${ROOM}?limit=1`)).data as { id: string }[])[0]?.id)}", eventType: "eye.blink", category: "blink_detector" }]) { recorded } }`,
    );
    const fresh = await stack.gql<{ room: { events: { totalCount: number; edges: { node: { category: string } }[] } } }>(
      `{ room(id: "${ROOM}") { events(category: "blink_detector") { totalCount edges { node { category } } } } }`,
    );
    expect(fresh.body.data?.room.events).toEqual({ totalCount: 1, edges: [{ node: { category: 'blink_detector' } }] });
  });
});

describe('bad input to the newer data', () => {
  it('answers another user’s deployment and a missing scope with their codes, and the rest still arrives', async () => {
    const res = await stack.gql<Record<string, unknown>>(
      `{ foreign: deployment(id: "dep_other01_a") { name } missing: deployment(id: "dep_nope") { name } personas { totalCount } experiment(id: "${EXP}") { name } }`,
      { key: EVENTS_ONLY },
    );
    expect(res.body.data).toEqual({ foreign: null, missing: null, personas: null, experiment: { name: 'Movie Watching Study' } });
    expect(res.body.errors?.map((e) => [e.path?.[0], e.extensions?.code]).sort()).toEqual([
      ['foreign', 'FORBIDDEN'],
      ['missing', 'NOT_FOUND'],
      ['personas', 'FORBIDDEN'],
    ]);
  });

  it('refuses another user’s deployment writes as NOT_APPLIED', async () => {
    const res = await stack.gql('mutation { runMoreRooms(deploymentId: "dep_joint02_agents", rooms: 1, budgetUsd: 1) { batchId } }', {
      key: OTHER,
    });
    expect(['FORBIDDEN', 'NOT_FOUND']).toContain(res.body.errors?.[0]?.extensions?.code);
    expect(res.body.errors?.[0]?.extensions?.outcome).toBe('NOT_APPLIED');
  });
});
