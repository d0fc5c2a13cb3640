/**
 * Listings as the planner (src/loaders/planner.ts) keys, groups and splits them: a listing is a data type
 * with filters at a scope (`ListingKey`); a connection's need is one (`DataRequest`); requests of one data
 * type, filters and experiment form a group, which the planner may read at one wider scope (`liftTarget`,
 * `liftable`) and split by room or participant (`Split`).
 */
import type { Params, Scope } from '../spec/spec.ts';
import { roomOf, type Rec } from '../upstream/values.ts';
import { dataSource, type ListingSource, type Page } from './fetch.ts';

/** A listing: a data type (its upstream path) with filters, at a scope. */
export interface ListingKey {
  type: string;
  /** Upstream filter parameters (never limit or offset). */
  params: Params;
  scope: Scope;
}

/** One connection's need: a listing, and the experiment its scope lies in (from the parent record). */
export interface DataRequest extends ListingKey {
  experimentId: string | null;
  /** The upstream's largest page for this type. */
  pageLimit: number;
}

/** A planning decision, for `explain()`. */
export interface PlanDecision {
  listing: ListingKey;
  decision: 'lifted' | 'per-parent';
  parents: number;
  total: number;
}

/** The canonical text of a listing's data (type and filters), the part of its key that widening the scope keeps. */
export function dataText(type: string, params: Params): string {
  let given: string[] | null = null;
  for (const k in params) if (params[k] !== undefined) (given ??= []).push(k);
  if (given === null) return `${type}\u0000`;
  let filters = '';
  for (const k of given.length > 1 ? given.sort() : given) filters += `&${k}=${params[k]}`;
  return `${type}\u0000${filters}`;
}

/**
 * The group of a request among a turn's or a table's: listings of one data type, filters and
 * experiment, read at one wider scope when that is cheaper (and a table's merged in their order).
 */
export const groupOf = (req: DataRequest): string => `${dataText(req.type, req.params)}\u0000${req.experimentId ?? ''}`;

export const scopeText = (scope: Scope): string =>
  `${scope.kind}\u0000${scope.id}\u0000${scope.kind === 'participant' ? scope.roomId : ''}`;

interface Entry<V> {
  key: ListingKey;
  value: V;
}

const sameScope = (a: Scope, b: Scope): boolean =>
  a.kind === b.kind && a.id === b.id && (a.kind !== 'participant' || b.kind !== 'participant' || a.roomId === b.roomId);

/**
 * A map keyed by listings: by data text, then by scope id (the few scopes of one id told apart by kind
 * and room). A lookup builds no key text: with one text of data and scope per lookup, a dashboard built
 * ~1,000 such strings (0.4 MB) and hashed each once (docs/measured.md, seventh round).
 */
export class ListingMap<V> {
  readonly #byData = new Map<string, Map<string, Entry<V>[]>>();
  /** Every entry, in the order it was first set. */
  readonly #entries: Entry<V>[] = [];

  get(key: ListingKey): V | undefined {
    return this.at(dataText(key.type, key.params), key.scope);
  }

  /** The value of a key given by its data text (`dataText`) and scope. */
  at(data: string, scope: Scope): V | undefined {
    const same = this.#byData.get(data)?.get(scope.id);
    if (same) for (const entry of same) if (sameScope(entry.key.scope, scope)) return entry.value;
    return undefined;
  }

  set(key: ListingKey, value: V): V {
    const data = dataText(key.type, key.params);
    let byId = this.#byData.get(data);
    if (!byId) this.#byData.set(data, (byId = new Map()));
    let same = byId.get(key.scope.id);
    if (!same) byId.set(key.scope.id, (same = []));
    const known = same.find((entry) => sameScope(entry.key.scope, key.scope));
    if (known) Object.assign(known, { key, value });
    else {
      const entry = { key, value };
      same.push(entry);
      this.#entries.push(entry);
    }
    return value;
  }

  entries(): IterableIterator<{ key: ListingKey; value: V }> {
    return this.#entries.values();
  }
}

export const hasFilters = (params: Params): boolean => Object.values(params).some((v) => v !== undefined);

/**
 * A wider listing's records grouped by room or by participant, each grouping made once, when a slice
 * first needs it, so that each slice is a lookup.
 */
export class Split {
  #rooms: Map<string, Rec[]> | null = null;
  #participants: Map<string, Map<string, Rec[]>> | null = null;

  constructor(private readonly records: readonly Rec[]) {}

  slice(scope: Scope): Rec[] {
    if (scope.kind === 'room') return (this.#rooms ??= byRoom(this.records)).get(scope.id) ?? [];
    if (scope.kind === 'participant') return (this.#participants ??= byParticipant(this.records)).get(scope.roomId)?.get(scope.id) ?? [];
    return [];
  }
}

function byRoom(records: readonly Rec[]): Map<string, Rec[]> {
  const rooms = new Map<string, Rec[]>();
  // A listing's records come in runs of one room (the upstream orders them in time): a lookup per run.
  let room: string | null = null;
  let list: Rec[] = [];
  for (const r of records) {
    const id = roomOf(r) ?? '';
    if (id !== room) {
      room = id;
      const known = rooms.get(id);
      if (known) list = known;
      else rooms.set(id, (list = []));
    }
    list.push(r);
  }
  return rooms;
}

function byParticipant(records: readonly Rec[]): Map<string, Map<string, Rec[]>> {
  const rooms = new Map<string, Map<string, Rec[]>>();
  let room: string | null = null;
  let people = new Map<string, Rec[]>();
  for (const r of records) {
    const id = roomOf(r) ?? '';
    if (id !== room) {
      room = id;
      const known = rooms.get(id);
      if (known) people = known;
      else rooms.set(id, (people = new Map()));
    }
    const participant = typeof r.participantId === 'string' ? r.participantId : String(r.participantId);
    const list = people.get(participant);
    if (list) list.push(r);
    else people.set(participant, [r]);
  }
  return rooms;
}

/** The scopes whose listings contain a scope's records, narrowest first. */
export function widerScopes(req: DataRequest): Scope[] {
  const out: Scope[] = [];
  if (req.scope.kind === 'participant') out.push({ kind: 'room', id: req.scope.roomId });
  if (req.scope.kind !== 'experiment' && req.experimentId !== null) out.push({ kind: 'experiment', id: req.experimentId });
  return out;
}

/** The one listing that holds a group's records (same data, one experiment): a room's or the experiment's; null when the parents' own are it. */
export function liftTarget(group: readonly DataRequest[]): Scope | null {
  const first = group[0];
  if (!first) return null;
  const rooms = new Set(group.map((r) => (r.scope.kind === 'participant' ? r.scope.roomId : r.scope.id)));
  if (first.experimentId !== null && rooms.size > 1) return { kind: 'experiment', id: first.experimentId };
  if (group.length > 1 && first.scope.kind === 'participant') return { kind: 'room', id: first.scope.roomId };
  return null;
}

/** The cheaper plan: the wider listing, when its pages are no more requests than one per parent. */
export const liftable = (probe: Page, pageLimit: number, parents: number): boolean =>
  Math.max(1, Math.ceil(probe.total / pageLimit)) <= parents;

/** A record's participant, as the split reads it. */
export const participantOf = (r: Rec): string => (typeof r.participantId === 'string' ? r.participantId : String(r.participantId));

/** The distinct places (a room, or a participant in a room) of a lifted listing's owners. */
export const placesOf = (owners: ReadonlyMap<string, ReadonlyMap<string, number[]>>): number => {
  let places = 0;
  for (const inRoom of owners.values()) places += inRoom.size;
  return Math.max(1, places);
};

export const ownSource = (req: DataRequest): ListingSource => dataSource(req.type, req.scope, req.params, req.pageLimit);
