import type { ObjectRef } from '@pothos/core';
import { LISTINGS } from '../spec/data-types.ts';
import { listingParams, type ListingArgs } from '../spec/params.ts';
import { filtersOf, type Filter, type ListingSpec, type Scope, type ScopeKind } from '../spec/spec.ts';
import { builder, type FieldBuilder, type GatewayContext, type Types } from './builder.ts';
import { resolveDataConnection } from './connection.ts';
import { RECORD_TYPES } from './records.ts';
import { Participant, Room } from './refs.ts';
import { SortOrder } from './scalars.ts';
import type { Rec } from './values.ts';

const upper = (name: string): string => name.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();

/** Enums named by filters (CompletionCode, …), built once each. */
const enums = new Map<string, ReturnType<typeof builder.enumType>>();
function enumOf(name: string, values: readonly string[]) {
  let ref = enums.get(name);
  if (!ref) {
    ref = builder.enumType(name, { values: Object.fromEntries(values.map((v) => [v, { value: v }])) });
    enums.set(name, ref);
  }
  return ref;
}

/** Each listing's sort enum: `timestamp` (the record's own instant) and the fields the upstream sorts by. */
const SORT_ENUMS = new Map(
  LISTINGS.map((spec) => [
    spec.field,
    builder.enumType(spec.sort.enum, {
      description: `What to sort by (upstream \`sort\`); TIMESTAMP is the record's own instant.`,
      values: Object.fromEntries(['timestamp', ...spec.sort.fields].map((f) => [upper(f), { value: f }])),
    }),
  ]),
);

/** The node type of a listing's records. */
function nodeOf(spec: ListingSpec): ObjectRef<Types, Rec> {
  if (spec.node === 'Room') return Room;
  if (spec.node === 'Participant') return Participant;
  const ref = RECORD_TYPES.get(spec.node.name);
  if (!ref) throw new Error(`no record type ${spec.node.name}`);
  return ref;
}

/** One connection type per node type, shared by every field that lists it. */
const connections = new Map<string, ReturnType<typeof builder.connectionObject>>();
export function connectionOf(node: ObjectRef<Types, Rec>, name: string) {
  let ref = connections.get(name);
  if (!ref) {
    ref = builder.connectionObject({ type: node, name: `${name}Connection` }, { name: `${name}Edge` });
    connections.set(name, ref);
  }
  return ref;
}

function filterArg<P>(t: FieldBuilder<P>, filter: Filter) {
  const { input, description } = filter;
  switch (input.kind) {
    case 'DateTime':
      return t.arg({ type: 'DateTime', description });
    case 'String':
      return t.arg.string({ description });
    case 'Boolean':
      return t.arg.boolean({ description });
    case 'Int':
      return t.arg.int({ description });
    case 'Enum':
      return t.arg({ type: enumOf(input.name, input.values), description });
    case 'EventCategory':
      return t.arg({ type: 'EventCategory', description });
  }
}

/** A listing's arguments: its filters (common ones first), sort and order. */
function listingArgs<P>(t: FieldBuilder<P>, spec: ListingSpec) {
  const sort = SORT_ENUMS.get(spec.field);
  if (!sort) throw new Error(`no sort enum for ${spec.field}`);
  return {
    ...Object.fromEntries(filtersOf(spec).map((f) => [f.arg, filterArg(t, f)])),
    sort: t.arg({ type: sort, description: 'Sort field (default TIMESTAMP).' }),
    order: t.arg({ type: SortOrder, description: 'Sort order (default ASC).' }),
  };
}

/** Where a parent's lists are read, and the experiment it belongs to. */
export interface ParentScope {
  scope: Scope;
  experimentId: string | null;
}

/** The connection field of one listing on a parent whose scope is known. */
function listingConnection<P>(t: FieldBuilder<P>, spec: ListingSpec, scopeOf: (parent: P) => ParentScope) {
  const node = nodeOf(spec);
  return t.connection(
    {
      type: node,
      description: spec.description,
      args: listingArgs(t, spec),
      resolve: (parent: P, args: object, ctx: GatewayContext) => {
        const { scope, experimentId } = scopeOf(parent);
        const req = { type: spec.path, params: listingParams(spec, args as ListingArgs), scope, experimentId, pageLimit: spec.pageLimit };
        return resolveDataConnection(ctx, req, args);
      },
    },
    connectionOf(node, typeof spec.node === 'string' ? spec.node : spec.node.name),
  );
}

/** Every listing the upstream serves at a level, as connection fields of that level's type. */
export function listingConnections<P>(t: FieldBuilder<P>, level: ScopeKind, scopeOf: (parent: P) => ParentScope) {
  const own = { experiment: 'Experiment', room: 'Room', participant: 'Participant' }[level];
  return Object.fromEntries(
    LISTINGS.filter((spec) => spec.scopes.includes(level) && spec.node !== own).map((spec) => [
      spec.field,
      listingConnection(t, spec, scopeOf),
    ]),
  );
}
