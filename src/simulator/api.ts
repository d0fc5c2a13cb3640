import { ApiFailure, invalidParameter } from './errors.ts';
import { hasScope } from './keys.ts';
import {
  DATA_TYPES,
  EVENT_CATEGORIES,
  SCOPES,
  type ApiKey,
  type DataType,
  type Experiment,
  type Json,
  type JsonObject,
  type Scope,
} from './model.ts';
import { parseDataQuery, runDataQuery, scopedRecords, TYPE_SPECS, toCsv, toNdjson } from './query.ts';
import type { Random } from './random.ts';
import { participantKey, type DataStore } from './store.ts';

/** What a route answers: a JSON envelope, or a raw body (CSV, NDJSON). */
export type ApiResult = { status: number; envelope: JsonObject } | { status: number; raw: string; contentType: string };

export interface ApiRequest {
  method: string;
  /** The path below `/api/v3`, split on `/`, without empty segments. */
  segments: string[];
  params: URLSearchParams;
  body: () => Promise<unknown>;
  key: ApiKey;
}

export interface ApiContext {
  store: DataStore;
  rng: Random;
  now: () => number;
}

const MAX_BATCH = 100;
const iso = (ms: number): string => new Date(ms).toISOString();

function requireScope(key: ApiKey, scope: string): void {
  if (!hasScope(key.scopes, scope)) {
    throw new ApiFailure(403, 'FORBIDDEN', `Insufficient scopes. Required: ${scope}`, { required: [scope], provided: [...key.scopes] });
  }
}

function success(ctx: ApiContext, data: Json, metadata: JsonObject = {}, status = 200): ApiResult {
  return { status, envelope: { status: 'success', data, metadata: { timestamp: iso(ctx.now()), ...metadata } } };
}

/** The experiment if the key's user may see it: 404 when absent or deleted, 403 when another user's. */
function visibleExperiment(ctx: ApiContext, key: ApiKey, id: string): Experiment {
  const experiment = ctx.store.experiments.get(id);
  if (!experiment || experiment.deleted)
    throw new ApiFailure(404, 'NOT_FOUND', `Experiment not found: ${id}`, { resource: 'experiment', id });
  if (experiment.ownerId !== key.userId) {
    throw new ApiFailure(403, 'FORBIDDEN', 'You do not have access to this experiment', { resource: 'experiment', id });
  }
  return experiment;
}

function experimentView(ctx: ApiContext, experiment: Experiment): JsonObject {
  return { ...experiment.record, ...ctx.store.countsOf(experiment.id) };
}

/** Routes an authenticated, rate-checked request. Throws ApiFailure for every documented error. */
export async function routeApi(ctx: ApiContext, req: ApiRequest): Promise<ApiResult> {
  const [head, ...rest] = req.segments;
  if (head === 'data') return routeData(ctx, req, rest);
  if (head === 'experiments') return routeExperiments(ctx, req, rest);
  throw new ApiFailure(404, 'NOT_FOUND', `No route for ${req.method} /api/v3/${req.segments.join('/')}`);
}

function methodNotAllowed(req: ApiRequest, allowed: string[]): ApiFailure {
  return new ApiFailure(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed here`, { allowed });
}

/** The route template a request matched, as the per-endpoint rate limit counts it. */
export function endpointOf(method: string, segments: string[]): string {
  const [head, ...rest] = segments;
  if (head === 'data') {
    if (rest[0] === 'check-access') return `${method} /data/check-access/experiment/:id`;
    if (rest[0] === 'events' && rest[1] === 'batch') return `${method} /data/events/batch`;
    const typeLength = rest[0] === 'ratings' ? 2 : 1;
    return `${method} /data/${rest.slice(0, typeLength).join('/')}/${rest[typeLength] ?? ''}/:id`;
  }
  if (head === 'experiments') {
    const sub = rest[0] === 'validate' ? '/validate' : rest.length > 0 ? `/:id${rest[1] ? `/${rest[1]}` : ''}` : '';
    return `${method} /experiments${sub}`;
  }
  return `${method} /${segments.join('/')}`;
}

async function routeData(ctx: ApiContext, req: ApiRequest, rest: string[]): Promise<ApiResult> {
  if (rest[0] === 'check-access') {
    if (req.method !== 'GET') throw methodNotAllowed(req, ['GET']);
    if (rest[1] !== 'experiment' || rest.length !== 3 || !rest[2]) {
      throw new ApiFailure(404, 'NOT_FOUND', 'Use /data/check-access/experiment/{experimentId}');
    }
    const experiment = ctx.store.experiments.get(rest[2]);
    if (!experiment || experiment.deleted)
      throw new ApiFailure(404, 'NOT_FOUND', `Experiment not found: ${rest[2]}`, { resource: 'experiment', id: rest[2] });
    const canView = experiment.ownerId === req.key.userId;
    const canExport = canView && hasScope(req.key.scopes, 'read:*');
    return success(ctx, { canView, canExport }, { experimentId: experiment.id });
  }
  if (rest[0] === 'events' && rest[1] === 'batch' && rest.length === 2) {
    if (req.method !== 'POST') throw methodNotAllowed(req, ['POST']);
    return recordBatch(ctx, req);
  }
  const typeLength = rest[0] === 'ratings' ? 2 : 1;
  const typeName = rest.slice(0, typeLength).join('/');
  if (!(DATA_TYPES as readonly string[]).includes(typeName)) {
    throw new ApiFailure(400, 'INVALID_PARAMETER', `Unknown data type: ${typeName}`, {
      parameter: 'dataType',
      value: typeName,
      expected: `one of ${DATA_TYPES.join(', ')}`,
    });
  }
  const type = typeName as DataType;
  const [scopeName, scopeId, ...extra] = rest.slice(typeLength);
  if (scopeName === undefined || scopeId === undefined || extra.length > 0) {
    throw new ApiFailure(404, 'NOT_FOUND', `Use /data/${type}/{scope}/{scopeId}`);
  }
  if (req.method !== 'GET') throw methodNotAllowed(req, ['GET']);
  if (!(SCOPES as readonly string[]).includes(scopeName)) throw invalidParameter('scope', scopeName, `one of ${SCOPES.join(', ')}`);
  const scope = scopeName as Scope;
  if (scope === 'participant' && (type === 'participants' || type === 'rooms')) {
    throw invalidParameter('scope', scope, `experiment or room (${type} has no participant scope)`);
  }
  requireScope(req.key, TYPE_SPECS[type].scope);
  const started = performance.now();
  const query = parseDataQuery(type, scope, req.params);
  const experimentId = locateScope(ctx, req.key, scope, scopeId, query.roomId);
  const { page, total } = runDataQuery(scopedRecords(ctx.store, type, scope, scopeId, query.roomId), query);
  if (query.format === 'csv') return { status: 200, raw: toCsv(page), contentType: 'text/csv; charset=utf-8' };
  if (query.format === 'ndjson') return { status: 200, raw: toNdjson(page), contentType: 'application/x-ndjson' };
  const hasMore = query.offset + page.length < total;
  const startedAt = ctx.store.experimentStartedAt(experimentId);
  return success(ctx, page, {
    dataType: type,
    scope,
    scopeId,
    query: query.echo,
    pagination: {
      total,
      returned: page.length,
      hasMore,
      limit: query.limit,
      offset: query.offset,
      ...(hasMore ? { nextOffset: query.offset + page.length } : {}),
    },
    processing: {
      experimentStartedAt: startedAt === null ? null : iso(startedAt),
      processingTimeMs: Math.round(performance.now() - started),
      enriched: true,
      version: '3.0.0',
    },
  });
}

/** Checks that a scope exists and that the key may see it; returns its experiment id. */
function locateScope(ctx: ApiContext, key: ApiKey, scope: Scope, scopeId: string, roomId: string | null): string {
  if (scope === 'experiment') return visibleExperiment(ctx, key, scopeId).id;
  const room = ctx.store.rooms.get(scope === 'room' ? scopeId : (roomId ?? ''));
  if (!room)
    throw new ApiFailure(404, 'NOT_FOUND', `Room not found: ${scope === 'room' ? scopeId : roomId}`, {
      resource: 'room',
      id: scope === 'room' ? scopeId : roomId,
    });
  visibleExperiment(ctx, key, room.experimentId);
  if (scope === 'participant' && !ctx.store.participants.has(participantKey(room.id, scopeId))) {
    throw new ApiFailure(404, 'NOT_FOUND', `Participant not found: ${scopeId} in room ${room.id}`, {
      resource: 'participant',
      id: scopeId,
      roomId: room.id,
    });
  }
  return room.experimentId;
}

interface FieldError extends JsonObject {
  index: number;
  field: string;
  message: string;
}

async function recordBatch(ctx: ApiContext, req: ApiRequest): Promise<ApiResult> {
  requireScope(req.key, 'write:events');
  const body = await req.body();
  const events = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as { events?: unknown }).events : undefined;
  if (!Array.isArray(events)) {
    throw new ApiFailure(400, 'VALIDATION_ERROR', "Body must be an object with an 'events' array", {
      field: 'events',
      expected: 'array of 1 to 100 events',
    });
  }
  if (events.length < 1 || events.length > MAX_BATCH) {
    throw new ApiFailure(400, 'VALIDATION_ERROR', `A batch holds 1 to ${MAX_BATCH} events, got ${events.length}`, {
      field: 'events',
      count: events.length,
      max: MAX_BATCH,
    });
  }
  const errors: FieldError[] = [];
  const accepted: {
    record: JsonObject;
    roomId: string;
    participantId: string;
    experimentId: string;
    deploymentId: string;
    time: number;
  }[] = [];
  events.forEach((event: unknown, index) => {
    if (event === null || typeof event !== 'object' || Array.isArray(event)) {
      errors.push({ index, field: '', message: 'An event must be an object' });
      return;
    }
    const e = event as Record<string, unknown>;
    const text = (field: string, required: boolean): string | null => {
      const v = e[field];
      if (v === undefined || v === null) {
        if (required) errors.push({ index, field, message: `${field} is required` });
        return null;
      }
      if (typeof v !== 'string' || v === '') {
        errors.push({ index, field, message: `${field} must be a non-empty string` });
        return null;
      }
      return v;
    };
    const before = errors.length;
    const experimentId = text('experimentId', true);
    const roomId = e.roomId === undefined && e.sessionId !== undefined ? text('sessionId', true) : text('roomId', true);
    const participantId = text('participantId', true);
    const eventType = text('eventType', true);
    const category = text('category', false);
    if (category !== null && !(EVENT_CATEGORIES as readonly string[]).includes(category)) {
      errors.push({ index, field: 'category', message: `category must be one of ${EVENT_CATEGORIES.join(', ')}` });
    }
    const timestamp = text('timestamp', false);
    const time = timestamp === null ? ctx.now() : Date.parse(timestamp);
    if (Number.isNaN(time)) errors.push({ index, field: 'timestamp', message: 'timestamp must be an ISO 8601 timestamp' });
    if (e.onset !== undefined && e.onset !== null && (typeof e.onset !== 'number' || !Number.isFinite(e.onset))) {
      errors.push({ index, field: 'onset', message: 'onset must be a number of milliseconds' });
    }
    if (errors.length > before || !experimentId || !roomId || !participantId || !eventType) return;
    const room = ctx.store.rooms.get(roomId);
    const experiment = ctx.store.experiments.get(experimentId);
    if (!experiment || experiment.deleted) {
      errors.push({ index, field: 'experimentId', message: `Experiment not found: ${experimentId}` });
      return;
    }
    if (experiment.ownerId !== req.key.userId) {
      throw new ApiFailure(403, 'FORBIDDEN', 'You do not have access to this experiment', {
        resource: 'experiment',
        id: experimentId,
        index,
      });
    }
    if (!room || room.experimentId !== experimentId) {
      errors.push({ index, field: 'roomId', message: `Room ${roomId} is not a room of experiment ${experimentId}` });
      return;
    }
    if (!ctx.store.participants.has(participantKey(roomId, participantId))) {
      errors.push({ index, field: 'participantId', message: `Participant ${participantId} is not in room ${roomId}` });
      return;
    }
    const { sessionId: _legacy, ...fields } = e;
    accepted.push({
      experimentId,
      roomId,
      participantId,
      deploymentId: room.deploymentId,
      time,
      record: {
        ...(fields as JsonObject),
        id: `evt_${ctx.rng.id(14)}`,
        timestamp: iso(time),
        onset: typeof e.onset === 'number' ? e.onset : time - room.startedAt,
        experimentId,
        roomId,
        participantId,
        eventType,
        category: category ?? 'system',
      },
    });
  });
  if (errors.length > 0) {
    throw new ApiFailure(400, 'VALIDATION_ERROR', `${errors.length} event(s) failed validation; nothing was recorded`, { errors });
  }
  const index = ctx.store.index('events');
  for (const a of accepted) {
    index.insert({
      seq: ctx.store.nextSeq(),
      experimentId: a.experimentId,
      roomId: a.roomId,
      participantId: a.participantId,
      deploymentId: a.deploymentId,
      time: a.time,
      record: a.record,
    });
  }
  return success(ctx, [{ recorded: accepted.length, eventIds: accepted.map((a) => String(a.record.id)) }], { dataType: 'events' }, 201);
}

function validateExperiment(body: unknown, partial: boolean): { errors: JsonObject[]; fields: JsonObject } {
  const errors: JsonObject[] = [];
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { errors: [{ field: '', message: 'The body must be a JSON object' }], fields: {} };
  }
  const b = body as Record<string, unknown>;
  if (!partial || b.name !== undefined) {
    if (typeof b.name !== 'string' || b.name.trim() === '')
      errors.push({ field: 'name', message: 'name is required and must be a non-empty string' });
    else if (b.name.length > 200) errors.push({ field: 'name', message: 'name must be at most 200 characters' });
  }
  if (b.description !== undefined && b.description !== null && typeof b.description !== 'string') {
    errors.push({ field: 'description', message: 'description must be a string' });
  }
  if (b.requiredParticipants !== undefined && (!Number.isInteger(b.requiredParticipants) || (b.requiredParticipants as number) < 1)) {
    errors.push({ field: 'requiredParticipants', message: 'requiredParticipants must be a positive integer' });
  }
  if (b.states !== undefined) {
    if (!Array.isArray(b.states)) errors.push({ field: 'states', message: 'states must be an array' });
    else {
      const ids = new Set<string>();
      b.states.forEach((s: unknown, i) => {
        const state = s as Record<string, unknown> | null;
        if (state === null || typeof state !== 'object' || typeof state.id !== 'string' || typeof state.name !== 'string') {
          errors.push({ field: `states[${i}]`, message: 'a state needs a string id and name' });
        } else if (ids.has(state.id)) errors.push({ field: `states[${i}].id`, message: `duplicate state id ${state.id}` });
        else ids.add(state.id);
      });
    }
  }
  if (b.roles !== undefined && (b.roles === null || typeof b.roles !== 'object' || Array.isArray(b.roles))) {
    errors.push({ field: 'roles', message: 'roles must be an object' });
  }
  for (const field of ['id', 'ownerId', 'ownerEmail', 'createdAt', 'updatedAt', 'roomCount', 'participantCount']) {
    if (b[field] !== undefined) errors.push({ field, message: `${field} is read-only` });
  }
  return { errors, fields: b as JsonObject };
}

async function routeExperiments(ctx: ApiContext, req: ApiRequest, rest: string[]): Promise<ApiResult> {
  const { store } = ctx;
  if (rest.length === 0) {
    if (req.method === 'GET') {
      requireScope(req.key, 'read:experiments');
      const search = req.params.get('search')?.toLowerCase() ?? null;
      const limit = Number(req.params.get('limit') ?? 50);
      const offset = Number(req.params.get('offset') ?? 0);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100)
        throw invalidParameter('limit', req.params.get('limit') ?? '', 'integer between 1 and 100');
      if (!Number.isInteger(offset) || offset < 0) throw invalidParameter('offset', req.params.get('offset') ?? '', 'integer >= 0');
      const mine = [...store.experiments.values()]
        .filter((e) => !e.deleted && e.ownerId === req.key.userId)
        .filter((e) => search === null || `${e.record.name} ${e.record.description ?? ''}`.toLowerCase().includes(search))
        .sort((a, b) => String(a.record.createdAt).localeCompare(String(b.record.createdAt)) || a.id.localeCompare(b.id));
      const page = mine.slice(offset, offset + limit).map((e) => experimentView(ctx, e));
      const hasMore = offset + page.length < mine.length;
      return success(ctx, page, {
        dataType: 'experiments',
        query: { search: req.params.get('search'), limit, offset },
        pagination: {
          total: mine.length,
          returned: page.length,
          hasMore,
          limit,
          offset,
          ...(hasMore ? { nextOffset: offset + page.length } : {}),
        },
      });
    }
    if (req.method === 'POST') {
      requireScope(req.key, 'write:experiments');
      const { errors, fields } = validateExperiment(await req.body(), false);
      if (errors.length > 0) throw new ApiFailure(400, 'VALIDATION_ERROR', 'The experiment is not valid', { errors });
      const id = `exp_${ctx.rng.id(10)}`;
      const now = iso(ctx.now());
      const owner = req.key.userId;
      const experiment: Experiment = {
        id,
        ownerId: owner,
        deleted: false,
        record: {
          description: null,
          states: [],
          roles: {},
          requiredParticipants: 1,
          ...fields,
          id,
          ownerId: owner,
          ownerEmail: `${owner}@hyperstudy.test`,
          createdAt: now,
          updatedAt: now,
        },
      };
      store.experiments.set(id, experiment);
      return success(ctx, [experimentView(ctx, experiment)], {}, 201);
    }
    throw methodNotAllowed(req, ['GET', 'POST']);
  }
  if (rest[0] === 'validate' && rest.length === 1) {
    if (req.method !== 'POST') throw methodNotAllowed(req, ['POST']);
    requireScope(req.key, 'write:experiments');
    const { errors } = validateExperiment(await req.body(), false);
    return success(ctx, [errors.length === 0 ? { valid: true } : { valid: false, errors }]);
  }
  const [id, sub, ...extra] = rest;
  if (id === undefined || extra.length > 0 || (sub !== undefined && sub !== 'config' && sub !== 'export')) {
    throw new ApiFailure(404, 'NOT_FOUND', `No route for ${req.method} /api/v3/experiments/${rest.join('/')}`);
  }
  if (sub !== undefined) {
    if (req.method !== 'GET') throw methodNotAllowed(req, ['GET']);
    requireScope(req.key, 'read:experiments');
    const e = visibleExperiment(ctx, req.key, id).record;
    const config = {
      states: e.states ?? [],
      roles: e.roles ?? {},
      settings: e.settings ?? {},
      requiredParticipants: e.requiredParticipants ?? null,
    };
    if (sub === 'config') return success(ctx, [{ experimentId: id, ...config }]);
    return success(ctx, [
      {
        formatVersion: '1.0',
        exportedAt: iso(ctx.now()),
        source: { experimentId: id },
        experiment: { name: e.name ?? null, description: e.description ?? null, ...config },
      },
    ]);
  }
  if (req.method === 'GET') {
    requireScope(req.key, 'read:experiments');
    return success(ctx, [experimentView(ctx, visibleExperiment(ctx, req.key, id))]);
  }
  if (req.method === 'PUT') {
    requireScope(req.key, 'write:experiments');
    const experiment = visibleExperiment(ctx, req.key, id);
    const { errors, fields } = validateExperiment(await req.body(), true);
    if (errors.length > 0) throw new ApiFailure(400, 'VALIDATION_ERROR', 'The update is not valid', { errors });
    experiment.record = { ...experiment.record, ...fields, updatedAt: iso(ctx.now()) };
    return success(ctx, [experimentView(ctx, experiment)]);
  }
  if (req.method === 'DELETE') {
    requireScope(req.key, 'delete:experiments');
    const experiment = visibleExperiment(ctx, req.key, id);
    const skip = req.params.get('skipDataCheck');
    if (skip !== null && skip !== 'true' && skip !== 'false') throw invalidParameter('skipDataCheck', skip, 'true or false');
    const counts = store.countsOf(id);
    if (skip !== 'true' && counts.roomCount > 0) {
      throw new ApiFailure(
        400,
        'VALIDATION_ERROR',
        'The experiment has collected data; pass skipDataCheck=true to delete it anyway',
        counts,
      );
    }
    experiment.deleted = true;
    return success(ctx, [{ id, deleted: true, deletedAt: iso(ctx.now()) }]);
  }
  throw methodNotAllowed(req, ['GET', 'PUT', 'DELETE']);
}
