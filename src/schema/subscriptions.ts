import { gatewayError } from '../errors.ts';
import { ActivityFeed, ListingFeed, type Activity, type ActivityType } from '../live/feeds.ts';
import type { Feed } from '../live/poller.ts';
import { LISTING_BY_FIELD } from '../spec/data-types.ts';
import { listingParams, type ListingArgs } from '../spec/params.ts';
import { filtersOf, type ListingSpec } from '../spec/spec.ts';
import { MISSING_KEY_MESSAGE } from '../upstream/session.ts';
import { builder, type GatewayContext, type SubscriptionFieldBuilder } from './builder.ts';
import { upstreamId } from './ids.ts';
import { toGraphQLError } from './errors.ts';
import { UpstreamError } from '../upstream/errors.ts';
import { filterArgs } from './data.ts';
import { RECORD_TYPES } from './records.ts';
import { Participant, Room } from './refs.ts';
import { roomOf, type Rec } from '../upstream/values.ts';

/**
 * Starts (or joins) the caller's poller of a feed; a refusal of the baseline read is thrown at once.
 * Each payload is resolved with a session and loaders of its own (its nested fields read the upstream
 * as it is then, within a budget and deadline of their own), the previous one's ended.
 */
async function follow<T>(ctx: GatewayContext, feed: Feed<T>): Promise<AsyncIterable<T>> {
  const owner = ctx.session.forLive();
  if (!ctx.authenticated || owner === null) throw gatewayError('UNAUTHENTICATED', MISSING_KEY_MESSAGE);
  if (ctx.organizationRefused) {
    throw gatewayError('BAD_USER_INPUT', 'X-Organization-Id must be an organization id (letters, digits, _ . : -, at most 128)', {
      extensions: { argument: 'X-Organization-Id' },
    });
  }
  const { items, status } = await ctx.live.hub.subscribe(owner, feed, ctx.live.signal);
  ctx.live.status = status;
  return perPayload(items, ctx);
}

/**
 * The items with a fresh session and loaders swapped into the context before each is resolved. Not an
 * async generator: returning one that waits for its next item would wait for that item first.
 */
function perPayload<T>(items: AsyncIterator<T> & AsyncIterable<T>, ctx: GatewayContext): AsyncIterableIterator<T> {
  const end = (): void => ctx.session.end();
  return {
    async next() {
      let result: IteratorResult<T>;
      try {
        result = await items.next();
      } catch (error) {
        // An ending the upstream caused (its key revoked, …) keeps its code, like any upstream error.
        end();
        throw error instanceof UpstreamError ? toGraphQLError(error) : error;
      }
      end();
      if (result.done) return result;
      ({ session: ctx.session, loaders: ctx.loaders } = ctx.live.renew());
      return result;
    },
    async return() {
      end();
      return (await items.return?.()) ?? { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** The record field that identifies each live type's records (continuous ratings have none). */
const ID_FIELDS: Readonly<Record<string, string | null>> = {
  events: 'id',
  chat: 'messageId',
  'ratings/sparse': 'ratingId',
  'ratings/continuous': null,
  eyetracking: 'id',
};

/** A room's new records of one listing, with the listing's filters (the time window is the poller's). */
function roomFeedField(t: SubscriptionFieldBuilder, field: string, description: string) {
  const spec = LISTING_BY_FIELD.get(field);
  const node = spec && typeof spec.node !== 'string' ? RECORD_TYPES.get(spec.node.name) : undefined;
  if (!spec || !node) throw new Error(`no listing ${field}`);
  const listing: ListingSpec = spec;
  const args = filterArgs(
    t,
    filtersOf(listing).filter((f) => f.arg !== 'startTime' && f.arg !== 'endTime'),
  );
  const { ref, view } = node;
  return t.field({
    type: ref,
    description,
    args: { roomId: t.arg.id({ required: true, description: 'The room to follow.' }), ...args },
    subscribe: (_root, rawArgs, ctx) => {
      const { roomId, ...rest } = rawArgs as ListingArgs & { roomId: string | number };
      // A category that looks like a slip of a known one is warned about as in a query (every payload says it).
      const params = { ...listingParams(listing, rest, (w) => ctx.warnings.add(w)), sort: undefined, order: undefined };
      return follow(
        ctx,
        new ListingFeed({
          type: listing.path,
          scope: { kind: 'room', id: upstreamId(roomId, 'roomId', 'Room') },
          params,
          timeField: 'timestamp',
          idField: ID_FIELDS[listing.path] ?? null,
          pageLimit: listing.pageLimit,
          lateMs: ctx.live.lateMs,
        }),
      );
    },
    resolve: (record: Rec) => view(record),
  });
}

const ActivityKind = builder.enumType('ActivityType', {
  values: ['ROOM_STARTED', 'ROOM_ENDED', 'PARTICIPANT_JOINED', 'PARTICIPANT_COMPLETED'] as const satisfies readonly ActivityType[],
});

const ExperimentActivity = builder.objectRef<Activity>('ExperimentActivity').implement({
  description: 'A room that started or ended, or a participant who joined or completed.',
  fields: (t) => ({
    type: t.field({ type: ActivityKind, resolve: (a) => a.type }),
    at: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When it happened.',
      resolve: (a) => (a.at === null ? null : new Date(a.at)),
    }),
    room: t.field({
      type: Room,
      nullable: true,
      description: 'The room (for a participant: through a loader).',
      resolve: (a, _args, ctx) => {
        if (a.room) return a.room;
        const roomId = a.participant ? roomOf(a.participant) : null;
        return roomId === null ? null : ctx.loaders.room.load(roomId);
      },
    }),
    participant: t.field({ type: Participant, nullable: true, resolve: (a) => a.participant }),
  }),
});

builder.subscriptionType({
  description:
    'Live data over SSE or WebSocket (graphql-ws). One shared poller per key and feed serves every subscriber; ' +
    'its interval adapts to the key’s quota (each payload says it in extensions.live).',
  fields: (t) => ({
    roomEvents: roomFeedField(t, 'events', 'Each new event of a room, once, in order.'),
    roomChatMessages: roomFeedField(t, 'chatMessages', 'Each new chat message of a room, once, in order.'),
    roomSparseRatings: roomFeedField(t, 'sparseRatings', 'Each new sparse rating of a room, once, in order.'),
    roomContinuousRatings: roomFeedField(t, 'continuousRatings', 'Each new continuous-rating sample of a room, once, in order.'),
    roomEyetracking: roomFeedField(t, 'eyetracking', 'Each new eye-tracking sample of a room, once, in order.'),
    experimentActivity: t.field({
      type: ExperimentActivity,
      description: 'Rooms of an experiment that start or end, participants who join or complete.',
      args: { experimentId: t.arg.id({ required: true }) },
      subscribe: (_root, args, ctx) =>
        follow(
          ctx,
          new ActivityFeed(upstreamId(args.experimentId, 'experimentId', 'Experiment'), { lateMs: ctx.live.lateMs, pageLimit: 1000 }),
        ),
      resolve: (activity: Activity) => activity,
    }),
  }),
});
