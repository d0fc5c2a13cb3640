/** `/experiments…`: list, get, config, export, create, update, validate, delete, and shared experiments. */
import { ApiFailure, invalidParameter } from '../errors.ts';
import { validateExperiment } from '../experiment-schema.ts';
import type { Experiment } from '../model.ts';
import {
  experimentView,
  iso,
  pageParams,
  pagination,
  requireScope,
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
  if (ctx.store.users.get(req.key.userId)?.organizationId !== org) {
    throw new ApiFailure(403, 'FORBIDDEN', 'You are not a member of this organization', { resource: 'organization', id: org });
  }
  const search = req.params.get('search')?.toLowerCase() ?? null;
  const { limit, offset } = pageParams(req, 50, 100);
  const rows = ctx.store.shares
    .filter((s) => s.organizationId === org)
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
    sharedAt: iso(share.sharedAt),
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

function experimentPart(ctx: ApiContext, req: ApiRequest, params: Record<string, string>, part: 'config' | 'export'): ApiResult {
  requireScope(req.key, 'read:experiments');
  const id = params.id ?? '';
  const e = visibleExperiment(ctx, req.key, id).record;
  const config = {
    states: e.states ?? [],
    roles: e.roles ?? {},
    settings: e.settings ?? {},
    requiredParticipants: e.requiredParticipants ?? null,
  };
  if (part === 'config') return success(ctx, [{ experimentId: id, ...config }]);
  return success(ctx, [
    {
      formatVersion: '1.0',
      exportedAt: iso(ctx.now()),
      source: { experimentId: id },
      experiment: { name: e.name ?? null, description: e.description ?? null, ...config },
    },
  ]);
}

function getExperiment(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): ApiResult {
  requireScope(req.key, 'read:experiments');
  return success(ctx, [experimentView(ctx, visibleExperiment(ctx, req.key, params.id ?? ''))]);
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
  { pattern: '/experiments/:id/config', methods: { GET: (ctx, req, params) => experimentPart(ctx, req, params, 'config') } },
  { pattern: '/experiments/:id/export', methods: { GET: (ctx, req, params) => experimentPart(ctx, req, params, 'export') } },
];
