import type { ObjectRef } from '@pothos/core';
import { LISTINGS } from '../spec/data-types.ts';
import type { RecordField, RecordTypeSpec } from '../spec/spec.ts';
import { builder, type FieldBuilder, type Types } from './builder.ts';
import { experimentLink, roomLink } from './links.ts';
import { Participant } from './refs.ts';
import { bool, date, float, int, json, linkable, roomOf, str, strList, type Rec } from './values.ts';

/** A record field read leniently from the upstream record: a missing or mistyped value is null. */
export function recordField(t: FieldBuilder<Rec>, [name, kind, description]: RecordField) {
  const at = (r: Rec): unknown => r[name];
  switch (kind) {
    case 'String':
      return t.string({ nullable: true, description, resolve: (r) => str(at(r)) });
    case 'Int':
      return t.int({ nullable: true, description, resolve: (r) => int(at(r)) });
    case 'Float':
      return t.float({ nullable: true, description, resolve: (r) => float(at(r)) });
    case 'Boolean':
      return t.boolean({ nullable: true, description, resolve: (r) => bool(at(r)) });
    case 'DateTime':
      return t.field({ type: 'DateTime', nullable: true, description, resolve: (r) => date(at(r)) });
    case 'JSON':
      return t.field({ type: 'JSON', nullable: true, description, resolve: (r) => json(at(r)) });
    case 'StringList':
      return t.stringList({ nullable: true, description, resolve: (r) => strList(at(r)) });
  }
}

/** Fields every participant-level record shares, back-links included. */
function ownership(t: FieldBuilder<Rec>) {
  return {
    experimentId: recordField(t, ['experimentId', 'String', 'The experiment the record belongs to.']),
    participantId: recordField(t, ['participantId', 'String', 'The participant the record belongs to.']),
    roomId: t.string({
      nullable: true,
      description: 'The room (session) of the record; older records call it sessionId.',
      resolve: roomOf,
    }),
    experiment: experimentLink(t, (r) => str(r.experimentId), 'The experiment, through a loader.'),
    room: roomLink(t, roomOf, 'The room, through a loader.'),
    participant: t.field({
      type: Participant,
      nullable: true,
      description: 'The participant, through a loader (one participants listing per room).',
      resolve: (r, _args, ctx) => {
        const roomId = linkable(roomOf(r));
        const id = linkable(str(r.participantId));
        return roomId === null || id === null ? null : ctx.loaders.participant.load({ roomId, id });
      },
    }),
  };
}

/** Fields some record types have beyond their plain upstream fields (resolved through the upstream). */
const EXTRA_FIELDS: Record<string, (t: FieldBuilder<Rec>) => Record<string, ReturnType<FieldBuilder<Rec>['field']>>> = {
  Recording: (t) => ({
    downloadUrl: t.string({
      nullable: true,
      description:
        'A short-lived signed URL to download the file (fetched without the API key). Older rows carry it; for the others it is ' +
        'asked of the upstream download route, once per recording and operation.',
      resolve: (r, _args, ctx) => {
        const carried = str(r.downloadUrl);
        if (carried !== null) return carried;
        const roomId = linkable(roomOf(r));
        const recordingId = linkable(str(r.recordingId));
        return roomId === null || recordingId === null ? null : ctx.loaders.downloadUrl.load({ roomId, recordingId });
      },
    }),
  }),
};

function recordType(spec: RecordTypeSpec): ObjectRef<Types, Rec> {
  return builder.objectRef<Rec>(spec.name).implement({
    description: spec.description,
    fields: (t) => ({
      ...Object.fromEntries(spec.fields.map((f) => [f[0], recordField(t, f)])),
      ...ownership(t),
      ...EXTRA_FIELDS[spec.name]?.(t),
      raw: t.field({
        type: 'JSON',
        nullable: false,
        description: 'The record exactly as the upstream sent it, unknown fields included.',
        resolve: (r) => r,
      }),
    }),
  });
}

/** The record type of every listing whose records are not one of the node types, by type name. */
export const RECORD_TYPES: ReadonlyMap<string, ObjectRef<Types, Rec>> = new Map(
  LISTINGS.flatMap((spec) => (typeof spec.node === 'string' ? [] : [[spec.node.name, recordType(spec.node)] as const])),
);
