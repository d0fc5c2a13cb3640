import { GraphQLError } from 'graphql';
import { builder } from './builder.ts';
import { listingConnections, type ParentScope } from './data.ts';
import { badInput, requireId, requireKey } from './errors.ts';
import { experimentLink, roomLink } from './links.ts';
import { branded, Participant } from './refs.ts';
import { date, roomOf, str, type Rec } from '../upstream/values.ts';

const BACK_LINK =
  'Always exists upstream, but is loaded (one more request at most, shared in the operation): null only when loading it failed, with the ' +
  'error saying why — as a non-null field, one failed load would null the whole participant.';

/** A participant is only addressable within its room, so its node id carries both. */
const localId = (p: Rec): string => JSON.stringify([roomOf(p) ?? '', str(p.id) ?? '']);

/** The room and upstream id a Participant node id carries. */
export function parseLocalId(id: string): { roomId: string; id: string } {
  try {
    const parsed: unknown = JSON.parse(id);
    if (Array.isArray(parsed) && parsed.length === 2 && typeof parsed[0] === 'string' && typeof parsed[1] === 'string') {
      return { roomId: requireId(parsed[0], 'id'), id: requireId(parsed[1], 'id') };
    }
  } catch (error) {
    if (error instanceof GraphQLError) throw error;
  }
  throw badInput('Not a Participant node id', 'id', { value: id });
}

const scopeOf = (p: Rec): ParentScope => ({
  scope: { kind: 'participant', id: str(p.id) ?? '', roomId: roomOf(p) ?? '' },
  experimentId: str(p.experimentId),
});

builder.node(Participant, {
  description: 'A participant of a room.',
  id: { resolve: localId },
  loadOne: (id, ctx) => branded(Participant, ctx.loaders.participant.load(parseLocalId(id))),
  fields: (t) => ({
    participantId: t.string({
      nullable: false,
      description: 'The upstream participant id (always sent by the upstream; non-null).',
      resolve: (p) => str(p.id) ?? '',
    }),
    email: t.string({ nullable: true, resolve: (p) => str(p.email) }),
    name: t.string({ nullable: true, resolve: (p) => str(p.name) }),
    role: t.string({ nullable: true, resolve: (p) => str(p.role) }),
    status: t.string({ nullable: true, resolve: (p) => str(p.status) }),
    completionCode: t.string({
      nullable: true,
      description: 'SUCCESS, TIMEOUT, TECHNICAL, NOCONSENT, ABANDONED, IN_PROGRESS, COMPLETED_NO_CODE, …',
      resolve: (p) => str(p.completionCode),
    }),
    joinedAt: t.field({ type: 'DateTime', nullable: true, resolve: (p) => date(p.joinedAt) }),
    completedAt: t.field({ type: 'DateTime', nullable: true, resolve: (p) => date(p.completedAt) }),
    roomId: t.string({
      nullable: false,
      description: 'The room the participant joined (always sent by the upstream, as roomId or the older sessionId; non-null).',
      resolve: (p) => roomOf(p) ?? '',
    }),
    experimentId: t.string({
      nullable: false,
      description: 'The experiment (always sent by the upstream; non-null).',
      resolve: (p) => str(p.experimentId) ?? '',
    }),
    deploymentId: t.string({ nullable: true, resolve: (p) => str(p.deploymentId) }),
    raw: t.field({ type: 'JSON', nullable: false, description: 'The participant exactly as the upstream sent it.', resolve: (p) => p }),
    room: roomLink(t, roomOf, BACK_LINK),
    experiment: experimentLink(t, (p) => str(p.experimentId), BACK_LINK),
    ...listingConnections(t, 'participant', scopeOf),
  }),
});

// A Federation entity: a participant is addressed within its room. Representations of one operation
// share the participant loader, so they cost one participants listing per room, like siblings.
builder.asEntity(Participant, {
  key: builder.selection<{ participantId: string; roomId: string }>('participantId roomId'),
  resolveReference: async (ref, ctx) =>
    ctx.loaders.participant.load({ roomId: requireKey(ref.roomId, 'roomId'), id: requireKey(ref.participantId, 'participantId') }),
});
