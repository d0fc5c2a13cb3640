/** What every route module shares: the request and result types, the envelope and the access checks. */
import { ApiFailure, invalidParameter } from '../errors.ts';
import { hasScope } from '../keys.ts';
import type { ApiKey, Experiment, Json, JsonObject, Share } from '../model.ts';
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

/** The experiment if the key's user owns it: 404 when absent or deleted, 403 when another user's. */
export function visibleExperiment(ctx: ApiContext, key: ApiKey, id: string): Experiment {
  const experiment = ctx.store.experiments.get(id);
  if (!experiment || experiment.deleted) throw notFound('experiment', id);
  if (experiment.ownerId !== key.userId) {
    throw new ApiFailure(403, 'FORBIDDEN', 'You do not have access to this experiment', { resource: 'experiment', id });
  }
  return experiment;
}

/**
 * What a read of an experiment needs of a share (the docs: experiment permissions — view, edit,
 * duplicate — and data permissions — view, export — are granted apart): `design` the experiment's
 * `view`, `copy` (the portable export) its `duplicate`, `data` the data's `view`.
 */
export type ReadNeed = 'design' | 'copy' | 'data';

const SHARE_GRANTS: Record<ReadNeed, (share: Share) => boolean> = {
  design: (share) => share.permissions.includes('view'),
  copy: (share) => share.permissions.includes('duplicate'),
  data: (share) => share.dataPermissions.includes('view'),
};

/** Whether a share is in force at `now` (an expired one grants nothing). */
export const shareActive = (share: Share, now: number): boolean => share.expiresAt === null || share.expiresAt > now;

/**
 * The organization a request acts for: the one its `X-Organization-Id` names, when the key's user
 * belongs to it; null without the header; 403 when the user is not a member.
 */
export function actingOrganization(ctx: ApiContext, req: ApiRequest): string | null {
  const org = req.organizationId;
  if (org === null || org.trim() === '') return null;
  if (ctx.store.users.get(req.key.userId)?.organizationId !== org) {
    throw new ApiFailure(403, 'FORBIDDEN', 'You are not a member of this organization', { resource: 'organization', id: org });
  }
  return org;
}

/** The share of an experiment in force for the organization a request acts for, if any. */
export function shareFor(ctx: ApiContext, req: ApiRequest, experimentId: string): Share | null {
  const org = actingOrganization(ctx, req);
  if (org === null) return null;
  return ctx.store.shares.find((s) => s.experimentId === experimentId && s.organizationId === org && shareActive(s, ctx.now())) ?? null;
}

/**
 * The experiment if the request may read it as `need` says: its owner always; a member of an
 * organization it is shared with (named by `X-Organization-Id`, as the docs' overview shows) when the
 * share grants it. 404 when absent or deleted, 403 otherwise.
 */
export function readableExperiment(ctx: ApiContext, req: ApiRequest, id: string, need: ReadNeed): Experiment {
  const experiment = ctx.store.experiments.get(id);
  if (!experiment || experiment.deleted) throw notFound('experiment', id);
  if (experiment.ownerId === req.key.userId) return experiment;
  const share = shareFor(ctx, req, id);
  if (share === null) throw new ApiFailure(403, 'FORBIDDEN', 'You do not have access to this experiment', { resource: 'experiment', id });
  if (!SHARE_GRANTS[need](share)) {
    const [message, permission] =
      need === 'data'
        ? ['Sharing this experiment does not share its data: ask its owner for data permissions', 'data:view']
        : need === 'copy'
          ? ['This share does not allow copying the experiment', 'duplicate']
          : ['This share does not allow viewing the experiment', 'view'];
    throw new ApiFailure(403, 'FORBIDDEN', message, { resource: 'experiment', id, permission });
  }
  return experiment;
}

/** The room if the request may read its experiment's data: 404 when absent, 403 when not. */
export function readableRoom(ctx: ApiContext, req: ApiRequest, roomId: string): RoomInfo {
  const room = ctx.store.rooms.get(roomId);
  if (!room) throw notFound('room', roomId);
  readableExperiment(ctx, req, room.experimentId, 'data');
  return room;
}

/** Checks that a data scope exists and that the request may read its data; returns its experiment id. */
export function locateScope(ctx: ApiContext, req: ApiRequest, scope: string, scopeId: string, roomId: string | null): string {
  if (scope === 'experiment') return readableExperiment(ctx, req, scopeId, 'data').id;
  const room = readableRoom(ctx, req, scope === 'room' ? scopeId : (roomId ?? ''));
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
