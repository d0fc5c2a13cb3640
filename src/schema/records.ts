import type { ObjectRef } from '@pothos/core';
import { LISTINGS } from '../spec/data-types.ts';
import type { FieldKind, RecordField, RecordTypeSpec } from '../spec/spec.ts';
import { CANONICAL_OUTPUT } from '../plugins/use-jit.ts';
import { builder, type FieldBuilder, type Types } from './builder.ts';
import { experimentLink, roomLink } from './links.ts';
import { Participant } from './refs.ts';
import { bool, date, float, int, json, linkable, roomOf, str, strList, type Rec } from '../upstream/values.ts';

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

/**
 * A listing's record as the graph reads it: the upstream record (`raw`), and on its prototype a getter
 * per field that reads it leniently. Its plain fields need no resolver: the executor reads them as
 * properties (graphql-jit inlines them), and only the fields a query selects are read.
 */
export interface RecordView {
  readonly raw: Rec;
}

const READERS: Record<FieldKind, (value: unknown) => unknown> = {
  String: str,
  Int: int,
  Float: float,
  Boolean: bool,
  DateTime: date,
  JSON: json,
  StringList: strList,
};

/** What every participant-level record carries, read from the record like its own fields. */
const OWNERSHIP_FIELDS: readonly RecordField[] = [
  ['experimentId', 'String', 'The experiment the record belongs to.'],
  ['participantId', 'String', 'The participant the record belongs to.'],
];

/**
 * A getter compiled for one field of one view class: it reads its property by name and calls its reader
 * directly. A getter made by one closure for every field would share one property load and one call
 * site among all fields and types, which the engine then cannot specialize: per compiled getter, a warm
 * dashboard's record views cost ~1.5 ms less (docs/measured.md, seventh round). The names are quoted
 * as JSON strings; the readers are passed in, not written into the source.
 */
function compiledGetter(body: string, readers: Record<string, unknown>): (this: RecordView) => unknown {
  const names = Object.keys(readers);
  const make = new Function(...names, `return function get() { const r = this.raw; return ${body}; };`) as (
    ...readers: unknown[]
  ) => (this: RecordView) => unknown;
  return make(...Object.values(readers));
}

const quoted = (name: string): string => JSON.stringify(name);

/** The view class of a record type: one getter per field, on its prototype. */
function viewClass(spec: RecordTypeSpec): new (raw: Rec) => RecordView {
  const View = class implements RecordView {
    constructor(readonly raw: Rec) {}
  };
  const getters: PropertyDescriptorMap = { roomId: { get: compiledGetter('roomOf(r)', { roomOf }) } };
  for (const [name, kind] of [...spec.fields, ...OWNERSHIP_FIELDS]) {
    if (name === 'raw' || name in getters) throw new Error(`${spec.name}.${name}: a record field may not be named so`);
    getters[name] = { get: compiledGetter(`read(r[${quoted(name)}])`, { read: READERS[kind] }) };
  }
  Object.defineProperties(View.prototype, getters);
  return View;
}

/**
 * A field read by its view's getter: no resolver. The readers of strings, floats, booleans and string
 * lists give what GraphQL's scalars serialize them to (CANONICAL_OUTPUT); `int` does not bound its
 * integers to 32 bits, which GraphQL's Int does.
 */
function viewField(t: FieldBuilder<RecordView>, [name, kind, description]: RecordField) {
  // The getters are declared at run time from the spec: to the type checker, a view is a map of field values.
  const over = <V>() => t as unknown as FieldBuilder<Record<string, V>>;
  const extensions = CANONICAL_OUTPUT;
  switch (kind) {
    case 'String':
      return over<string | null>().exposeString(name, { nullable: true, description, extensions });
    case 'Int':
      return over<number | null>().exposeInt(name, { nullable: true, description });
    case 'Float':
      return over<number | null>().exposeFloat(name, { nullable: true, description, extensions });
    case 'Boolean':
      return over<boolean | null>().exposeBoolean(name, { nullable: true, description, extensions });
    case 'DateTime':
      return over<Date | null>().expose(name, { type: 'DateTime', nullable: true, description });
    case 'JSON':
      return over<unknown>().expose(name, { type: 'JSON', nullable: true, description });
    case 'StringList':
      return over<string[] | null>().exposeStringList(name, { nullable: true, description, extensions });
  }
}

/** Fields every participant-level record shares, back-links included. */
function ownership(t: FieldBuilder<RecordView>) {
  return {
    ...Object.fromEntries(OWNERSHIP_FIELDS.map((f) => [f[0], viewField(t, f)])),
    roomId: viewField(t, ['roomId', 'String', 'The room (session) of the record; older records call it sessionId.']),
    experiment: experimentLink(t, (v) => str(v.raw.experimentId), 'The experiment, through a loader.'),
    room: roomLink(t, (v) => roomOf(v.raw), 'The room, through a loader.'),
    participant: t.field({
      type: Participant,
      nullable: true,
      description: 'The participant, through a loader (one participants listing per room).',
      resolve: ({ raw }, _args, ctx) => {
        const roomId = linkable(roomOf(raw));
        const id = linkable(str(raw.participantId));
        return roomId === null || id === null ? null : ctx.loaders.participant.load({ roomId, id });
      },
    }),
  };
}

/** Fields some record types have beyond their plain upstream fields (resolved through the upstream). */
const EXTRA_FIELDS: Record<string, (t: FieldBuilder<RecordView>) => Record<string, ReturnType<FieldBuilder<RecordView>['field']>>> = {
  Recording: (t) => ({
    downloadUrl: t.string({
      nullable: true,
      description:
        'A short-lived signed URL to download the file (fetched without the API key). Older rows carry it; for the others it is ' +
        'asked of the upstream download route, once per recording and operation.',
      resolve: ({ raw }, _args, ctx) => {
        const carried = str(raw.downloadUrl);
        if (carried !== null) return carried;
        const roomId = linkable(roomOf(raw));
        const recordingId = linkable(str(raw.recordingId));
        return roomId === null || recordingId === null ? null : ctx.loaders.downloadUrl.load({ roomId, recordingId });
      },
    }),
  }),
};

/** A record type, and how its listing's records become its views. */
export interface RecordType {
  ref: ObjectRef<Types, RecordView>;
  view: (raw: Rec) => RecordView;
}

function recordType(spec: RecordTypeSpec): RecordType {
  const View = viewClass(spec);
  const ref = builder.objectRef<RecordView>(spec.name).implement({
    description: spec.description,
    fields: (t) => ({
      ...Object.fromEntries(spec.fields.map((f) => [f[0], viewField(t, f)])),
      ...ownership(t),
      ...EXTRA_FIELDS[spec.name]?.(t),
      raw: t.expose('raw', {
        type: 'JSON',
        nullable: false,
        description: 'The record exactly as the upstream sent it, unknown fields included.',
      }),
    }),
  });
  return { ref, view: (raw) => new View(raw) };
}

/** The record type of every listing whose records are not one of the node types, by type name. */
export const RECORD_TYPES: ReadonlyMap<string, RecordType> = new Map(
  LISTINGS.flatMap((spec) => (typeof spec.node === 'string' ? [] : [[spec.node.name, recordType(spec.node)] as const])),
);
