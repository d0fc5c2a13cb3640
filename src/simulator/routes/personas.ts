/** `/personas…` (owned, organisation-shared and public agent personas) and `/agent-cognition/catalog`. */
import { ApiFailure } from '../errors.ts';
import type { ApiKey, Persona } from '../model.ts';
import { checkWritableFields, COGNITION_CATALOG, mergePatch, newPersona, validatePersona } from '../persona-model.ts';
import {
  iso,
  notFound,
  objectBody,
  requireScope,
  success,
  validationError,
  type ApiContext,
  type ApiRequest,
  type ApiResult,
  type Route,
} from './common.ts';

const READ = 'read:personas';
const WRITE = 'write:personas';

/** Whether a user may see (and bind, and duplicate) a persona: their own, their organisation's, or public. */
export function canUsePersona(ctx: ApiContext, userId: string, persona: Persona): boolean {
  if (persona.deleted) return false;
  if (persona.ownerId === userId || persona.visibility === 'public') return true;
  const users = ctx.store.users;
  return persona.visibility === 'organization' && users.get(persona.ownerId)?.organizationId === users.get(userId)?.organizationId;
}

/** A persona the key's user may see; 404 for any other (a private persona of another user does not exist for them). */
function visiblePersona(ctx: ApiContext, key: ApiKey, id: string): Persona {
  const persona = ctx.store.personas.get(id);
  if (!persona || !canUsePersona(ctx, key.userId, persona)) throw notFound('persona', id);
  return persona;
}

function ownedPersona(ctx: ApiContext, key: ApiKey, id: string): Persona {
  const persona = visiblePersona(ctx, key, id);
  if (persona.ownerId !== key.userId) {
    throw new ApiFailure(403, 'FORBIDDEN', 'Only the owner may change this persona', { resource: 'persona', id });
  }
  return persona;
}

function listPersonas(ctx: ApiContext, req: ApiRequest): ApiResult {
  requireScope(req.key, READ);
  const rows = [...ctx.store.personas.values()]
    .filter((p) => canUsePersona(ctx, req.key.userId, p))
    .sort((a, b) => String(a.record.createdAt).localeCompare(String(b.record.createdAt)) || a.id.localeCompare(b.id))
    .map((p) => p.record);
  return success(ctx, rows, { dataType: 'personas', scope: 'user', scopeId: req.key.userId });
}

function getPersona(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): ApiResult {
  requireScope(req.key, READ);
  return success(ctx, visiblePersona(ctx, req.key, params.id ?? '').record, { dataType: 'persona' });
}

function store(ctx: ApiContext, id: string, ownerId: string, record: Persona['record']): Persona {
  const visibility = record.visibility === 'organization' || record.visibility === 'public' ? record.visibility : 'private';
  const persona: Persona = { id, ownerId, visibility, deleted: false, record };
  ctx.store.personas.set(id, persona);
  return persona;
}

async function createPersona(ctx: ApiContext, req: ApiRequest): Promise<ApiResult> {
  requireScope(req.key, WRITE);
  const body = await objectBody(req);
  const id = `psn_${ctx.rng.id(12)}`;
  const record = newPersona(body, { id, ownerId: req.key.userId, now: iso(ctx.now()) });
  const errors = [...checkWritableFields(body, false), ...validatePersona(record)];
  if (errors.length > 0) throw validationError('The persona is not valid', { errors });
  return success(ctx, store(ctx, id, req.key.userId, record).record, { dataType: 'persona' }, 201);
}

/** `PUT /personas/{id}` is a JSON merge-patch (RFC 7396); `visibility` and `ownerId` cannot change. */
async function updatePersona(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): Promise<ApiResult> {
  requireScope(req.key, WRITE);
  const persona = ownedPersona(ctx, req.key, params.id ?? '');
  const body = await objectBody(req);
  const { offlineCognition: _dropped, ...patch } = body;
  const merged = mergePatch(persona.record, patch);
  const errors = [...checkWritableFields(body, true), ...validatePersona(merged)];
  if (errors.length > 0) throw validationError('The update is not valid', { errors });
  persona.record = { ...merged, offlineCognition: null, updatedAt: iso(ctx.now()) };
  return success(ctx, persona.record, { dataType: 'persona' });
}

function deletePersona(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): ApiResult {
  requireScope(req.key, WRITE);
  ownedPersona(ctx, req.key, params.id ?? '').deleted = true;
  return success(ctx, { deleted: true }, { dataType: 'persona' });
}

/** A private copy, owned by the caller, named "<name> (copy)". */
function duplicatePersona(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): ApiResult {
  requireScope(req.key, WRITE);
  const source = visiblePersona(ctx, req.key, params.id ?? '');
  const id = `psn_${ctx.rng.id(12)}`;
  const now = iso(ctx.now());
  const record = {
    ...source.record,
    id,
    ownerId: req.key.userId,
    name: `${String(source.record.name)} (copy)`,
    visibility: 'private',
    createdAt: now,
    updatedAt: now,
  };
  return success(ctx, store(ctx, id, req.key.userId, record).record, { dataType: 'persona' }, 201);
}

function catalog(ctx: ApiContext, req: ApiRequest): ApiResult {
  requireScope(req.key, READ);
  return success(ctx, [COGNITION_CATALOG], { dataType: 'cognitionCatalog' });
}

export const PERSONA_ROUTES: Route[] = [
  { pattern: '/personas', methods: { GET: listPersonas, POST: createPersona } },
  { pattern: '/personas/:id', methods: { GET: getPersona, PUT: updatePersona, DELETE: deletePersona } },
  { pattern: '/personas/:id/duplicate', methods: { POST: duplicatePersona } },
  { pattern: '/agent-cognition/catalog', methods: { GET: catalog } },
];
