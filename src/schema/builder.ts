import SchemaBuilder from '@pothos/core';
import DirectivesPlugin from '@pothos/plugin-directives';
import FederationPlugin from '@pothos/plugin-federation';
import RelayPlugin from '@pothos/plugin-relay';
import type { FieldNode, GraphQLResolveInfo } from 'graphql';
import { CANONICAL_OUTPUT } from '../plugins/use-jit.ts';
import type { ExportJobs } from '../exports/types.ts';
import type { LiveHub } from '../live/hub.ts';
import type { LiveStatus } from '../live/poller.ts';
import type { Loaders } from '../loaders/index.ts';
import type { DataRequest } from '../loaders/listings.ts';
import type { Rec } from '../upstream/values.ts';
import { badInput } from './errors.ts';
import type { UpstreamSession } from '../upstream/session.ts';

/** What every resolver sees: the caller's session with the upstream and this operation's loaders. */
export interface GatewayContext {
  /** Whether the caller sent an API key (the key itself stays inside the session). */
  authenticated: boolean;
  /** Whether the caller sent an X-Organization-Id that is not a plain id (the operation is refused). */
  organizationRefused: boolean;
  session: UpstreamSession;
  loaders: Loaders;
  defaultPageSize: number;
  /** The live pollers of subscriptions, and this subscription's status once it has a poller. */
  live: {
    hub: LiveHub;
    lateMs: number;
    status: (() => LiveStatus) | null;
    /** The caller's request: when it goes away, so do its subscriptions. */
    signal: AbortSignal;
    /** A new session and loaders like this operation's: each subscription payload is resolved with its own. */
    renew(): { session: UpstreamSession; loaders: Loaders };
  };
  /** Whether the caller asked for the planner's decisions (`X-Explain-Plan: 1`, shown in `extensions.plan`). */
  explain: boolean;
  /** Warnings the upstream attached to listings this operation read (`metadata._warnings`), once each. */
  warnings: Set<string>;
  /** Export jobs (src/exports): started, followed and controlled by the caller's key. */
  exports: ExportJobs;
  /** Set while the operation is answered as a table (src/tables): what its connections do differently. */
  table?: TableHooks;
}

/** How a table's execution changes the connections on its row path (see src/tables/rows.ts). */
export interface TableHooks {
  /** Whether this connection field reads every record when it is given neither `first` nor `last`. */
  all(node: FieldNode): boolean;
  /**
   * Whether this listing's records are streamed as the table's rows rather than resolved here: then
   * the parent's request is recorded (by the field's response path) and the connection answers empty.
   */
  defer(info: GraphQLResolveInfo, req: DataRequest, args: object, view: (record: Rec) => unknown): boolean;
  /**
   * For a row list made in the answer (not deferred): what keeps each record the connection answers, in
   * its edges' order, so that the table's rows can be ordered by them; null for any other listing.
   */
  listing(info: GraphQLResolveInfo, req: DataRequest): ((record: Rec) => void) | null;
  /** Counts the records a connection reading every record gave the answer; throws past the table's bound. */
  records(count: number): void;
}

export interface SchemaTypes {
  Context: GatewayContext;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
    EventCategory: { Input: string; Output: string };
    ExperimentRoles: { Input: Record<string, unknown>; Output: unknown };
    ComponentVisibility: { Input: Record<string, unknown>; Output: unknown };
    RoleOverrides: { Input: Record<string, unknown>; Output: unknown };
  };
  // A connection's edges are records in hand: they cannot fail, so they are non-null (the connection field itself may fail).
  DefaultEdgesNullability: { list: false; items: false };
  DefaultNodeNullability: false;
}

/** The types whose ids are Relay node ids (each has its own file). */
export const NODE_TYPES: ReadonlySet<string> = new Set(['Experiment', 'Room', 'Participant', 'Deployment', 'Persona']);

export const builder = new SchemaBuilder<SchemaTypes>({
  // Federation v2 (entities keyed by the upstream ids, see federation.ts); the directives plugin carries @key etc.
  plugins: [RelayPlugin, DirectivesPlugin, FederationPlugin],
  relay: {
    clientMutationId: 'omit',
    // Node loaders brand their records themselves, at once (see branded() in values.ts).
    brandLoadedObjects: false,
    cursorType: 'String',
    // Cursors and page info are made as strings and booleans (connection.ts): canonical, read as properties.
    cursorFieldOptions: { extensions: CANONICAL_OUTPUT },
    hasNextPageFieldOptions: { extensions: CANONICAL_OUTPUT },
    hasPreviousPageFieldOptions: { extensions: CANONICAL_OUTPUT },
    startCursorFieldOptions: { extensions: CANONICAL_OUTPUT },
    endCursorFieldOptions: { extensions: CANONICAL_OUTPUT },
    edgesFieldOptions: { nullable: { list: false, items: false } },
    nodeFieldOptions: { nullable: false },
    // node(id:) and nodes(ids:) look ahead below an Experiment or a Room as experiment(id:) and room(id:) do.
    nodeQueryOptions: {
      resolve: (_root, args, ctx, info, resolveNode) => {
        ctx.loaders.planner.lookaheadNodes(info, [args.id], ctx.defaultPageSize);
        return resolveNode(args.id);
      },
    },
    nodesQueryOptions: {
      resolve: (_root, args, ctx, info, resolveNodes) => {
        ctx.loaders.planner.lookaheadNodes(info, args.ids, ctx.defaultPageSize);
        return resolveNodes(args.ids);
      },
    },
    // Node ids are base64 of `Type:id`; anything else is the caller's mistake, said as such.
    decodeGlobalID: (globalID: string) => {
      const text = Buffer.from(globalID, 'base64').toString('utf8');
      const colon = text.indexOf(':');
      if (colon <= 0 || !NODE_TYPES.has(text.slice(0, colon))) throw badInput('Not a node id this API gave out', 'id', { value: globalID });
      return { typename: text.slice(0, colon), id: text.slice(colon + 1) };
    },
  },
});

export type Types = PothosSchemaTypes.ExtendDefaultTypes<SchemaTypes>;
export type FieldBuilder<Parent> = PothosSchemaTypes.ObjectFieldBuilder<Types, Parent>;

export type SubscriptionFieldBuilder = PothosSchemaTypes.SubscriptionFieldBuilder<Types, object>;
