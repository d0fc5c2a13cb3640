/** `/experiments…`: list, get, config, export, create, update, validate, delete, and shared experiments. */
import { invalidParameter } from '../errors.ts';
import { validateExperiment } from '../experiment-schema.ts';
import type { Experiment, JsonObject } from '../model.ts';
import {
  actingOrganization,
  experimentView,
  iso,
  pageParams,
  pagination,
  readableExperiment,
  requireScope,
  shareActive,
  success,
  validationError,
  visibleExperiment,
  type ApiContext,
  type ApiRequest,
  type ApiResult,
  type Route,
} from './common.ts';

const byCreation = (a: Experiment, b: Experiment): number =>
  String(a.record.createdAt).localeCompare(String(b.record.createdAt)) || a.id.localeCompare(b.id);

function matchesSearch(experiment: Experiment, search: string | null): boolean {
  return search === null || `${experiment.record.name} ${experiment.record.description ?? ''}`.toLowerCase().includes(search);
}

function listExperiments(ctx: ApiContext, req: ApiRequest): ApiResult {
  requireScope(req.key, 'read:experiments');
  const search = req.params.get('search')?.toLowerCase() ?? null;
  const { limit, offset } = pageParams(req, 50, 100);
  const mine = [...ctx.store.experiments.values()]
    .filter((e) => !e.deleted && e.ownerId === req.key.userId && matchesSearch(e, search))
    .sort(byCreation);
  const page = mine.slice(offset, offset + limit).map((e) => experimentView(ctx, e));
  return success(ctx, page, {
    dataType: 'experiments',
    query: { search: req.params.get('search'), limit, offset },
    pagination: pagination(mine.length, page.length, limit, offset),
  });
}

async function createExperiment(ctx: ApiContext, req: ApiRequest): Promise<ApiResult> {
  requireScope(req.key, 'write:experiments');
  const { errors, fields } = validateExperiment(await req.body(), false);
  if (errors.length > 0) throw validationError('The experiment is not valid', { errors });
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
      ownerEmail: ctx.store.users.get(owner)?.email ?? `${owner}@hyperstudy.test`,
      createdAt: now,
      updatedAt: now,
    },
  };
  ctx.store.experiments.set(id, experiment);
  return success(ctx, [experimentView(ctx, experiment)], {}, 201);
}

async function validate(ctx: ApiContext, req: ApiRequest): Promise<ApiResult> {
  requireScope(req.key, 'write:experiments');
  const { errors } = validateExperiment(await req.body(), false);
  return success(ctx, [errors.length === 0 ? { valid: true } : { valid: false, errors }]);
}

/**
 * `GET /experiments/shared`: what other organisations shared with the organisation the
 * `X-Organization-Id` header names (the key's user must belong to it), paged like `GET /experiments`.
 */
function listShared(ctx: ApiContext, req: ApiRequest): ApiResult {
  requireScope(req.key, 'read:experiments');
  const org = req.organizationId;
  if (org === null || org.trim() === '') {
    throw validationError('The X-Organization-Id header is required', {
      header: 'X-Organization-Id',
      expected: 'the id of an organization you belong to',
    });
  }
  actingOrganization(ctx, req);
  const search = req.params.get('search')?.toLowerCase() ?? null;
  const { limit, offset } = pageParams(req, 50, 100);
  const rows = ctx.store.shares
    .filter((s) => s.organizationId === org && shareActive(s, ctx.now()))
    .map((share) => ({ share, experiment: ctx.store.experiments.get(share.experimentId) }))
    .filter((r): r is { share: (typeof r)['share']; experiment: Experiment } => r.experiment !== undefined && !r.experiment.deleted)
    .filter((r) => matchesSearch(r.experiment, search))
    .sort((a, b) => a.share.sharedAt - b.share.sharedAt || a.experiment.id.localeCompare(b.experiment.id));
  const page = rows.slice(offset, offset + limit).map(({ share, experiment }) => ({
    id: experiment.id,
    name: experiment.record.name ?? null,
    description: experiment.record.description ?? null,
    ownerId: experiment.ownerId,
    ownerOrganizationId: ctx.store.users.get(experiment.ownerId)?.organizationId ?? null,
    accessType: 'shared',
    permissions: share.permissions,
    dataPermissions: share.dataPermissions,
    sharedAt: iso(share.sharedAt),
    expiresAt: share.expiresAt === null ? null : iso(share.expiresAt),
    ...ctx.store.countsOf(experiment.id),
  }));
  return success(ctx, page, {
    dataType: 'experiments',
    scope: 'organization',
    scopeId: org,
    query: { search: req.params.get('search'), limit, offset },
    pagination: pagination(rows.length, page.length, limit, offset),
  });
}

/** Fields the server sets on an experiment: not part of its portable export. */
const SERVER_FIELDS = new Set(['id', 'ownerId', 'ownerEmail', 'createdAt', 'updatedAt', 'roomCount', 'participantCount']);
const MEDIA_FILE = /\.(mp4|webm|mov|m4v|mp3|wav|ogg|m4a|png|jpe?g|gif|webp|svg)(\?.*)?$/i;

/**
 * The media an experiment's states and global components point to (every string value in a component's
 * `config` naming a media file), once each, in order: an absolute URL as it is, a file name in the
 * experiment's media folder.
 */
function mediaAssets(experimentId: string, record: JsonObject): { url: string }[] {
  const found = new Set<string>();
  const visit = (value: unknown): void => {
    if (typeof value === 'string') {
      if (MEDIA_FILE.test(value))
        found.add(/^https?:\/\//.test(value) ? value : `https://storage.hyperstudy.io/media/${experimentId}/${value}`);
    } else if (Array.isArray(value)) value.forEach(visit);
    else if (value !== null && typeof value === 'object') Object.values(value).forEach(visit);
  };
  const configOf = (component: unknown): unknown =>
    component !== null && typeof component === 'object' ? (component as Record<string, unknown>).config : undefined;
  for (const state of Array.isArray(record.states) ? record.states : []) {
    if (state === null || typeof state !== 'object' || Array.isArray(state)) continue;
    visit(configOf(state.focusComponent));
    for (const component of Array.isArray(state.components) ? state.components : []) visit(configOf(component));
  }
  const globals = record.globalComponents;
  if (globals !== null && typeof globals === 'object' && !Array.isArray(globals)) Object.values(globals).forEach((g) => visit(configOf(g)));
  return [...found].map((url) => ({ url }));
}

const fileName = (name: string): string =>
  `${
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'experiment'
  }.json`;

function getConfig(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): ApiResult {
  requireScope(req.key, 'read:experiments');
  const id = params.id ?? '';
  const e = readableExperiment(ctx, req, id, 'design').record;
  return success(ctx, [
    {
      experimentId: id,
      states: e.states ?? [],
      roles: e.roles ?? {},
      settings: e.settings ?? {},
      requiredParticipants: e.requiredParticipants ?? null,
    },
  ]);
}

/**
 * `GET /experiments/{id}/export`, in the SDK's layout: `data[0]` is `{ experiment, mediaAssets: [{ url }] }`
 * (the experiment without the fields the server sets), and the metadata adds `filename` and `mediaAssetsCount`.
 */
function exportExperiment(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): ApiResult {
  requireScope(req.key, 'read:experiments');
  const id = params.id ?? '';
  const record = readableExperiment(ctx, req, id, 'copy').record;
  const experiment = Object.fromEntries(Object.entries(record).filter(([field]) => !SERVER_FIELDS.has(field)));
  const assets = mediaAssets(id, record);
  return success(ctx, [{ experiment, mediaAssets: assets }], {
    dataType: 'experiment',
    scope: 'experiment',
    scopeId: id,
    filename: fileName(String(record.name ?? id)),
    mediaAssetsCount: assets.length,
  });
}

function getExperiment(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): ApiResult {
  requireScope(req.key, 'read:experiments');
  return success(ctx, [experimentView(ctx, readableExperiment(ctx, req, params.id ?? '', 'design'))]);
}

async function updateExperiment(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): Promise<ApiResult> {
  requireScope(req.key, 'write:experiments');
  const experiment = visibleExperiment(ctx, req.key, params.id ?? '');
  const { errors, fields } = validateExperiment(await req.body(), true);
  if (errors.length > 0) throw validationError('The update is not valid', { errors });
  experiment.record = { ...experiment.record, ...fields, updatedAt: iso(ctx.now()) };
  return success(ctx, [experimentView(ctx, experiment)]);
}

function deleteExperiment(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): ApiResult {
  requireScope(req.key, 'delete:experiments');
  const id = params.id ?? '';
  const experiment = visibleExperiment(ctx, req.key, id);
  const skip = req.params.get('skipDataCheck');
  if (skip !== null && skip !== 'true' && skip !== 'false') throw invalidParameter('skipDataCheck', skip, 'true or false');
  const counts = ctx.store.countsOf(id);
  if (skip !== 'true' && counts.roomCount > 0) {
    throw validationError('The experiment has collected data; pass skipDataCheck=true to delete it anyway', counts);
  }
  experiment.deleted = true;
  return success(ctx, [{ id, deleted: true, deletedAt: iso(ctx.now()) }]);
}

export const EXPERIMENT_ROUTES: Route[] = [
  { pattern: '/experiments', methods: { GET: listExperiments, POST: createExperiment } },
  { pattern: '/experiments/validate', methods: { POST: validate } },
  { pattern: '/experiments/shared', methods: { GET: listShared } },
  { pattern: '/experiments/:id', methods: { GET: getExperiment, PUT: updateExperiment, DELETE: deleteExperiment } },
  { pattern: '/experiments/:id/config', methods: { GET: getConfig } },
  { pattern: '/experiments/:id/export', methods: { GET: exportExperiment } },
];
