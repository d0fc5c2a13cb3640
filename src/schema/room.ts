import { entityLookahead } from '../loaders/planner.ts';
import { builder } from './builder.ts';
import { listingConnections, type ParentScope } from './data.ts';
import { requireId, requireKey } from './errors.ts';
import { experimentLink } from './links.ts';
import { branded, Room } from './refs.ts';
import { date, int, str, type Rec } from '../upstream/values.ts';

const roomScope = (r: Rec): ParentScope => ({ scope: { kind: 'room', id: str(r.id) ?? '' }, experimentId: str(r.experimentId) });

builder.node(Room, {
  description: 'A room: one session of an experiment.',
  id: { resolve: (r) => str(r.id) ?? '' },
  loadOne: (id, ctx) => branded(Room, ctx.loaders.room.load(requireId(id, 'id'))),
  fields: (t) => ({
    roomId: t.string({
      nullable: false,
      description: 'The upstream room id (always sent by the upstream; non-null).',
      resolve: (r) => str(r.id) ?? '',
    }),
    experimentId: t.string({ nullable: true, resolve: (r) => str(r.experimentId) }),
    deploymentId: t.string({ nullable: true, resolve: (r) => str(r.deploymentId) }),
    deploymentName: t.string({ nullable: true, resolve: (r) => str(r.deploymentName) }),
    status: t.string({ nullable: true, resolve: (r) => str(r.status) }),
    participantCount: t.int({ nullable: true, resolve: (r) => int(r.participantCount) }),
    createdAt: t.field({ type: 'DateTime', nullable: true, resolve: (r) => date(r.createdAt) }),
    startedAt: t.field({ type: 'DateTime', nullable: true, resolve: (r) => date(r.startedAt) }),
    endedAt: t.field({ type: 'DateTime', nullable: true, resolve: (r) => date(r.endedAt) }),
    raw: t.field({ type: 'JSON', nullable: false, description: 'The room exactly as the upstream sent it.', resolve: (r) => r }),
    experiment: experimentLink(
      t,
      (r) => str(r.experimentId),
      'Loaded through the experiment loader: null when loading it failed (the error says why) or the room names none.',
    ),
    ...listingConnections(t, 'room', roomScope),
  }),
});

// A Federation entity keyed by the upstream room id, read as `room(id:)` reads it (one request per room,
// and the lookahead of the selection below).
builder.asEntity(Room, {
  key: builder.selection<{ roomId: string }>('roomId'),
  resolveReference: (ref, ctx, info) => {
    const id = requireKey(ref.roomId, 'roomId');
    const room = ctx.loaders.room.now(id);
    entityLookahead(ctx.loaders.planner, info, { kind: 'room', id }, ctx.defaultPageSize);
    return room;
  },
});
