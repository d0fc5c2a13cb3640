/**
 * The shape of the upstream API description: what a data type is, where it can be read, which
 * filters it takes and what its records hold. The entries live in `data-types.ts`; the schema's
 * connections and record types, argument checks, upstream query strings, sort enums, the required
 * scopes and the budget estimate are all derived from them, so a new type or filter is one edit there.
 */

/** Where data is read: a whole experiment, one room, or one participant of a room. */
export type ScopeKind = 'experiment' | 'room' | 'participant';

export type Scope = { kind: 'experiment'; id: string } | { kind: 'room'; id: string } | { kind: 'participant'; id: string; roomId: string };

/** Upstream query parameters (never limit or offset); undefined means "not sent". */
export type Params = Readonly<Record<string, string | undefined>>;

/** How a record field reads in GraphQL. */
export type FieldKind = 'String' | 'Int' | 'Float' | 'Boolean' | 'DateTime' | 'JSON' | 'StringList';

/** A record field: its upstream name, its GraphQL kind, and what it means. */
export type RecordField = readonly [name: string, kind: FieldKind, description: string];

/** A record type of the graph: its name, description and fields (ownership and back-links are added). */
export interface RecordTypeSpec {
  name: string;
  description: string;
  fields: readonly RecordField[];
}

/** The GraphQL input of a filter and how its value becomes an upstream parameter. */
export type FilterInput =
  | { kind: 'DateTime' }
  | { kind: 'String' }
  | { kind: 'Boolean' }
  | { kind: 'Int'; min: number; max: number; unit: string }
  /** A closed set the upstream documents (the schema builds the enum). */
  | { kind: 'Enum'; name: string; values: readonly string[] }
  /** An open set: known values by name, any other non-blank value passed as is (the EventCategory scalar). */
  | { kind: 'EventCategory' };

export interface Filter {
  /** The GraphQL argument. */
  arg: string;
  /** The upstream query parameter it is sent as. */
  param: string;
  input: FilterInput;
  description: string;
  /**
   * A GraphQL literal for the argument and the upstream value it must arrive as: a test sends every
   * filter of every type and checks the upstream received it.
   */
  example: readonly [graphql: string, upstream: string];
}

/** A listing the upstream serves under `/data/{path}/{scope}/{id}`, offered as a connection. */
export interface ListingSpec {
  /** The connection field on Experiment, Room and Participant. */
  field: string;
  /** The upstream data type path (`events`, `ratings/sparse`, …). */
  path: string;
  description: string;
  /**
   * The scopes the upstream serves it at; the graph offers the connection at the same levels, except
   * on the node type itself (a room's rooms).
   */
  scopes: readonly ScopeKind[];
  /** The key scope it needs, when the upstream documents it (the scope mirror relies on it). */
  requiredScope: string | null;
  /** The record type, or one of the node types defined in their own files. */
  node: RecordTypeSpec | 'Room' | 'Participant';
  /** Filters beyond the common ones (startTime, endTime, deploymentId). */
  filters: readonly Filter[];
  /** The sort enum's name and its fields besides `timestamp` (the record's own instant). */
  sort: { enum: string; fields: readonly string[] };
  /**
   * The record field holding its own instant: what the upstream's default and `timestamp` sorts order
   * by, and what orders records equal in any other sort.
   */
  instant: string;
  /** The largest page the upstream serves. */
  pageLimit: number;
}

/** The filters every data listing takes. */
export const COMMON_FILTERS: readonly Filter[] = [
  {
    arg: 'startTime',
    param: 'startTime',
    input: { kind: 'DateTime' },
    description: 'Only records at or after this instant.',
    example: ['"2024-10-01T09:00:00Z"', '2024-10-01T09:00:00.000Z'],
  },
  {
    arg: 'endTime',
    param: 'endTime',
    input: { kind: 'DateTime' },
    description: 'Only records at or before this instant.',
    example: ['"2030-01-01T00:00:00Z"', '2030-01-01T00:00:00.000Z'],
  },
  {
    arg: 'deploymentId',
    param: 'deploymentId',
    input: { kind: 'String' },
    description: 'Only records of this deployment.',
    example: ['"dep_movie01_a"', 'dep_movie01_a'],
  },
];

/** Every filter a listing takes, common ones first. */
export const filtersOf = (spec: ListingSpec): readonly Filter[] => [...COMMON_FILTERS, ...spec.filters];

/** The known event categories (documented or shown by the SDK); the set is open upstream. */
export const EVENT_CATEGORIES = [
  'component',
  'state',
  'media',
  'pre_experiment',
  'post_experiment',
  'questionnaire',
  'system',
  'communication',
  'sync',
  'scanner',
  'sparse_rating',
] as const;
