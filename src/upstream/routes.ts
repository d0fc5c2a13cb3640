/** Every upstream path the gateway calls, in one place: resolvers never build URLs. */

export const DATA_TYPES = {
  events: 'events',
  recordings: 'recordings',
  videoChat: 'videochat',
  chatMessages: 'chat',
  continuousRatings: 'ratings/continuous',
  sparseRatings: 'ratings/sparse',
  syncMetrics: 'sync',
  components: 'components',
  participants: 'participants',
  rooms: 'rooms',
} as const;
export type DataTypePath = (typeof DATA_TYPES)[keyof typeof DATA_TYPES];

/** Where data is read: a whole experiment, one room, or one participant of a room. */
export type Scope = { kind: 'experiment'; id: string } | { kind: 'room'; id: string } | { kind: 'participant'; id: string; roomId: string };

const seg = encodeURIComponent;

export const routes = {
  health: () => '/health',
  data: (type: DataTypePath, scope: Scope) => `/data/${type}/${scope.kind}/${seg(scope.id)}`,
  checkAccess: (experimentId: string) => `/data/check-access/experiment/${seg(experimentId)}`,
  eventsBatch: () => '/data/events/batch',
  experiments: () => '/experiments',
  experiment: (id: string) => `/experiments/${seg(id)}`,
  experimentConfig: (id: string) => `/experiments/${seg(id)}/config`,
  experimentExport: (id: string) => `/experiments/${seg(id)}/export`,
  validateExperiment: () => '/experiments/validate',
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

const DATA_SCOPES: Record<DataTypePath, string> = {
  events: 'read:events',
  recordings: 'read:recordings',
  videochat: 'read:videochat',
  chat: 'read:chat',
  'ratings/continuous': 'read:ratings',
  'ratings/sparse': 'read:ratings',
  sync: 'read:sync',
  components: 'read:components',
  participants: 'read:events',
  rooms: 'read:events',
};

/** The scope a GET needs, as the upstream documents it (null when only authentication is needed). */
export function requiredScope(path: string): string | null {
  const data = /^\/data\/(ratings\/[a-z]+|[a-z]+)\/(experiment|room|participant)\//.exec(path);
  if (data) return DATA_SCOPES[data[1] as DataTypePath] ?? null;
  if (path.startsWith('/experiments')) return 'read:experiments';
  return null;
}

/** The endpoint a request counts against for the upstream's per-endpoint limit: method and route template. */
export function endpointOf(method: string, path: string): string {
  return `${method} ${path.replace(/^(\/data\/(?:ratings\/[a-z]+|[a-z-]+)\/[a-z]+)\/[^/]+$/, '$1/:id').replace(/^\/experiments\/(?!validate)[^/]+/, '/experiments/:id')}`;
}
