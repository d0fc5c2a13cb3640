import { dataSource } from '../loaders/fetch.ts';
import { DATA_TYPES, type DataTypePath, type Scope } from '../upstream/routes.ts';
import { builder, type FieldBuilder } from './builder.ts';
import { resolveConnection } from './connection.ts';
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
  values: { COMPONENT: { value: 'component' }, STATE: { value: 'state' }, MEDIA: { value: 'media' }, PRE_EXPERIMENT: { value: 'pre_experiment' }, QUESTIONNAIRE: { value: 'questionnaire' }, SYSTEM: { value: 'system' } } as const,
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

/** Upstream parameters from the common arguments, checked before any upstream call. */
function commonParams(args: CommonArgs): Record<string, string | undefined> {
  if (args.startTime && args.endTime && args.startTime > args.endTime) {
    throw badInput("'startTime' must not be after 'endTime'", 'startTime', { startTime: args.startTime.toISOString(), endTime: args.endTime.toISOString() });
  }
  return {
    startTime: args.startTime?.toISOString(),
    endTime: args.endTime?.toISOString(),
    sort: args.sort ?? undefined,
    order: args.order ?? undefined,
    deploymentId: args.deploymentId ?? undefined,
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

const text = (v: string | null | undefined): string | undefined => (v === null || v === undefined ? undefined : v);

/** The eight data connections, on any parent whose scope is known. */
export function dataConnections<P>(t: FieldBuilder<P>, scopeOf: (parent: P) => Scope) {
  const source = (type: DataTypePath, parent: P, params: Record<string, string | undefined>) => dataSource(type, scopeOf(parent), params);
  const plain = <A extends CommonArgs>(type: DataTypePath) => (parent: P, args: A, ctx: Parameters<typeof resolveConnection>[0]) =>
    resolveConnection(ctx, source(type, parent, commonParams(args)), args);
  return {
    events: t.connection({
      type: Event,
      description: 'Events (upstream `events`).',
      args: { ...commonArgs(t, SORTS.events), category: t.arg({ type: EventCategory }) },
      resolve: (parent, args, ctx) => resolveConnection(ctx, source(DATA_TYPES.events, parent, { ...commonParams(args), category: text(args.category) }), args),
    }),
    recordings: t.connection({ type: Recording, description: 'Recordings (upstream `recordings`).', args: commonArgs(t, SORTS.recordings), resolve: plain(DATA_TYPES.recordings) }),
    videoChat: t.connection({ type: VideoChatEvent, description: 'Video-chat connection data (upstream `videochat`).', args: commonArgs(t, SORTS.videoChat), resolve: plain(DATA_TYPES.videoChat) }),
    chatMessages: t.connection({ type: ChatMessage, description: 'Text chat (upstream `chat`).', args: commonArgs(t, SORTS.chatMessages), resolve: plain(DATA_TYPES.chatMessages) }),
    continuousRatings: t.connection({ type: ContinuousRating, description: 'Continuous ratings (upstream `ratings/continuous`).', args: commonArgs(t, SORTS.continuousRatings), resolve: plain(DATA_TYPES.continuousRatings) }),
    sparseRatings: t.connection({ type: SparseRating, description: 'Sparse ratings (upstream `ratings/sparse`).', args: commonArgs(t, SORTS.sparseRatings), resolve: plain(DATA_TYPES.sparseRatings) }),
    syncMetrics: t.connection({
      type: SyncMetric,
      description: 'Sync metrics (upstream `sync`).',
      args: { ...commonArgs(t, SORTS.syncMetrics), aggregationWindow: t.arg.int({ description: 'Aggregate into windows of this many milliseconds (100 to 3600000).' }) },
      resolve: (parent, args, ctx) => {
        const w = args.aggregationWindow;
        if (w !== null && w !== undefined && (w < 100 || w > 3_600_000)) {
          throw badInput(`'aggregationWindow' must be between 100 and 3600000 ms, got ${w}`, 'aggregationWindow', { value: w });
        }
        return resolveConnection(ctx, source(DATA_TYPES.syncMetrics, parent, { ...commonParams(args), aggregationWindow: w === null || w === undefined ? undefined : String(w) }), args);
      },
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
      resolve: (parent, args, ctx) =>
        resolveConnection(ctx, source(DATA_TYPES.components, parent, {
          ...commonParams(args),
          componentType: text(args.componentType),
          completed: args.completed === null || args.completed === undefined ? undefined : String(args.completed),
          stateId: text(args.stateId),
        }), args),
    }),
  };
}

/** A participants connection at experiment or room scope. */
export function participantsConnection<P>(t: FieldBuilder<P>, scopeOf: (parent: P) => Scope) {
  return t.connection({
    type: Participant,
    description: 'Participants (upstream `participants`).',
    args: { ...commonArgs(t, SORTS.participants), completionCode: t.arg({ type: CompletionCode }) },
    resolve: (parent, args, ctx) =>
      resolveConnection(ctx, dataSource(DATA_TYPES.participants, scopeOf(parent), { ...commonParams(args), completionCode: text(args.completionCode) }), args),
  });
}

/** The rooms (sessions) of an experiment. */
export function roomsConnection(t: FieldBuilder<Rec>, scopeOf: (parent: Rec) => Scope) {
  return t.connection({
    type: Room,
    description: 'Rooms (sessions), upstream `rooms`.',
    args: commonArgs(t, SORTS.rooms),
    resolve: (parent, args, ctx) => resolveConnection(ctx, dataSource(DATA_TYPES.rooms, scopeOf(parent), commonParams(args)), args),
  });
}
