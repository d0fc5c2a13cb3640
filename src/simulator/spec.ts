/**
 * One declarative spec per upstream data type (`GET /data/{path}/{scope}/{id}`): the simulator's routing,
 * parameter validation and the `metadata.query` echo all derive from this table. It is exported so that a
 * test can compare it with the gateway's own spec (the gateway never imports the simulator).
 */

export const SCOPES = ['experiment', 'room', 'participant'] as const;
export type Scope = (typeof SCOPES)[number];

/** A type-specific query parameter and how its value is validated. */
export type ParamSpec =
  /** One of a closed set of values. */
  | { name: string; kind: 'enum'; values: readonly string[] }
  /** Any non-empty string (an open set: an unknown value simply matches nothing). */
  | { name: string; kind: 'string' }
  | { name: string; kind: 'bool'; default?: boolean }
  | { name: string; kind: 'int'; min: number; max: number; default?: number };

export interface DataTypeSpec {
  /** The path below `/data/`, e.g. `ratings/sparse`. */
  readonly path: string;
  /** What `metadata.dataType` reports. */
  readonly dataType: string;
  readonly scopes: readonly Scope[];
  /** The key scope a request needs. */
  readonly requiredScope: string;
  /**
   * Type-specific parameters. Paginated listings also take the common ones (`LISTING_PARAMS`); a
   * participant scope always takes (and needs) `roomId`.
   */
  readonly params: readonly ParamSpec[];
  /** Sort fields besides `timestamp` (which always means the type's own instant). */
  readonly sorts: readonly string[];
  /** The sort the metadata reports when none is asked for. */
  readonly defaultSort: string;
  /** The record field holding the instant that time filters and the `timestamp` sort use. */
  readonly timeField: string | null;
  /** The largest `limit` of a page (null when the type has no pages). */
  readonly maxLimit: number | null;
  readonly paginated: boolean;
  /** Every top-level field a row of this type may carry (legacy `sessionId` included where it occurs). */
  readonly recordFields: readonly string[];
}

/** The parameters every paginated listing takes. */
export const LISTING_PARAMS = ['startTime', 'endTime', 'limit', 'offset', 'sort', 'order', 'format', 'deploymentId', 'roomId'] as const;
export const FORMATS = ['json', 'csv', 'ndjson'] as const;
export const DEFAULT_MAX_LIMIT = 1000;
export const ROOMS_MAX_LIMIT = 5000;

export const COMPLETION_CODES = ['SUCCESS', 'TIMEOUT', 'TECHNICAL', 'NOCONSENT', 'ABANDONED', 'IN_PROGRESS', 'COMPLETED_NO_CODE'] as const;

type Listing<P extends string> = DataTypeSpec & { path: P; paginated: true };
type Single<P extends string> = DataTypeSpec & { path: P; paginated: false };

type ListingOptions = Pick<DataTypeSpec, 'requiredScope' | 'recordFields'> & Partial<Omit<DataTypeSpec, 'path' | 'paginated'>>;

function listing<P extends string>(path: P, options: ListingOptions): Listing<P> {
  return {
    path,
    dataType: path,
    scopes: SCOPES,
    params: [],
    sorts: [],
    defaultSort: 'timestamp',
    timeField: 'timestamp',
    maxLimit: DEFAULT_MAX_LIMIT,
    ...options,
    paginated: true,
  };
}

function single<P extends string>(
  path: P,
  options: Pick<DataTypeSpec, 'dataType' | 'scopes' | 'requiredScope' | 'params' | 'recordFields' | 'timeField'>,
): Single<P> {
  return { path, ...options, sorts: [], defaultSort: 'timestamp', maxLimit: null, paginated: false };
}

const AGENT_RUN_FIELDS = [
  'id',
  'participantId',
  'roomId',
  'experimentId',
  'personaId',
  'model',
  'provider',
  'seed',
  'totalInputTokens',
  'totalOutputTokens',
  'totalCostUsd',
  'turns',
  'codeCommitSha',
  'startedAt',
  'endedAt',
] as const;

/** The fields `detail=true` adds to a decision row (and the decision detail route always carries). */
export const DECISION_DETAIL_FIELDS = ['prompt', 'reasoning', 'chain', 'peerModelSnapshot', 'predictionUpdate'] as const;
export const DECISION_FIELDS = [
  'id',
  'participantId',
  'roomId',
  'experimentId',
  'seq',
  'stateId',
  'stateName',
  'turnKind',
  'action',
  'value',
  'model',
  'provider',
  'latencyMs',
  'inputTokens',
  'outputTokens',
  'timestamp',
] as const;

export const SIMULATOR_DATA_TYPES = {
  events: listing('events', {
    requiredScope: 'read:events',
    params: [{ name: 'category', kind: 'string' }],
    sorts: ['onset', 'eventType', 'category', 'participantId', 'id'],
    recordFields: [
      'id',
      'timestamp',
      'onset',
      'experimentId',
      'roomId',
      'sessionId',
      'participantId',
      'eventType',
      'category',
      'componentType',
      'componentId',
      'content',
      'stateName',
      'stateId',
      'participantRole',
      'duration',
      'response',
    ],
  }),
  recordings: listing('recordings', {
    requiredScope: 'read:recordings',
    sorts: ['startTime', 'endTime', 'duration', 'fileSize', 'participantId'],
    defaultSort: 'startTime',
    timeField: 'startTime',
    recordFields: [
      'recordingId',
      'egressId',
      'participantId',
      'participantName',
      'experimentId',
      'roomId',
      'startTime',
      'endTime',
      'duration',
      'videoOffset',
      'url',
      'downloadUrl',
      'downloadPath',
      'fileName',
      'fileSize',
      'format',
      'resolution',
      'status',
      'metadata',
    ],
  }),
  videochat: listing('videochat', {
    requiredScope: 'read:videochat',
    sorts: ['onset', 'eventType', 'participantId'],
    recordFields: ['id', 'participantId', 'experimentId', 'roomId', 'timestamp', 'onset', 'eventType', 'trackKind', 'quality', 'metrics'],
  }),
  chat: listing('chat', {
    requiredScope: 'read:chat',
    sorts: ['onset', 'senderId'],
    recordFields: [
      'messageId',
      'senderId',
      'senderName',
      'participantId',
      'experimentId',
      'roomId',
      'sessionId',
      'content',
      'timestamp',
      'recipientIds',
      'onset',
    ],
  }),
  'ratings/continuous': listing('ratings/continuous', {
    requiredScope: 'read:ratings',
    sorts: ['onset', 'value', 'participantId'],
    recordFields: ['participantId', 'experimentId', 'roomId', 'timestamp', 'onset', 'value', 'componentId', 'stateId', 'stimulusId'],
  }),
  'ratings/sparse': listing('ratings/sparse', {
    requiredScope: 'read:ratings',
    sorts: ['onset', 'value', 'responseTime', 'participantId'],
    recordFields: [
      'ratingId',
      'participantId',
      'experimentId',
      'roomId',
      'sessionId',
      'stateId',
      'stimulusId',
      'timestamp',
      'stateStartTime',
      'onset',
      'rawOnset',
      'clockOffsetApplied',
      'ratingEndOnset',
      'responseTime',
      'stimulusTime',
      'stateDuration',
      'value',
      'rawValue',
      'scale',
      'confidence',
      'type',
      'metadata',
      'sparseRatingData',
    ],
  }),
  sync: listing('sync', {
    requiredScope: 'read:sync',
    params: [{ name: 'aggregationWindow', kind: 'int', min: 100, max: 3_600_000 }],
    sorts: ['onset', 'timeDrift', 'syncQuality', 'latency', 'participantId'],
    recordFields: [
      'participantId',
      'experimentId',
      'roomId',
      'timestamp',
      'onset',
      'timeDrift',
      'playbackRate',
      'syncQuality',
      'latency',
      'isHost',
      // Rows of an aggregated listing (aggregationWindow).
      'aggregationWindow',
      'sampleCount',
    ],
  }),
  components: listing('components', {
    requiredScope: 'read:components',
    params: [
      { name: 'componentType', kind: 'string' },
      { name: 'completed', kind: 'bool' },
      { name: 'stateId', kind: 'string' },
    ],
    sorts: ['onset', 'componentType', 'stateId', 'participantId'],
    recordFields: [
      'id',
      'componentId',
      'componentType',
      'stateId',
      'participantId',
      'experimentId',
      'roomId',
      'timestamp',
      'onset',
      'config',
      'variables',
      'response',
      'completed',
    ],
  }),
  eyetracking: listing('eyetracking', {
    requiredScope: 'read:eyetracking',
    sorts: ['onset', 'confidence', 'participantId'],
    recordFields: [
      'id',
      'timestamp',
      'onset',
      'experimentId',
      'roomId',
      'participantId',
      'stateId',
      'componentId',
      'x',
      'y',
      'confidence',
      'source',
    ],
  }),
  participants: listing('participants', {
    requiredScope: 'read:events',
    scopes: ['experiment', 'room'],
    params: [{ name: 'completionCode', kind: 'enum', values: COMPLETION_CODES }],
    sorts: ['joinedAt', 'completedAt', 'id', 'email', 'role', 'status', 'completionCode'],
    timeField: 'joinedAt',
    recordFields: [
      'id',
      'email',
      'name',
      'role',
      'status',
      'completionCode',
      'joinedAt',
      'completedAt',
      'roomId',
      'experimentId',
      'deploymentId',
    ],
  }),
  rooms: listing('rooms', {
    requiredScope: 'read:events',
    scopes: ['experiment', 'room'],
    sorts: ['createdAt', 'startedAt', 'endedAt', 'status', 'participantCount', 'id'],
    timeField: 'createdAt',
    maxLimit: ROOMS_MAX_LIMIT,
    recordFields: [
      'id',
      'experimentId',
      'deploymentId',
      'deploymentName',
      'status',
      'participantCount',
      'createdAt',
      'startedAt',
      'endedAt',
    ],
  }),
  variables: single('variables', {
    dataType: 'variables',
    scopes: ['room'],
    timeField: 'timestamp',
    requiredScope: 'read:events',
    params: [],
    recordFields: ['variable', 'value', 'source', 'persisted', 'stateId', 'timestamp'],
  }),
  counts: single('counts', {
    dataType: 'counts',
    scopes: ['participant'],
    timeField: null,
    requiredScope: 'read:events',
    params: [],
    recordFields: ['participantId', 'roomId', 'counts', 'hasData'],
  }),
  'agent-decisions': single('agent-decisions', {
    dataType: 'agentDecisions',
    scopes: ['experiment', 'room'],
    timeField: 'timestamp',
    requiredScope: 'read:events',
    params: [
      { name: 'detail', kind: 'bool', default: false },
      { name: 'limit', kind: 'int', min: 1, max: 5000, default: 5000 },
    ],
    recordFields: [...new Set(['_type', ...DECISION_FIELDS, ...DECISION_DETAIL_FIELDS, ...AGENT_RUN_FIELDS])],
  }),
  'agent-runs': single('agent-runs', {
    dataType: 'agentRuns',
    scopes: ['experiment'],
    timeField: 'startedAt',
    requiredScope: 'read:events',
    params: [],
    recordFields: [...AGENT_RUN_FIELDS, 'roomStatus', 'orphaned'],
  }),
} satisfies Record<string, DataTypeSpec>;

type Specs = typeof SIMULATOR_DATA_TYPES;
export type DataTypePath = keyof Specs;
/** The paginated types, served from the store's indexes by one generic listing. */
export type ListingType = { [K in DataTypePath]: Specs[K]['paginated'] extends true ? K : never }[DataTypePath];
/** The types without pages, each served by its own handler. */
export type SingleType = Exclude<DataTypePath, ListingType>;

/** The per-participant counts of `/data/counts`, keyed as the upstream keys them, and the type each counts. */
export const COUNT_SOURCES = {
  events: 'events',
  textchat: 'chat',
  videochat: 'videochat',
  recordings: 'recordings',
  sync: 'sync',
  components: 'components',
  continuous_ratings: 'ratings/continuous',
  sparse_ratings: 'ratings/sparse',
  eyetracking: 'eyetracking',
} as const satisfies Record<string, ListingType>;

export const DATA_TYPE_PATHS = Object.keys(SIMULATOR_DATA_TYPES) as DataTypePath[];
export const LISTING_TYPES = DATA_TYPE_PATHS.filter((p): p is ListingType => SIMULATOR_DATA_TYPES[p].paginated);

export function dataTypeSpec(path: DataTypePath): DataTypeSpec {
  return SIMULATOR_DATA_TYPES[path];
}

/** The data type a `/data/…` path names (its first one or two segments), if any. */
export function matchDataType(segments: readonly string[]): { type: DataTypePath; length: number } | null {
  for (const length of [2, 1]) {
    const candidate = segments.slice(0, length).join('/');
    if (segments.length >= length && candidate in SIMULATOR_DATA_TYPES) return { type: candidate as DataTypePath, length };
  }
  return null;
}

/** Every parameter some data type accepts: naming one a type does not take is a 400, not silently ignored. */
export const KNOWN_PARAMS: ReadonlySet<string> = new Set([
  ...LISTING_PARAMS,
  ...DATA_TYPE_PATHS.flatMap((p) => SIMULATOR_DATA_TYPES[p].params.map((param) => param.name)),
]);

/** The parameters a type accepts at a scope. */
export function acceptedParams(spec: DataTypeSpec, scope: Scope): string[] {
  const own = spec.params.map((p) => p.name);
  if (spec.paginated) return [...LISTING_PARAMS, ...own];
  return [...(scope === 'participant' ? ['roomId'] : []), ...own];
}
