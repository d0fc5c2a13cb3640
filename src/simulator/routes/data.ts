/** `/data/…`: one route per data type of the spec, plus access checks and recording downloads. */
import { ApiFailure, invalidParameter } from '../errors.ts';
import { hasScope } from '../keys.ts';
import type { JsonObject } from '../model.ts';
import { parseDataQuery, runDataQuery, scopedRecords, toCsv, toNdjson } from '../query.ts';
import {
  DATA_TYPE_PATHS,
  matchDataType,
  SCOPES,
  SIMULATOR_DATA_TYPES,
  type DataTypePath,
  type DataTypeSpec,
  type ListingType,
  type Scope,
  type SingleType,
} from '../spec.ts';
import { AGENT_ROUTES, SINGLE_AGENT_HANDLERS } from './agents.ts';
import {
  iso,
  locateScope,
  notFound,
  pagination,
  readableRoom,
  requireScope,
  shareFor,
  success,
  type ApiContext,
  type ApiRequest,
  type ApiResult,
  type Route,
} from './common.ts';
import { recordBatch } from './events-batch.ts';
import { SINGLE_ROOM_HANDLERS } from './room-data.ts';

/** Serves a data type without pages at one scope (the scope is valid for the type and the key has its scope). */
export type SingleHandler = (ctx: ApiContext, req: ApiRequest, scope: Scope, scopeId: string) => ApiResult;

const SINGLE_HANDLERS: Record<SingleType, SingleHandler> = { ...SINGLE_ROOM_HANDLERS, ...SINGLE_AGENT_HANDLERS };

const isListing = (type: DataTypePath): type is ListingType => SIMULATOR_DATA_TYPES[type].paginated;

/** A paginated listing: filters, sort and page from the store's scoped index. */
function serveListing(ctx: ApiContext, req: ApiRequest, spec: DataTypeSpec, type: ListingType, scope: Scope, scopeId: string): ApiResult {
  const started = performance.now();
  const query = parseDataQuery(spec, scope, req.params);
  const experimentId = locateScope(ctx, req, scope, scopeId, query.roomId);
  const { page, total } = runDataQuery(scopedRecords(ctx.store, type, scope, scopeId, query.roomId), query);
  const pages = pagination(total, page.length, query.limit, query.offset);
  if (query.format !== 'json') {
    // CSV and NDJSON have no envelope: the paging is signalled in headers, never silently capped.
    const headers: Record<string, string> = { 'x-total-count': String(total), 'x-has-more': String(pages.hasMore) };
    if (typeof pages.nextOffset === 'number') {
      const next = new URLSearchParams(req.params);
      next.set('offset', String(pages.nextOffset));
      headers['x-next-offset'] = String(pages.nextOffset);
      headers.link = `</api/v3/${req.segments.join('/')}?${next.toString()}>; rel="next"`;
    }
    return query.format === 'csv'
      ? { status: 200, raw: toCsv(page), contentType: 'text/csv; charset=utf-8', headers }
      : { status: 200, raw: toNdjson(page), contentType: 'application/x-ndjson', headers };
  }
  const startedAt = ctx.store.firstStateStartedAt(experimentId);
  const warnings: JsonObject =
    scope === 'experiment' && !query.byTime
      ? { _warnings: [`MISSING_INDEX: sort by ${query.sort} at experiment scope is not indexed. Results may be incomplete.`] }
      : {};
  return success(ctx, page, {
    dataType: spec.dataType,
    scope,
    scopeId,
    query: query.echo,
    pagination: pages,
    // The docs' overview (and their JavaScript example) read `experimentStartedAt`; platform v0.5.14 named it
    // `firstStateStartedAt`. Both are served, with the same instant.
    processing: {
      experimentStartedAt: startedAt === null ? null : iso(startedAt),
      firstStateStartedAt: startedAt === null ? null : iso(startedAt),
      processingTimeMs: Math.round(performance.now() - started),
      enriched: true,
      version: '3.0.0',
    },
    ...warnings,
  });
}

function serveDataType(type: DataTypePath) {
  const spec = SIMULATOR_DATA_TYPES[type];
  return (ctx: ApiContext, req: ApiRequest, params: Record<string, string>): ApiResult => {
    const scopeName = params.scope ?? '';
    const scopeId = params.id ?? '';
    if (!(SCOPES as readonly string[]).includes(scopeName)) throw invalidParameter('scope', scopeName, `one of ${SCOPES.join(', ')}`);
    const scope = scopeName as Scope;
    if (!spec.scopes.includes(scope)) {
      throw invalidParameter('scope', scope, `one of ${spec.scopes.join(', ')} (${spec.path} has no ${scope} scope)`);
    }
    requireScope(req.key, spec.requiredScope);
    if (isListing(type)) return serveListing(ctx, req, spec, type, scope, scopeId);
    return SINGLE_HANDLERS[type](ctx, req, scope, scopeId);
  };
}

/** Whether the key may view and export an experiment's data: as its owner, or through a share's data permissions. */
function checkAccess(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): ApiResult {
  const id = params.id ?? '';
  const experiment = ctx.store.experiments.get(id);
  if (!experiment || experiment.deleted) throw notFound('experiment', id);
  const owner = experiment.ownerId === req.key.userId;
  const share = owner ? null : shareFor(ctx, req, id);
  const canView = owner || (share?.dataPermissions.includes('view') ?? false);
  const canExport = (owner || (share?.dataPermissions.includes('export') ?? false)) && hasScope(req.key.scopes, 'read:*');
  return success(ctx, { canView, canExport }, { experimentId: experiment.id });
}

/** A short-lived signed URL for one recording; a new signature on every call. */
function recordingDownload(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): ApiResult {
  requireScope(req.key, 'read:recordings');
  const roomId = params.roomId ?? '';
  const recordingId = params.recordingId ?? '';
  const room = readableRoom(ctx, req, roomId);
  const found = ctx.store
    .index('recordings')
    .byRoom.get(room.id)
    ?.find((s) => s.record.recordingId === recordingId);
  if (!found) throw notFound('recording', recordingId, { roomId: room.id });
  const date = iso(ctx.now())
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const file = `${recordingId}.${String(found.record.format ?? 'mp4')}`;
  const url =
    `https://storage.googleapis.com/hyperstudy-recordings/recordings/${room.experimentId}/${room.id}/${file}` +
    `?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Date=${date}&X-Goog-Expires=300&X-Goog-Signature=${ctx.rng.id(64)}`;
  // The upstream answers this one without metadata: `{ status, data: { url } }`.
  const data: JsonObject = { url };
  return { status: 200, envelope: { status: 'success', data } };
}

export const DATA_ROUTES: Route[] = [
  { pattern: '/data/check-access/experiment/:id', methods: { GET: checkAccess } },
  { pattern: '/data/events/batch', methods: { POST: recordBatch } },
  { pattern: '/data/recordings/download/:roomId/:recordingId', methods: { GET: recordingDownload } },
  ...AGENT_ROUTES,
  ...DATA_TYPE_PATHS.map((type) => ({ pattern: `/data/${type}/:scope/:id`, methods: { GET: serveDataType(type) } })),
];

/** Why a `/data/…` path matched no route: an unknown data type (400) or a malformed path (404). */
export function dataPathFailure(rest: string[]): ApiFailure {
  if (rest[0] === 'check-access') return new ApiFailure(404, 'NOT_FOUND', 'Use /data/check-access/experiment/{experimentId}');
  const known = matchDataType(rest);
  if (known) return new ApiFailure(404, 'NOT_FOUND', `Use /data/${known.type}/{scope}/{scopeId}`);
  const typeName = rest.slice(0, rest[0] === 'ratings' ? 2 : 1).join('/');
  return new ApiFailure(400, 'INVALID_PARAMETER', `Unknown data type: ${typeName}`, {
    parameter: 'dataType',
    value: typeName,
    expected: `one of ${DATA_TYPE_PATHS.join(', ')}`,
  });
}
