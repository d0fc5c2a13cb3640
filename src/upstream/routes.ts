/** Every upstream path the gateway calls, in one place: resolvers never build URLs. */
import { LISTING_BY_PATH } from '../spec/data-types.ts';
import type { Scope } from '../spec/spec.ts';
import { UpstreamError } from './errors.ts';

export type { Scope } from '../spec/spec.ts';

/** A UTF-16 surrogate without its pair: such a string has no UTF-8 form, so it cannot be sent. */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Whether an id can be one segment of an upstream path: not blank, no surrounding spaces, not a dot
 * segment (`.` and `..` are normalised away by URL parsers, so they would address another route), no
 * control characters, well-formed Unicode (a lone surrogate cannot be encoded), at most 512 characters.
 */
export function isPlainSegment(id: string): boolean {
  return (
    id.length > 0 &&
    id.length <= 512 &&
    id.trim() === id &&
    id !== '.' &&
    id !== '..' &&
    !LONE_SURROGATE.test(id) &&
    // eslint-disable-next-line no-control-regex
    !/[\u0000-\u001f\u007f]/.test(id)
  );
}

/** An id as one path segment; anything else is refused before it could address another route. */
function seg(id: string): string {
  if (!isPlainSegment(id))
    throw new UpstreamError('Not an id the HyperStudy API can address', { code: 'BAD_USER_INPUT', status: null, details: { value: id } });
  return encodeURIComponent(id);
}

/**
 * Data endpoints under `/data/{type}/{scope}/{id}` that are not listings, and the scope each needs
 * where the upstream documents it.
 */
export const OTHER_DATA: Readonly<Record<string, string | null>> = {
  variables: null,
  counts: null,
  'agent-decisions': 'read:events',
  'agent-runs': 'read:events',
};

export const routes = {
  health: () => '/health',
  data: (type: string, scope: Scope) => `/data/${type}/${scope.kind}/${seg(scope.id)}`,
  checkAccess: (experimentId: string) => `/data/check-access/experiment/${seg(experimentId)}`,
  eventsBatch: () => '/data/events/batch',
  recordingDownload: (roomId: string, recordingId: string) => `/data/recordings/download/${seg(roomId)}/${seg(recordingId)}`,
  agentDecision: (roomId: string, decisionId: string) => `/data/agent-decisions/room/${seg(roomId)}/decision/${seg(decisionId)}`,
  experiments: () => '/experiments',
  sharedExperiments: () => '/experiments/shared',
  experiment: (id: string) => `/experiments/${seg(id)}`,
  experimentConfig: (id: string) => `/experiments/${seg(id)}/config`,
  experimentExport: (id: string) => `/experiments/${seg(id)}/export`,
  validateExperiment: () => '/experiments/validate',
  deployments: () => '/deployments',
  deployment: (id: string) => `/deployments/${seg(id)}`,
  deploymentSessions: (id: string) => `/deployments/${seg(id)}/sessions`,
  deploymentAgentSpend: (id: string) => `/deployments/${seg(id)}/agent-spend`,
  deploymentRunMore: (id: string) => `/deployments/${seg(id)}/run-more`,
  deploymentRoomStop: (id: string, roomId: string) => `/deployments/${seg(id)}/rooms/${seg(roomId)}/stop`,
  deploymentRoomRetry: (id: string, roomId: string) => `/deployments/${seg(id)}/rooms/${seg(roomId)}/retry`,
  personas: () => '/personas',
  persona: (id: string) => `/personas/${seg(id)}`,
  personaDuplicate: (id: string) => `/personas/${seg(id)}/duplicate`,
  cognitionCatalog: () => '/agent-cognition/catalog',
};

/** The query string of a data request: the scope's own parameters plus filters, sorted for stable keys. */
export function dataQuery(scope: Scope, params: Record<string, string | undefined>): URLSearchParams {
  const query = new URLSearchParams();
  const all: Record<string, string | undefined> = { ...params, ...(scope.kind === 'participant' ? { roomId: scope.roomId } : {}) };
  for (const name of Object.keys(all).sort()) {
    const value = all[name];
    if (value !== undefined) query.set(name, value);
  }
  return query;
}

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/**
 * The routes `routes` builds besides the data endpoints, as templates (`:id` for an id segment; literal
 * segments before `:id` ones), with each method the gateway sends there and the key scope it needs
 * where the upstream documents it (null: not documented). test/routes.test.ts holds them to the
 * simulator's routes: the same templates and methods, counted as the same endpoints.
 */
export const ROUTE_TEMPLATES: readonly (readonly [template: string, methods: Partial<Record<Method, string | null>>])[] = [
  ['/health', { GET: null }],
  ['/data/check-access/experiment/:id', { GET: null }],
  ['/data/events/batch', { POST: 'write:events' }],
  ['/data/recordings/download/:id/:id', { GET: null }],
  ['/data/agent-decisions/room/:id/decision/:id', { GET: 'read:events' }],
  ['/experiments', { GET: 'read:experiments', POST: 'write:experiments' }],
  ['/experiments/validate', { POST: 'write:experiments' }],
  ['/experiments/shared', { GET: 'read:experiments' }],
  ['/experiments/:id', { GET: 'read:experiments', PUT: 'write:experiments', DELETE: 'delete:experiments' }],
  ['/experiments/:id/config', { GET: 'read:experiments' }],
  ['/experiments/:id/export', { GET: 'read:experiments' }],
  ['/deployments', { GET: null, POST: 'write:deployments' }],
  ['/deployments/:id', { GET: null }],
  ['/deployments/:id/sessions', { GET: null }],
  ['/deployments/:id/agent-spend', { GET: null }],
  ['/deployments/:id/run-more', { POST: 'write:deployments' }],
  ['/deployments/:id/rooms/:id/stop', { POST: 'write:deployments' }],
  ['/deployments/:id/rooms/:id/retry', { POST: 'write:deployments' }],
  ['/personas', { GET: 'read:personas', POST: 'write:personas' }],
  ['/personas/:id', { GET: 'read:personas', PUT: 'write:personas', DELETE: 'write:personas' }],
  ['/personas/:id/duplicate', { POST: 'write:personas' }],
  ['/agent-cognition/catalog', { GET: 'read:personas' }],
];

const PATTERNS = ROUTE_TEMPLATES.map(([template, scopes]) => ({ template, parts: template.split('/').slice(1), scopes }));

interface Matched {
  template: string;
  scope: string | null;
}

function match(method: string, path: string): Matched | null {
  const parts = path.split('/').slice(1);
  for (const pattern of PATTERNS) {
    if (pattern.parts.length !== parts.length) continue;
    if (pattern.parts.every((p, i) => p === ':id' || p === parts[i])) {
      return { template: pattern.template, scope: pattern.scopes[method as Method] ?? null };
    }
  }
  // A data endpoint: /data/{type}/{scope}/{id}, where the type may take two segments (ratings/…).
  if (parts[0] === 'data') {
    const typeLength = parts[1] === 'ratings' ? 2 : 1;
    const type = parts.slice(1, 1 + typeLength).join('/');
    if (parts.length === 3 + typeLength) {
      const scope = LISTING_BY_PATH.get(type)?.requiredScope ?? OTHER_DATA[type] ?? null;
      return { template: `/data/${type}/${parts[1 + typeLength] ?? ''}/:id`, scope: method === 'GET' ? scope : null };
    }
  }
  return null;
}

/** The scope a request needs, as the upstream documents it (null when undocumented or only authentication). */
export function requiredScope(path: string, method = 'GET'): string | null {
  return match(method, path)?.scope ?? null;
}

/** The endpoint a request counts against for the upstream's per-endpoint limit: method and route template. */
export function endpointOf(method: string, path: string): string {
  // An unknown path keeps only its first segment, so that ids never become metric labels.
  return `${method} ${match(method, path)?.template ?? `/${path.split('/')[1] ?? ''}/…`}`;
}
