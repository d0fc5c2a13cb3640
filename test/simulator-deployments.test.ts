import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../src/simulator/server.ts';
import { call } from './helpers/http.ts';
import { FULL, NO_RATE_LIMIT, READONLY, EVENTS_ONLY, OTHER } from './helpers/simulator.ts';

const RECORDINGS_ONLY = 'hst_test_recordings_only';
const PILOT = 'exp_joint02';

type Row = Record<string, unknown>;
interface Envelope<D = Row[]> {
  status: string;
  data: D;
  metadata: Row;
  error?: { code: string; message: string; details: Row };
}

// Every test writes, so each has its own simulator.
let sim: Simulator;
beforeEach(async () => {
  sim = await startSimulator({
    rateLimit: NO_RATE_LIMIT,
    extraKeys: [{ key: RECORDINGS_ONLY, name: 'recordings_only', userId: 'user_demo', scopes: ['read:recordings'] }],
  });
});
afterEach(() => sim.close());

const get = <D = Row[]>(path: string, key = FULL) => call<Envelope<D>>(`${sim.url}${path}`, { key });
const post = <D = Row>(path: string, body?: unknown, key = FULL) =>
  call<Envelope<D>>(`${sim.url}${path}`, body === undefined ? { key, method: 'POST' } : { key, body });

const agentDeployment = (rooms = 2, experimentId = PILOT) => ({
  experimentId,
  config: { name: 'Agent wave', type: 'agent-only', agentDeployment: { rooms, budgetUsd: 12.5 }, notes: 'extra keys are fine' },
});

describe('deployments, read', () => {
  it('lists the key user’s deployments, filtered by experiment and status', async () => {
    const res = await get('/deployments');
    expect(res.body.metadata).toMatchObject({ dataType: 'deployments', scope: 'user', scopeId: 'user_demo' });
    expect(res.body).not.toHaveProperty('metadata.pagination');
    expect(res.body.data.map((d) => [d.id, d.experimentId, d.name, d.status, d.type])).toEqual([
      ['dep_movie01_a', 'exp_movie01', 'Lab pilot', 'completed', 'lab'],
      ['dep_movie01_b', 'exp_movie01', 'Online wave 1', 'active', 'online'],
      ['dep_joint02_a', PILOT, 'Lab pilot', 'active', 'lab'],
      ['dep_joint02_b', PILOT, 'Online wave 1', 'completed', 'online'],
      ['dep_joint02_agents', PILOT, 'Agent pilot', 'active', 'agent-only'],
    ]);
    expect(res.body.data[0]).toEqual({
      id: 'dep_movie01_a',
      experimentId: 'exp_movie01',
      name: 'Lab pilot',
      status: 'completed',
      type: 'lab',
      ownerId: 'user_demo',
      ownerName: 'Demo Researcher',
      createdAt: '2024-09-24T09:00:00.000Z',
    });
    expect((await get(`/deployments?experimentId=${PILOT}&status=active`)).body.data.map((d) => d.id)).toEqual([
      'dep_joint02_a',
      'dep_joint02_agents',
    ]);
    expect((await get('/deployments?status=paused')).body.data).toEqual([]);
    expect((await get('/deployments', OTHER)).body.data.map((d) => d.id)).toEqual(['dep_other01_a', 'dep_other01_b']);
  });

  it('refuses a bad status, another user’s or an unknown experiment, and a key without read:experiments', async () => {
    expect((await get('/deployments?status=running')).body.error).toEqual({
      code: 'INVALID_PARAMETER',
      message: "Invalid value for parameter 'status'",
      details: { parameter: 'status', value: 'running', expected: 'one of active, paused, completed, archived' },
    });
    expect((await get('/deployments?experimentId=exp_other01')).status).toBe(403);
    expect((await get('/deployments?experimentId=exp_nope')).status).toBe(404);
    expect((await get('/deployments', EVENTS_ONLY)).status).toBe(200);
    expect((await get('/deployments', RECORDINGS_ONLY)).body.error?.details).toEqual({
      required: ['read:experiments'],
      provided: ['read:recordings'],
    });
  });

  it('gets one deployment as a bare object with its counts', async () => {
    const res = await get<Row>('/deployments/dep_movie01_a');
    expect(res.body.data).toEqual({
      id: 'dep_movie01_a',
      experimentId: 'exp_movie01',
      name: 'Lab pilot',
      status: 'completed',
      type: 'lab',
      ownerId: 'user_demo',
      ownerName: 'Demo Researcher',
      createdAt: '2024-09-24T09:00:00.000Z',
      participantCount: 6,
      maxParticipants: 100,
      updatedAt: '2024-09-25T09:00:00.000Z',
    });
    expect(res.body.metadata).toMatchObject({ dataType: 'deployment', scope: 'deployment', scopeId: 'dep_movie01_a' });
    expect((await get('/deployments/dep_nope')).body.error).toEqual({
      code: 'NOT_FOUND',
      message: 'Deployment not found: dep_nope',
      details: { resource: 'deployment', id: 'dep_nope' },
    });
    expect((await get('/deployments/dep_other01_a')).body.error).toEqual({
      code: 'FORBIDDEN',
      message: 'You do not have access to this deployment',
      details: { resource: 'deployment', id: 'dep_other01_a' },
    });
  });

  it('lists a deployment’s sessions (rooms), and a failed spawn as a failed session', async () => {
    const rooms = (await get('/data/rooms/experiment/exp_movie01?deploymentId=dep_movie01_a')).body.data;
    const res = await get('/deployments/dep_movie01_a/sessions');
    expect(res.body.metadata).toMatchObject({ dataType: 'sessions', scope: 'deployment', scopeId: 'dep_movie01_a' });
    expect(res.body.data).toEqual(
      rooms.map((r) => ({
        id: r.id,
        experimentId: 'exp_movie01',
        deploymentId: 'dep_movie01_a',
        status: r.status,
        participantCount: 3,
        createdAt: r.createdAt,
      })),
    );
    expect(res.body.data.map((r) => r.id)).toEqual(['room_movie01_001', 'room_movie01_003']);
    expect((await get('/deployments/dep_joint02_agents/sessions')).body.data).toEqual([
      {
        id: 'room_joint02_spawn01',
        experimentId: PILOT,
        deploymentId: 'dep_joint02_agents',
        status: 'failed',
        participantCount: 0,
        createdAt: '2024-10-31T13:01:00.000Z',
      },
    ]);
    expect((await get('/deployments/dep_other01_a/sessions')).status).toBe(403);
  });

  it('sums agent spend over the deployment’s rooms', async () => {
    const runs = (await get(`/data/agent-runs/experiment/${PILOT}`)).body.data;
    const spend = await get<Row>('/deployments/dep_joint02_a/agent-spend');
    expect(spend.body.data).toEqual({ total: runs[0]?.totalCostUsd, perRoom: { room_joint02_001: runs[0]?.totalCostUsd } });
    expect((await get<Row>('/deployments/dep_movie01_a/agent-spend')).body.data).toEqual({ total: 0, perRoom: {} });
    expect((await get('/deployments/dep_nope/agent-spend')).status).toBe(404);
  });
});

describe('agent-only deployments, write', () => {
  it('creates one after the preflight, and starts its rooms at once', async () => {
    const created = await post('/deployments', agentDeployment(2));
    expect(created.status).toBe(201);
    const id = String(created.body.data.id);
    expect(created.body.data).toEqual({ id, type: 'agent-only', status: 'active' });
    const sessions = (await get(`/deployments/${id}/sessions`)).body.data;
    expect(sessions.map((s) => [s.id, s.status, s.participantCount])).toEqual([
      [`room_${id.slice(4)}_001`, 'active', 1],
      [`room_${id.slice(4)}_002`, 'active', 1],
    ]);
    const rooms = (await get(`/data/rooms/experiment/${PILOT}`)).body.data;
    expect(rooms.map((r) => r.id)).toEqual(['room_joint02_001', ...sessions.map((s) => s.id)]);
    expect(rooms[1]).toMatchObject({ deploymentId: id, deploymentName: 'Agent wave', status: 'active', endedAt: null });
    const agents = (await get(`/data/participants/room/${String(sessions[0]?.id)}`)).body.data;
    expect(agents.map((p) => [p.role, p.name, p.status, p.completionCode])).toEqual([
      ['partner', 'Curious partner', 'active', 'IN_PROGRESS'],
    ]);
    const runs = (await get(`/data/agent-runs/experiment/${PILOT}`)).body.data.filter((r) => r.roomId !== 'room_joint02_001');
    expect(runs.map((r) => [r.roomId, r.participantId, r.roomStatus, r.turns, r.totalCostUsd, r.endedAt])).toEqual(
      sessions.map((s, i) => [s.id, i === 0 ? agents[0]?.id : expect.any(String), 'active', 0, 0, null]),
    );
    expect((await get<Row>(`/deployments/${id}`)).body.data).toMatchObject({ participantCount: 2, maxParticipants: 2, type: 'agent-only' });
    expect((await get(`/deployments?experimentId=${PILOT}`)).body.data.map((d) => d.id)).toContain(id);
    expect((await get(`/experiments/${PILOT}`)).body.data[0]).toMatchObject({ roomCount: 3, participantCount: 5 });
    expect((await get<Row>(`/deployments/${id}/agent-spend`)).body.data).toEqual({
      total: 0,
      perRoom: Object.fromEntries(sessions.map((s) => [s.id, 0])),
    });
  });

  it('fails the preflight of a human study with one study-level entry', async () => {
    const res = await post('/deployments', agentDeployment(1, 'exp_movie01'));
    expect(res.status).toBe(400);
    expect(res.body.error).toEqual({
      code: 'VALIDATION_ERROR',
      message: 'Agent role preflight failed',
      details: { errors: [{ role: null, reason: 'The experiment has no role with mode "agent"' }] },
    });
    expect((await get('/data/rooms/experiment/exp_movie01')).body.data).toHaveLength(4);
  });

  it('reports every failing agent role: missing persona, a persona the user may not use, the wrong runtime', async () => {
    const experiment = await post<Row[]>('/experiments', {
      name: 'Agents everywhere',
      runtime: 'v1',
      roles: {
        human: { mode: 'human' },
        unbound: { mode: 'agent' },
        foreign: { mode: 'agent', personaId: 'psn_other_private' },
        ghost: { mode: 'agent', personaId: 'psn_nope' },
        shared: { mode: 'agent', personaId: 'psn_demo_confederate' },
      },
    });
    const res = await post('/deployments', agentDeployment(1, String(experiment.body.data[0]?.id)));
    expect(res.body.error).toEqual({
      code: 'VALIDATION_ERROR',
      message: 'Agent role preflight failed',
      details: {
        errors: [
          { role: null, reason: 'Agent rooms need runtime "v2"; the experiment has "v1"' },
          { role: 'unbound', reason: 'No persona is bound to this role (personaId is missing)' },
          { role: 'foreign', reason: 'Persona psn_other_private does not exist or is not available to you' },
          { role: 'ghost', reason: 'Persona psn_nope does not exist or is not available to you' },
        ],
      },
    });
  });

  it('validates the body with field errors', async () => {
    const empty = await post('/deployments', {});
    expect(empty.body.error).toEqual({
      code: 'VALIDATION_ERROR',
      message: 'The deployment is not valid',
      details: {
        errors: [
          { field: 'experimentId', message: 'experimentId is required and must be a non-empty string' },
          { field: 'config', message: 'config is required and must be an object' },
        ],
      },
    });
    const bad = await post('/deployments', {
      experimentId: PILOT,
      config: { name: ' ', type: 'mixed', agentDeployment: { rooms: 0, budgetUsd: -1 } },
    });
    expect(bad.body.error?.details).toEqual({
      errors: [
        { field: 'config.name', message: 'name is required and must be a non-empty string' },
        { field: 'config.type', message: 'type must be "agent-only" (the only type the API creates)' },
        { field: 'config.agentDeployment.rooms', message: 'rooms must be an integer from 1 to 50' },
        { field: 'config.agentDeployment.budgetUsd', message: 'budgetUsd must be a number > 0' },
      ],
    });
    const noAgents = await post('/deployments', { experimentId: PILOT, config: { name: 'x', type: 'agent-only' } });
    expect(noAgents.body.error?.details).toEqual({
      errors: [{ field: 'config.agentDeployment', message: 'agentDeployment is required and must be an object with rooms and budgetUsd' }],
    });
    expect((await post('/deployments', [1, 2])).body.error?.code).toBe('VALIDATION_ERROR');
    expect((await post('/deployments', agentDeployment(1, 'exp_nope'))).status).toBe(404);
    expect((await post('/deployments', agentDeployment(1), OTHER)).status).toBe(403);
    expect((await post('/deployments', agentDeployment(1), READONLY)).body.error?.details).toEqual({
      required: ['write:deployments'],
      provided: ['read:*'],
    });
    expect((await get('/deployments')).body.data).toHaveLength(5);
  });

  it('runs more rooms in an agent-only deployment', async () => {
    const id = String((await post('/deployments', agentDeployment(1))).body.data.id);
    const more = await post(`/deployments/${id}/run-more`, { rooms: 3, budgetUsd: 4 });
    expect(more.status).toBe(202);
    expect(more.body.data).toEqual({ batchId: expect.stringMatching(/^batch_[a-z0-9]{10}$/), requestedRooms: 3 });
    expect((await get(`/deployments/${id}/sessions`)).body.data.map((s) => s.id)).toEqual(
      [1, 2, 3, 4].map((n) => `room_${id.slice(4)}_00${n}`),
    );
    expect((await post(`/deployments/${id}/run-more`, { rooms: 1.5 })).body.error).toEqual({
      code: 'VALIDATION_ERROR',
      message: 'The request is not valid',
      details: {
        errors: [
          { field: 'rooms', message: 'rooms must be an integer from 1 to 50' },
          { field: 'budgetUsd', message: 'budgetUsd must be a number > 0' },
        ],
      },
    });
    expect((await post('/deployments/dep_movie01_a/run-more', { rooms: 1, budgetUsd: 1 })).body.error).toEqual({
      code: 'VALIDATION_ERROR',
      message: 'Deployment dep_movie01_a is not agent-only; only agent-only deployments start rooms',
      details: { deploymentId: 'dep_movie01_a', type: 'lab' },
    });
    expect((await post('/deployments/dep_other01_a/run-more', { rooms: 1, budgetUsd: 1 })).status).toBe(403);
    expect((await post('/deployments/dep_nope/run-more', { rooms: 1, budgetUsd: 1 })).status).toBe(404);
    expect((await post(`/deployments/${id}/run-more`, { rooms: 1, budgetUsd: 1 }, READONLY)).status).toBe(403);
  });

  it('stops an active room: the room, its participants and its agent runs end', async () => {
    const id = String((await post('/deployments', agentDeployment(1))).body.data.id);
    const roomId = `room_${id.slice(4)}_001`;
    const stopped = await post(`/deployments/${id}/rooms/${roomId}/stop`);
    expect(stopped.status).toBe(200);
    expect(stopped.body.data).toEqual({ stopped: true });
    const room = (await get(`/data/rooms/room/${roomId}`)).body.data[0];
    expect(room).toMatchObject({ status: 'completed', endedAt: expect.any(String) });
    const run = (await get(`/data/agent-runs/experiment/${PILOT}`)).body.data.find((r) => r.roomId === roomId);
    expect(run).toMatchObject({ roomStatus: 'completed', orphaned: false, endedAt: room?.endedAt });
    expect((await get(`/data/participants/room/${roomId}`)).body.data.map((p) => [p.status, p.completionCode, p.completedAt])).toEqual([
      ['completed', 'COMPLETED_NO_CODE', room?.endedAt],
    ]);
    expect((await get(`/deployments/${id}/sessions`)).body.data.map((s) => s.status)).toEqual(['completed']);
    expect((await post(`/deployments/${id}/rooms/${roomId}/stop`)).body.error).toEqual({
      code: 'VALIDATION_ERROR',
      message: `Room ${roomId} is not active (status completed); only an active room can be stopped`,
      details: { roomId, status: 'completed' },
    });
    expect((await post(`/deployments/${id}/rooms/room_joint02_001/stop`)).body.error).toEqual({
      code: 'NOT_FOUND',
      message: 'Room not found: room_joint02_001',
      details: { resource: 'room', id: 'room_joint02_001', deploymentId: id },
    });
    expect((await post(`/deployments/${id}/rooms/${roomId}/stop`, undefined, READONLY)).status).toBe(403);
  });

  it('retries only a room whose spawn failed, once', async () => {
    const retried = await post('/deployments/dep_joint02_agents/rooms/room_joint02_spawn01/retry');
    expect(retried.status).toBe(202);
    expect(retried.body.data).toEqual({ batchId: expect.stringMatching(/^batch_/), requestedRooms: 1 });
    const sessions = (await get('/deployments/dep_joint02_agents/sessions')).body.data;
    expect(sessions.map((s) => [s.id, s.status])).toEqual([
      ['room_joint02_spawn01', 'failed'],
      ['room_joint02_agents_002', 'active'],
    ]);
    expect((await get(`/data/rooms/experiment/${PILOT}`)).body.data.map((r) => r.id)).toEqual([
      'room_joint02_001',
      'room_joint02_agents_002',
    ]);
    expect((await post('/deployments/dep_joint02_agents/rooms/room_joint02_spawn01/retry')).body.error).toEqual({
      code: 'VALIDATION_ERROR',
      message: 'Room room_joint02_spawn01 was already retried',
      details: { roomId: 'room_joint02_spawn01', status: 'failed' },
    });
    expect((await post('/deployments/dep_joint02_agents/rooms/room_joint02_agents_002/retry')).body.error).toEqual({
      code: 'VALIDATION_ERROR',
      message: 'Room room_joint02_agents_002 did not fail to spawn (status active); only a room whose spawn failed can be retried',
      details: { roomId: 'room_joint02_agents_002', status: 'active' },
    });
    expect((await post('/deployments/dep_joint02_a/rooms/room_joint02_001/retry')).status).toBe(400);
    expect((await post('/deployments/dep_joint02_agents/rooms/room_nope/retry')).status).toBe(404);
    expect((await post('/deployments/dep_other01_a/rooms/room_other01_001/retry')).status).toBe(403);
  });

  it('answers 405 for a method a deployment route does not have', async () => {
    const res = await call<Envelope>(`${sim.url}/deployments/dep_movie01_a`, { key: FULL, method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(res.body.error).toEqual({ code: 'METHOD_NOT_ALLOWED', message: 'DELETE is not allowed here', details: { allowed: ['GET'] } });
  });
});
