import type { ArgBuilder, ObjectRef } from '@pothos/core';
import type { GraphQLResolveInfo } from 'graphql';
import { NO_META } from '../loaders/fetch.ts';
import { CANONICAL_OUTPUT } from '../plugins/use-jit.ts';
import { LISTINGS } from '../spec/data-types.ts';
import { listingParams, type ListingArgs } from '../spec/params.ts';
import { filtersOf, type Filter, type ListingSpec, type Scope, type ScopeKind } from '../spec/spec.ts';
import { builder, type FieldBuilder, type GatewayContext, type Types } from './builder.ts';
import { resolveDataConnection, type ConnectionResult, type Edge } from './connection.ts';
import { RECORD_TYPES, type RecordView } from './records.ts';
import { Participant, Room } from './refs.ts';
import { SortOrder } from './scalars.ts';
import type { Rec } from '../upstream/values.ts';

const upper = (name: string): string => name.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();

/** Enums named by filters (CompletionCode, …), built once each per schema builder. */
const enums = new WeakMap<PothosSchemaTypes.SchemaBuilder<Types>, Map<string, ReturnType<typeof builder.enumType>>>();
function enumOf(on: PothosSchemaTypes.SchemaBuilder<Types>, name: string, values: readonly string[]) {
  let known = enums.get(on);
  if (!known) enums.set(on, (known = new Map()));
  let ref = known.get(name);
  if (!ref) {
    ref = on.enumType(name, { values: Object.fromEntries(values.map((v) => [v, { value: v }])) });
    known.set(name, ref);
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

const asRecord = (r: Rec): Rec => r;

/** What a streamed row list answers in a table's context pass (its records arrive as rows instead). */
const EMPTY_CONNECTION: ConnectionResult<never> = {
  edges: [],
  totalCount: 0,
  meta: NO_META,
  pageInfo: { hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null },
};

/** The node type of a listing's records, and what its nodes are made of them. */
function nodeOf(spec: ListingSpec): { ref: ObjectRef<Types, Rec | RecordView>; view: (r: Rec) => Rec | RecordView } {
  if (spec.node === 'Room') return { ref: Room, view: asRecord };
  if (spec.node === 'Participant') return { ref: Participant, view: asRecord };
  const type = RECORD_TYPES.get(spec.node.name);
  if (!type) throw new Error(`no record type ${spec.node.name}`);
  return { ref: type.ref as ObjectRef<Types, Rec | RecordView>, view: type.view };
}

/**
 * One connection type per node type, shared by every field that lists it. Its edges are the
 * connection's own objects (`Edge`), read as properties: the executor calls no resolver per edge.
 */
const connections = new Map<string, unknown>();

function makeConnection<N>(node: ObjectRef<Types, N>, name: string) {
  const edge = builder.objectRef<Edge<object>>(`${name}Edge`).implement({
    fields: (t) => ({
      node: t.expose('node', { type: node as ObjectRef<Types, object>, nullable: false }),
      // Encoded as a string by its getter (connection.ts): canonical.
      cursor: t.exposeString('cursor', { nullable: false, extensions: CANONICAL_OUTPUT }),
    }),
  });
  return builder.connectionObject(
    { type: node, name: `${name}Connection` },
    edge as unknown as ObjectRef<Types, { cursor: string; node: N }>,
  );
}

export function connectionOf<N>(node: ObjectRef<Types, N>, name: string): ReturnType<typeof makeConnection<N>> {
  const known = connections.get(name);
  if (known) return known as ReturnType<typeof makeConnection<N>>;
  const ref = makeConnection(node, name);
  connections.set(name, ref);
  return ref;
}

/** What building arguments needs of a field builder (a type's, the subscription type's). */
interface ArgsBuilder {
  arg: ArgBuilder<Types>;
  builder: PothosSchemaTypes.SchemaBuilder<Types>;
}

function filterArg(t: ArgsBuilder, filter: Filter) {
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
      return t.arg({ type: enumOf(t.builder, input.name, input.values), description });
    case 'EventCategory':
      return t.arg({ type: 'EventCategory', description });
  }
}

/**
 * The arguments of filters, by GraphQL argument name: a listing connection's and a subscription's
 * (its listing's filters but the time window) are built here alike.
 */
export const filterArgs = (t: ArgsBuilder, filters: readonly Filter[]) => Object.fromEntries(filters.map((f) => [f.arg, filterArg(t, f)]));

/** A listing's arguments: its filters (common ones first), sort and order. */
function listingArgs<P>(t: FieldBuilder<P>, spec: ListingSpec) {
  const sort = SORT_ENUMS.get(spec.field);
  if (!sort) throw new Error(`no sort enum for ${spec.field}`);
  return {
    ...filterArgs(t, filtersOf(spec)),
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
  const { ref: node, view } = nodeOf(spec);
  return t.connection(
    {
      type: node,
      description: spec.description,
      args: listingArgs(t, spec),
      resolve: (parent: P, args: object, ctx: GatewayContext, info: GraphQLResolveInfo) => {
        const { scope, experimentId } = scopeOf(parent);
        const req = {
          type: spec.path,
          params: listingParams(spec, args as ListingArgs, (w) => ctx.warnings.add(w)),
          scope,
          experimentId,
          pageLimit: spec.pageLimit,
        };
        // A table's row list: its records are streamed as rows (src/tables/rows.ts), not resolved here.
        if (ctx.table?.defer(info, req, args, view)) return EMPTY_CONNECTION;
        // A table's row list made in the answer: its raw records are kept beside its rows, which are ordered by them.
        const keep = ctx.table?.listing(info, req);
        const viewed = keep ? (record: Rec) => (keep(record), view(record)) : view;
        return resolveDataConnection(ctx, req, args, viewed, info);
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
