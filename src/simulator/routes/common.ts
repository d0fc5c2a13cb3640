/** What every route module shares: the request and result types, the envelope and the access checks. */
import { ApiFailure, invalidParameter } from '../errors.ts';
import { hasScope } from '../keys.ts';
import type { ApiKey, Experiment, Json, JsonObject } from '../model.ts';
import type { Random } from '../random.ts';
import { participantKey, type DataStore, type RoomInfo } from '../store.ts';

/** What a route answers: a JSON envelope, or a raw body (CSV, NDJSON). */
export type ApiResult =
  | { status: number; envelope: JsonObject; headers?: Record<string, string> }
  | { status: number; raw: string; contentType: string; headers?: Record<string, string> };

export interface ApiRequest {
  method: string;
  /** The path below `/api/v3`, split on `/`, without empty segments. */
  segments: string[];
  params: URLSearchParams;
  body: () => Promise<unknown>;
  key: ApiKey;
  /** The `X-Organization-Id` header, when the request carried one. */
  organizationId: string | null;
}

export interface ApiContext {
  store: DataStore;
  rng: Random;
  now: () => number;
}

/** A route's handler; `params` holds the values of the pattern's `:name` segments. */
export type Handler = (ctx: ApiContext, req: ApiRequest, params: Record<string, string>) => Promise<ApiResult> | ApiResult;

/** A route: a pattern such as `/deployments/:id/sessions` and a handler per method. */
export interface Route {
  pattern: string;
  methods: Partial<Record<string, Handler>>;
}

export const iso = (ms: number): string => new Date(ms).toISOString();

export function requireScope(key: ApiKey, scope: string): void {
  if (!hasScope(key.scopes, scope)) {
    throw new ApiFailure(403, 'FORBIDDEN', `Insufficient scopes. Required: ${scope}`, { required: [scope], provided: [...key.scopes] });
  }
}

/** The success envelope: `data` and `metadata` with the server time. */
export function success(ctx: ApiContext, data: Json, metadata: JsonObject = {}, status = 200): ApiResult {
  return { status, envelope: { status: 'success', data, metadata: { timestamp: iso(ctx.now()), ...metadata } } };
}

export const notFound = (resource: string, id: string, extra: JsonObject = {}): ApiFailure =>
  new ApiFailure(404, 'NOT_FOUND', `${resource[0]?.toUpperCase()}${resource.slice(1)} not found: ${id}`, { resource, id, ...extra });

export const validationError = (message: string, details: JsonObject = {}): ApiFailure =>
  new ApiFailure(400, 'VALIDATION_ERROR', message, details);

/** The experiment if the key's user may see it: 404 when absent or deleted, 403 when another user's. */
export function visibleExperiment(ctx: ApiContext, key: ApiKey, id: string): Experiment {
  const experiment = ctx.store.experiments.get(id);
  if (!experiment || experiment.deleted) throw notFound('experiment', id);
  if (experiment.ownerId !== key.userId) {
    throw new ApiFailure(403, 'FORBIDDEN', 'You do not have access to this experiment', { resource: 'experiment', id });
  }
  return experiment;
}

/** The room if the key's user may see its experiment: 404 when absent, 403 when another user's. */
export function visibleRoom(ctx: ApiContext, key: ApiKey, roomId: string): RoomInfo {
  const room = ctx.store.rooms.get(roomId);
  if (!room) throw notFound('room', roomId);
  visibleExperiment(ctx, key, room.experimentId);
  return room;
}

/** Checks that a data scope exists and that the key may see it; returns its experiment id. */
export function locateScope(ctx: ApiContext, key: ApiKey, scope: string, scopeId: string, roomId: string | null): string {
  if (scope === 'experiment') return visibleExperiment(ctx, key, scopeId).id;
  const room = visibleRoom(ctx, key, scope === 'room' ? scopeId : (roomId ?? ''));
  if (scope === 'participant' && !ctx.store.participants.has(participantKey(room.id, scopeId))) {
    throw new ApiFailure(404, 'NOT_FOUND', `Participant not found: ${scopeId} in room ${room.id}`, {
      resource: 'participant',
      id: scopeId,
      roomId: room.id,
    });
  }
  return room.experimentId;
}

export function experimentView(ctx: ApiContext, experiment: Experiment): JsonObject {
  return { ...experiment.record, ...ctx.store.countsOf(experiment.id) };
}

export function methodNotAllowed(req: ApiRequest, allowed: string[]): ApiFailure {
  return new ApiFailure(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed here`, { allowed });
}

/** The request body as an object; a 400 VALIDATION_ERROR for anything else. */
export async function objectBody(req: ApiRequest): Promise<Record<string, unknown>> {
  const body = await req.body();
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw validationError('The body must be a JSON object', { errors: [{ field: '', message: 'The body must be a JSON object' }] });
  }
  return body as Record<string, unknown>;
}

/** `limit`/`offset` of the paged management listings (experiments, shared experiments). */
export function pageParams(req: ApiRequest, defaultLimit: number, maxLimit: number): { limit: number; offset: number } {
  const limitText = req.params.get('limit');
  const offsetText = req.params.get('offset');
  const limit = limitText === null ? defaultLimit : /^\d+$/.test(limitText) ? Number(limitText) : Number.NaN;
  const offset = offsetText === null ? 0 : /^\d+$/.test(offsetText) ? Number(offsetText) : Number.NaN;
  if (!Number.isInteger(limit) || limit < 1 || limit > maxLimit)
    throw invalidParameter('limit', limitText ?? '', `integer between 1 and ${maxLimit}`);
  if (!Number.isSafeInteger(offset) || offset < 0) throw invalidParameter('offset', offsetText ?? '', 'integer >= 0');
  return { limit, offset };
}

/** A `pagination` block for a page of `returned` rows out of `total`. */
export function pagination(total: number, returned: number, limit: number, offset: number): JsonObject {
  const hasMore = offset + returned < total;
  return { total, returned, hasMore, limit, offset, ...(hasMore ? { nextOffset: offset + returned } : {}) };
}
