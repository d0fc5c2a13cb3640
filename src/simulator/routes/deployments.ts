/**
 * `/deployments…`: the key user's deployments, their sessions (rooms) and agent spend; agent-only
 * deployments are created (after the agent-role preflight), grown, and their rooms stopped or retried.
 */
import { agentRun } from '../agents.ts';
import { ApiFailure, invalidParameter } from '../errors.ts';
import { endRoom, joinRoom, openRoom } from '../lifecycle.ts';
import { DEPLOYMENT_STATUSES, type ApiKey, type Deployment, type Experiment, type JsonObject } from '../model.ts';
import {
  iso,
  notFound,
  objectBody,
  requireScope,
  success,
  validationError,
  visibleExperiment,
  type ApiContext,
  type ApiRequest,
  type ApiResult,
  type Route,
} from './common.ts';
import { canUsePersona } from './personas.ts';

const READ = 'read:experiments';
const WRITE = 'write:deployments';
/** The most rooms one create, run-more or retry may start. */
export const MAX_ROOMS_PER_REQUEST = 50;
const AGENT_SESSION_MS = 20 * 60_000;

function ownDeployment(ctx: ApiContext, key: ApiKey, id: string): Deployment {
  const d = ctx.store.deployments.get(id);
  if (!d) throw notFound('deployment', id);
  if (d.ownerId !== key.userId)
    throw new ApiFailure(403, 'FORBIDDEN', 'You do not have access to this deployment', { resource: 'deployment', id });
  return d;
}

function deploymentRow(ctx: ApiContext, d: Deployment): JsonObject {
  return {
    id: d.id,
    experimentId: d.experimentId,
    name: d.name,
    status: d.status,
    type: d.type,
    ownerId: d.ownerId,
    ownerName: ctx.store.users.get(d.ownerId)?.name ?? null,
    createdAt: iso(d.createdAt),
  };
}

const roomsOf = (ctx: ApiContext, d: Deployment) =>
  (ctx.store.index('rooms').byExperiment.get(d.experimentId) ?? []).filter((s) => s.deploymentId === d.id);

function listDeployments(ctx: ApiContext, req: ApiRequest): ApiResult {
  requireScope(req.key, READ);
  const experimentId = req.params.get('experimentId');
  const status = req.params.get('status');
  if (experimentId !== null) visibleExperiment(ctx, req.key, experimentId);
  if (status !== null && !(DEPLOYMENT_STATUSES as readonly string[]).includes(status)) {
    throw invalidParameter('status', status, `one of ${DEPLOYMENT_STATUSES.join(', ')}`);
  }
  const rows = [...ctx.store.deployments.values()]
    .filter((d) => d.ownerId === req.key.userId && !ctx.store.experiments.get(d.experimentId)?.deleted)
    .filter((d) => (experimentId === null || d.experimentId === experimentId) && (status === null || d.status === status))
    .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))
    .map((d) => deploymentRow(ctx, d));
  return success(ctx, rows, { dataType: 'deployments', scope: 'user', scopeId: req.key.userId, query: { experimentId, status } });
}

function getDeployment(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): ApiResult {
  requireScope(req.key, READ);
  const d = ownDeployment(ctx, req.key, params.id ?? '');
  const participantCount = (ctx.store.index('participants').byExperiment.get(d.experimentId) ?? []).filter(
    (s) => s.deploymentId === d.id,
  ).length;
  return success(
    ctx,
    { ...deploymentRow(ctx, d), participantCount, maxParticipants: d.maxParticipants, updatedAt: iso(d.updatedAt) },
    { dataType: 'deployment', scope: 'deployment', scopeId: d.id },
  );
}

/** The deployment's rooms (and the rooms whose spawn failed, status `failed`), by creation. */
function sessions(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): ApiResult {
  requireScope(req.key, READ);
  const d = ownDeployment(ctx, req.key, params.id ?? '');
  const rows: { at: number; row: JsonObject }[] = roomsOf(ctx, d).map((s) => ({
    at: s.time,
    row: {
      id: s.roomId,
      experimentId: d.experimentId,
      deploymentId: d.id,
      status: s.record.status ?? null,
      participantCount: s.record.participantCount ?? 0,
      createdAt: s.record.createdAt ?? null,
    },
  }));
  for (const [roomId, failure] of d.spawnFailures) {
    rows.push({
      at: failure.createdAt,
      row: {
        id: roomId,
        experimentId: d.experimentId,
        deploymentId: d.id,
        status: 'failed',
        participantCount: 0,
        createdAt: iso(failure.createdAt),
      },
    });
  }
  rows.sort((a, b) => a.at - b.at || String(a.row.id).localeCompare(String(b.row.id)));
  return success(
    ctx,
    rows.map((r) => r.row),
    { dataType: 'sessions', scope: 'deployment', scopeId: d.id },
  );
}

const usd = (n: number): number => Math.round(n * 1e6) / 1e6;

/** What the deployment's agents cost: the sum of its rooms' agent runs, and per room that has agents. */
function agentSpend(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): ApiResult {
  requireScope(req.key, READ);
  const d = ownDeployment(ctx, req.key, params.id ?? '');
  const perRoom: JsonObject = {};
  let total = 0;
  for (const room of roomsOf(ctx, d)) {
    const runs = ctx.store.agentRuns.get(room.roomId);
    if (!runs || runs.length === 0) continue;
    const spent = usd(runs.reduce((n, r) => n + Number(r.run.totalCostUsd ?? 0), 0));
    perRoom[room.roomId] = spent;
    total += spent;
  }
  return success(ctx, { total: usd(total), perRoom }, { dataType: 'agentSpend', scope: 'deployment', scopeId: d.id });
}

/** Why an experiment cannot run agent-only rooms: one `{role, reason}` per failing role (`role` null for the study). */
function preflight(ctx: ApiContext, userId: string, experiment: Experiment): JsonObject[] {
  const roles = experiment.record.roles;
  const agentRoles =
    roles !== null && typeof roles === 'object' && !Array.isArray(roles)
      ? Object.entries(roles).filter(([, r]) => r !== null && typeof r === 'object' && !Array.isArray(r) && r.mode === 'agent')
      : [];
  if (agentRoles.length === 0) return [{ role: null, reason: 'The experiment has no role with mode "agent"' }];
  const errors: JsonObject[] = [];
  if (experiment.record.runtime !== 'v2') {
    errors.push({
      role: null,
      reason: `Agent rooms need runtime "v2"; the experiment has ${JSON.stringify(experiment.record.runtime ?? null)}`,
    });
  }
  for (const [role, value] of agentRoles) {
    const personaId = value !== null && typeof value === 'object' && !Array.isArray(value) ? value.personaId : undefined;
    if (typeof personaId !== 'string' || personaId === '') {
      errors.push({ role, reason: 'No persona is bound to this role (personaId is missing)' });
      continue;
    }
    const persona = ctx.store.personas.get(personaId);
    if (!persona || !canUsePersona(ctx, userId, persona))
      errors.push({ role, reason: `Persona ${personaId} does not exist or is not available to you` });
  }
  return errors;
}

function requirePreflight(ctx: ApiContext, userId: string, experiment: Experiment): void {
  const errors = preflight(ctx, userId, experiment);
  if (errors.length > 0) throw validationError('Agent role preflight failed', { errors });
}

/** Starts one agent-only room at once: one agent participant (with a run) per agent role. */
function spawnRoom(ctx: ApiContext, d: Deployment, experiment: Experiment): void {
  const { store } = ctx;
  const now = ctx.now();
  const n = roomsOf(ctx, d).length + d.spawnFailures.size + 1;
  const roomId = `room_${d.id.slice(4)}_${String(n).padStart(3, '0')}`;
  const roles = (experiment.record.roles ?? {}) as Record<string, JsonObject>;
  const agents = Object.entries(roles)
    .filter(([, r]) => r.mode === 'agent')
    .map(([role, r]) => ({ role, id: `ppt_${ctx.rng.id(10)}`, persona: store.personas.get(String(r.personaId))?.record ?? {} }));
  const base = { experimentId: d.experimentId, roomId, deploymentId: d.id };
  openRoom(store, { roomId, experimentId: d.experimentId, deployment: d, at: now, endsAt: now + AGENT_SESSION_MS });
  for (const agent of agents) {
    joinRoom(store, roomId, { id: agent.id, email: null, name: String(agent.persona.name ?? agent.role), role: agent.role }, now);
  }
  const states = (experiment.record.states as JsonObject[] | undefined) ?? [];
  store.agentRuns.set(
    roomId,
    agents.map((agent) =>
      agentRun(
        ctx.rng,
        {
          ...base,
          participantId: agent.id,
          peers: agents.filter((a) => a.id !== agent.id).map((a) => a.id),
          persona: agent.persona,
          states,
          startedAt: now,
          endsAt: now + AGENT_SESSION_MS,
        },
        { decisions: 0, orphaned: false, ended: false },
      ),
    ),
  );
  store.variables.set(roomId, { writes: [], droppedWrites: [] });
  d.maxParticipants = (d.maxParticipants ?? 0) + agents.length;
  d.updatedAt = now;
}

type FieldErrors = { field: string; message: string }[];

function checkRoomsAndBudget(value: Record<string, unknown>, at: string, errors: FieldErrors): void {
  const rooms = value.rooms;
  if (!Number.isSafeInteger(rooms) || (rooms as number) < 1 || (rooms as number) > MAX_ROOMS_PER_REQUEST) {
    errors.push({ field: `${at}rooms`, message: `rooms must be an integer from 1 to ${MAX_ROOMS_PER_REQUEST}` });
  }
  const budget = value.budgetUsd;
  if (typeof budget !== 'number' || !Number.isFinite(budget) || budget <= 0) {
    errors.push({ field: `${at}budgetUsd`, message: 'budgetUsd must be a number > 0' });
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

async function createDeployment(ctx: ApiContext, req: ApiRequest): Promise<ApiResult> {
  requireScope(req.key, WRITE);
  const body = await objectBody(req);
  const errors: FieldErrors = [];
  if (typeof body.experimentId !== 'string' || body.experimentId === '') {
    errors.push({ field: 'experimentId', message: 'experimentId is required and must be a non-empty string' });
  }
  const config = body.config;
  if (!isObject(config)) errors.push({ field: 'config', message: 'config is required and must be an object' });
  else {
    if (typeof config.name !== 'string' || config.name.trim() === '') {
      errors.push({ field: 'config.name', message: 'name is required and must be a non-empty string' });
    }
    if (config.type !== 'agent-only')
      errors.push({ field: 'config.type', message: 'type must be "agent-only" (the only type the API creates)' });
    if (!isObject(config.agentDeployment)) {
      errors.push({
        field: 'config.agentDeployment',
        message: 'agentDeployment is required and must be an object with rooms and budgetUsd',
      });
    } else checkRoomsAndBudget(config.agentDeployment, 'config.agentDeployment.', errors);
  }
  if (errors.length > 0 || !isObject(config) || !isObject(config.agentDeployment)) {
    throw validationError('The deployment is not valid', { errors });
  }
  const experiment = visibleExperiment(ctx, req.key, String(body.experimentId));
  requirePreflight(ctx, req.key.userId, experiment);
  const now = ctx.now();
  const d: Deployment = {
    id: `dep_${ctx.rng.id(10)}`,
    experimentId: experiment.id,
    ownerId: req.key.userId,
    name: String(config.name),
    type: 'agent-only',
    status: 'active',
    createdAt: now,
    updatedAt: now,
    maxParticipants: 0,
    budgetUsd: Number(config.agentDeployment.budgetUsd),
    spawnFailures: new Map(),
  };
  ctx.store.deployments.set(d.id, d);
  for (let i = 0; i < Number(config.agentDeployment.rooms); i++) spawnRoom(ctx, d, experiment);
  return success(ctx, { id: d.id, type: d.type, status: d.status }, { dataType: 'deployment' }, 201);
}

/** A deployment that may start rooms: agent-only and active, its experiment still passing the preflight. */
function startable(ctx: ApiContext, req: ApiRequest, d: Deployment): Experiment {
  if (d.type !== 'agent-only')
    throw validationError(`Deployment ${d.id} is not agent-only; only agent-only deployments start rooms`, {
      deploymentId: d.id,
      type: d.type,
    });
  if (d.status !== 'active')
    throw validationError(`Deployment ${d.id} is ${d.status}; only an active deployment starts rooms`, {
      deploymentId: d.id,
      status: d.status,
    });
  const experiment = visibleExperiment(ctx, req.key, d.experimentId);
  requirePreflight(ctx, req.key.userId, experiment);
  return experiment;
}

async function runMore(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): Promise<ApiResult> {
  requireScope(req.key, WRITE);
  const d = ownDeployment(ctx, req.key, params.id ?? '');
  const body = await objectBody(req);
  const errors: FieldErrors = [];
  checkRoomsAndBudget(body, '', errors);
  if (errors.length > 0) throw validationError('The request is not valid', { errors });
  const experiment = startable(ctx, req, d);
  const rooms = Number(body.rooms);
  d.budgetUsd = (d.budgetUsd ?? 0) + Number(body.budgetUsd);
  for (let i = 0; i < rooms; i++) spawnRoom(ctx, d, experiment);
  return success(ctx, { batchId: `batch_${ctx.rng.id(10)}`, requestedRooms: rooms }, { dataType: 'deployment' }, 202);
}

/** The room of a deployment a write names: 404 unless it is one of the deployment's rooms. */
function roomOf(ctx: ApiContext, d: Deployment, roomId: string) {
  const room = ctx.store.rooms.get(roomId);
  const record = ctx.store.roomRecord(roomId);
  if (!room || room.deploymentId !== d.id || !record) throw notFound('room', roomId, { deploymentId: d.id });
  return record;
}

/** Force-ends an active room: the room, its participants still in progress and its agent runs end now. */
function stopRoom(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): ApiResult {
  requireScope(req.key, WRITE);
  const d = ownDeployment(ctx, req.key, params.id ?? '');
  const roomId = params.roomId ?? '';
  const stored = roomOf(ctx, d, roomId);
  if (stored.record.status !== 'active') {
    throw validationError(`Room ${roomId} is not active (status ${String(stored.record.status)}); only an active room can be stopped`, {
      roomId,
      status: stored.record.status ?? null,
    });
  }
  const now = ctx.now();
  endRoom(ctx.store, roomId, now, () => 'COMPLETED_NO_CODE');
  d.updatedAt = now;
  return success(ctx, { stopped: true }, { dataType: 'deployment' });
}

/** Replaces a room whose spawn failed with a new one from the same budget; only such a room, only once. */
function retryRoom(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): ApiResult {
  requireScope(req.key, WRITE);
  const d = ownDeployment(ctx, req.key, params.id ?? '');
  const roomId = params.roomId ?? '';
  const failure = d.spawnFailures.get(roomId);
  if (!failure) {
    const stored = roomOf(ctx, d, roomId);
    throw validationError(
      `Room ${roomId} did not fail to spawn (status ${String(stored.record.status)}); only a room whose spawn failed can be retried`,
      {
        roomId,
        status: stored.record.status ?? null,
      },
    );
  }
  if (failure.retried) throw validationError(`Room ${roomId} was already retried`, { roomId, status: 'failed' });
  const experiment = startable(ctx, req, d);
  failure.retried = true;
  spawnRoom(ctx, d, experiment);
  return success(ctx, { batchId: `batch_${ctx.rng.id(10)}`, requestedRooms: 1 }, { dataType: 'deployment' }, 202);
}

export const DEPLOYMENT_ROUTES: Route[] = [
  { pattern: '/deployments', methods: { GET: listDeployments, POST: createDeployment } },
  { pattern: '/deployments/:id', methods: { GET: getDeployment } },
  { pattern: '/deployments/:id/sessions', methods: { GET: sessions } },
  { pattern: '/deployments/:id/agent-spend', methods: { GET: agentSpend } },
  { pattern: '/deployments/:id/run-more', methods: { POST: runMore } },
  { pattern: '/deployments/:id/rooms/:roomId/stop', methods: { POST: stopRoom } },
  { pattern: '/deployments/:id/rooms/:roomId/retry', methods: { POST: retryRoom } },
];
