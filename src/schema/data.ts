import { DATA_TYPES, type DataTypePath, type Scope } from '../upstream/routes.ts';
import type { ObjectRef } from '@pothos/core';
import { builder, type FieldBuilder, type GatewayContext, type Types } from './builder.ts';
import { resolveDataConnection } from './connection.ts';
import { badInput } from './errors.ts';
import { ChatMessage, ComponentResponse, ContinuousRating, Event, Recording, SparseRating, SyncMetric, VideoChatEvent } from './records.ts';
import { SortOrder } from './scalars.ts';
import { Participant, Room } from './refs.ts';
import type { Rec } from './values.ts';

const upper = (name: string): string => name.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();

function sortEnum(name: string, fields: readonly string[]) {
  return builder.enumType(name, {
    description: `What to sort by (upstream \`sort\`); TIMESTAMP is the record's own instant.`,
    values: Object.fromEntries(['timestamp', ...fields].map((f) => [upper(f), { value: f }])),
  });
}

export const EventCategory = builder.enumType('EventCategory', {
  values: {
    COMPONENT: { value: 'component' },
    STATE: { value: 'state' },
    MEDIA: { value: 'media' },
    PRE_EXPERIMENT: { value: 'pre_experiment' },
    QUESTIONNAIRE: { value: 'questionnaire' },
    SYSTEM: { value: 'system' },
  } as const,
});

export const CompletionCode = builder.enumType('CompletionCode', {
  values: ['SUCCESS', 'TIMEOUT', 'TECHNICAL', 'NOCONSENT', 'ABANDONED', 'IN_PROGRESS', 'COMPLETED_NO_CODE'] as const,
});

const SORTS = {
  events: sortEnum('EventSort', ['onset', 'eventType', 'category', 'participantId', 'id']),
  recordings: sortEnum('RecordingSort', ['startTime', 'endTime', 'duration', 'fileSize', 'participantId']),
  videoChat: sortEnum('VideoChatSort', ['onset', 'eventType', 'participantId']),
  chatMessages: sortEnum('ChatMessageSort', ['onset', 'senderId']),
  continuousRatings: sortEnum('ContinuousRatingSort', ['onset', 'value', 'participantId']),
  sparseRatings: sortEnum('SparseRatingSort', ['onset', 'value', 'responseTime', 'participantId']),
  syncMetrics: sortEnum('SyncMetricSort', ['onset', 'timeDrift', 'syncQuality', 'latency', 'participantId']),
  components: sortEnum('ComponentSort', ['onset', 'componentType', 'stateId', 'participantId']),
  participants: sortEnum('ParticipantSort', ['joinedAt', 'completedAt', 'id', 'email', 'role', 'status', 'completionCode']),
  rooms: sortEnum('RoomSort', ['createdAt', 'startedAt', 'endedAt', 'status', 'participantCount', 'id']),
};

interface CommonArgs {
  startTime?: Date | null;
  endTime?: Date | null;
  sort?: string | null;
  order?: string | null;
  deploymentId?: string | null;
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

/** A string filter: absent, or non-blank (a blank one is the caller's mistake, not "no filter"). */
function text(v: string | null | undefined, argument: string): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (v.trim() === '') throw badInput(`'${argument}' must not be blank`, argument);
  return v;
}

/** Upstream parameters from the common arguments, checked before any upstream call. */
function commonParams(args: CommonArgs): Record<string, string | undefined> {
  if (args.startTime && args.endTime && args.startTime > args.endTime) {
    throw badInput("'startTime' must not be after 'endTime'", 'startTime', {
      startTime: args.startTime.toISOString(),
      endTime: args.endTime.toISOString(),
    });
  }
  return {
    startTime: args.startTime?.toISOString(),
    endTime: args.endTime?.toISOString(),
    sort: args.sort ?? undefined,
    order: args.order ?? undefined,
    deploymentId: text(args.deploymentId, 'deploymentId'),
  };
}

function commonArgs<P>(t: FieldBuilder<P>, sort: (typeof SORTS)[keyof typeof SORTS]) {
  return {
    startTime: t.arg({ type: 'DateTime', description: 'Only records at or after this instant.' }),
    endTime: t.arg({ type: 'DateTime', description: 'Only records at or before this instant.' }),
    sort: t.arg({ type: sort, description: 'Sort field (default TIMESTAMP).' }),
    order: t.arg({ type: SortOrder, description: 'Sort order (default ASC).' }),
    deploymentId: t.arg.string({ description: 'Only records of this deployment.' }),
  };
}

/** Every argument a data connection may take (each field declares its own subset). */
export interface DataArgs extends CommonArgs {
  category?: string | null;
  aggregationWindow?: number | null;
  componentType?: string | null;
  completed?: boolean | null;
  stateId?: string | null;
  completionCode?: string | null;
}

function syncParams(args: DataArgs): Record<string, string | undefined> {
  const w = args.aggregationWindow;
  if (w !== null && w !== undefined && (w < 100 || w > 3_600_000)) {
    throw badInput(`'aggregationWindow' must be between 100 and 3600000 ms, got ${w}`, 'aggregationWindow', { value: w });
  }
  return { ...commonParams(args), aggregationWindow: w === null || w === undefined ? undefined : String(w) };
}

/**
 * Each list field: its upstream data type and its arguments as upstream parameters (checked, so bad
 * arguments never leave the gateway). Resolvers and the lookahead both read this table.
 */
export const DATA_FIELDS: Record<string, { type: DataTypePath; params: (args: DataArgs) => Record<string, string | undefined> }> = {
  events: { type: DATA_TYPES.events, params: (a) => ({ ...commonParams(a), category: text(a.category, 'category') }) },
  recordings: { type: DATA_TYPES.recordings, params: commonParams },
  videoChat: { type: DATA_TYPES.videoChat, params: commonParams },
  chatMessages: { type: DATA_TYPES.chatMessages, params: commonParams },
  continuousRatings: { type: DATA_TYPES.continuousRatings, params: commonParams },
  sparseRatings: { type: DATA_TYPES.sparseRatings, params: commonParams },
  syncMetrics: { type: DATA_TYPES.syncMetrics, params: syncParams },
  components: {
    type: DATA_TYPES.components,
    params: (a) => ({
      ...commonParams(a),
      componentType: text(a.componentType, 'componentType'),
      completed: a.completed === null || a.completed === undefined ? undefined : String(a.completed),
      stateId: text(a.stateId, 'stateId'),
    }),
  },
  participants: {
    type: DATA_TYPES.participants,
    params: (a) => ({ ...commonParams(a), completionCode: text(a.completionCode, 'completionCode') }),
  },
  rooms: { type: DATA_TYPES.rooms, params: commonParams },
};

/** Where a parent's lists are read, and the experiment it belongs to. */
export interface ParentScope {
  scope: Scope;
  experimentId: string | null;
}

function resolver<P>(field: keyof typeof DATA_FIELDS, scopeOf: (parent: P) => ParentScope) {
  const spec = DATA_FIELDS[field];
  if (!spec) throw new Error(`no data field ${String(field)}`);
  return (parent: P, args: DataArgs, ctx: GatewayContext) => {
    const { scope, experimentId } = scopeOf(parent);
    return resolveDataConnection(ctx, { type: spec.type, params: spec.params(args), scope, experimentId }, args);
  };
}

/** The eight data connections, on any parent whose scope is known. */
export function dataConnections<P>(t: FieldBuilder<P>, scopeOf: (parent: P) => ParentScope) {
  const plain = (field: string, type: ObjectRef<Types, Rec>, description: string, sort: (typeof SORTS)[keyof typeof SORTS]) =>
    t.connection({ type, description, args: commonArgs(t, sort), resolve: resolver(field, scopeOf) });
  return {
    events: t.connection({
      type: Event,
      description: 'Events (upstream `events`).',
      args: { ...commonArgs(t, SORTS.events), category: t.arg({ type: EventCategory }) },
      resolve: resolver('events', scopeOf),
    }),
    recordings: plain('recordings', Recording, 'Recordings (upstream `recordings`).', SORTS.recordings),
    videoChat: plain('videoChat', VideoChatEvent, 'Video-chat connection data (upstream `videochat`).', SORTS.videoChat),
    chatMessages: plain('chatMessages', ChatMessage, 'Text chat (upstream `chat`).', SORTS.chatMessages),
    continuousRatings: plain(
      'continuousRatings',
      ContinuousRating,
      'Continuous ratings (upstream `ratings/continuous`).',
      SORTS.continuousRatings,
    ),
    sparseRatings: plain('sparseRatings', SparseRating, 'Sparse ratings (upstream `ratings/sparse`).', SORTS.sparseRatings),
    syncMetrics: t.connection({
      type: SyncMetric,
      description: 'Sync metrics (upstream `sync`).',
      args: {
        ...commonArgs(t, SORTS.syncMetrics),
        aggregationWindow: t.arg.int({ description: 'Aggregate into windows of this many milliseconds (100 to 3600000).' }),
      },
      resolve: resolver('syncMetrics', scopeOf),
    }),
    components: t.connection({
      type: ComponentResponse,
      description: 'Component responses (upstream `components`).',
      args: {
        ...commonArgs(t, SORTS.components),
        componentType: t.arg.string({ description: 'ShowVideo, TextInput, …' }),
        completed: t.arg.boolean(),
        stateId: t.arg.string(),
      },
      resolve: resolver('components', scopeOf),
    }),
  };
}

/** A participants connection at experiment or room scope. */
export function participantsConnection<P>(t: FieldBuilder<P>, scopeOf: (parent: P) => ParentScope) {
  return t.connection({
    type: Participant,
    description: 'Participants (upstream `participants`).',
    args: { ...commonArgs(t, SORTS.participants), completionCode: t.arg({ type: CompletionCode }) },
    resolve: resolver('participants', scopeOf),
  });
}

/** The rooms (sessions) of an experiment. */
export function roomsConnection(t: FieldBuilder<Rec>, scopeOf: (parent: Rec) => ParentScope) {
  return t.connection({
    type: Room,
    description: 'Rooms (sessions), upstream `rooms`.',
    args: commonArgs(t, SORTS.rooms),
    resolve: resolver('rooms', scopeOf),
  });
}
