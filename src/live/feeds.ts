/**
 * What the live pollers read. A listing feed asks only for what is new: the records from its cursor
 * (the newest instant seen) minus `lateMs`, in time order, page by page — never the whole listing
 * again. The overlap catches records that arrive late or share an instant with ones already delivered;
 * ids seen within the overlap are not delivered twice. A record more than `lateMs` late is missed
 * (LIVE_LATE_MS sets the window).
 */
import { recordsOf } from '../loaders/fetch.ts';
import type { Rec } from '../upstream/values.ts';
import type { Params, Scope } from '../spec/spec.ts';
import { dataQuery, routes } from '../upstream/routes.ts';
import type { UpstreamSession } from '../upstream/session.ts';
import type { Feed } from './poller.ts';

const iso = (ms: number): string => new Date(ms).toISOString();

function instantOf(r: Rec, field: string): number | null {
  const v = r[field];
  const ms = typeof v === 'string' ? Date.parse(v) : Number.NaN;
  return Number.isNaN(ms) ? null : ms;
}

/** A record's identity: its id field, or the whole record for types without one (continuous ratings). */
const identity = (r: Rec, field: string | null): string =>
  field !== null && typeof r[field] === 'string' ? (r[field] as string) : JSON.stringify(r);

/** Reads every page of a listing for the query, fresh (never from a cache), counting nothing twice. */
async function readAll(session: UpstreamSession, type: string, scope: Scope, params: Params, pageLimit: number): Promise<Rec[]> {
  const out: Rec[] = [];
  for (let offset = 0; ;) {
    const envelope = await session.fresh(
      routes.data(type, scope),
      dataQuery(scope, { ...params, limit: String(pageLimit), offset: String(offset) }),
    );
    const page = recordsOf(envelope);
    out.push(...page);
    offset += page.length;
    const pagination = envelope.metadata.pagination as { hasMore?: unknown } | undefined;
    if (page.length === 0 || pagination?.hasMore !== true) return out;
  }
}

export interface ListingFeedOptions {
  /** The upstream data type path (events, chat, ratings/sparse, …). */
  type: string;
  scope: Scope;
  /** Filters (never startTime, sort or order: the feed sets them). */
  params: Params;
  /** The record field the listing's time filter and default sort use. */
  timeField: string;
  /** The record field that identifies a record, when it has one. */
  idField: string | null;
  pageLimit: number;
  lateMs: number;
  now?: () => number;
}

/** Where a listing feed stands: its cursor and the ids seen within the overlap (JSON, for the fleet's stream). */
interface ListingState {
  cursor: number;
  seen: [string, number][];
}

const isListingState = (v: unknown): v is ListingState =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as ListingState).cursor === 'number' &&
  Array.isArray((v as ListingState).seen) &&
  (v as ListingState).seen.every((e) => Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'number');

/** New records of a listing at a scope, in time order. */
export class ListingFeed implements Feed<Rec> {
  readonly id: string;
  readonly cost = 1;
  #cursor = 0;
  /** Ids delivered (or present at the baseline) whose instant is within the overlap, with that instant. */
  readonly #seen = new Map<string, number>();

  constructor(private readonly o: ListingFeedOptions) {
    // JSON, not a query string: a filter value holding `&` or `=` must not read as other filters.
    const filters = Object.keys(o.params)
      .filter((k) => o.params[k] !== undefined)
      .sort()
      .map((k) => [k, o.params[k]]);
    this.id = JSON.stringify([o.type, o.scope, filters]);
  }

  async #read(session: UpstreamSession): Promise<Rec[]> {
    const since = this.#cursor - this.o.lateMs;
    return readAll(
      session,
      this.o.type,
      this.o.scope,
      { ...this.o.params, startTime: iso(since), sort: 'timestamp', order: 'asc' },
      this.o.pageLimit,
    );
  }

  async baseline(session: UpstreamSession): Promise<void> {
    this.#cursor = (this.o.now ?? Date.now)();
    for (const r of await this.#read(session)) this.#take(r);
  }

  async poll(session: UpstreamSession): Promise<Rec[]> {
    return this.admit(await this.#read(session));
  }

  /**
   * The records not yet delivered, taken as delivered: neither seen within the overlap nor older than
   * it (a read from the cursor would not return those). What a poll applies to what it read.
   */
  admit(records: readonly Rec[]): Rec[] {
    const fresh: Rec[] = [];
    const since = this.#cursor - this.o.lateMs;
    for (const r of records) {
      const id = identity(r, this.o.idField);
      if (this.#seen.has(id)) continue;
      const at = instantOf(r, this.o.timeField);
      if (at !== null && at < since) continue;
      this.#take(r);
      fresh.push(r);
    }
    const horizon = this.#cursor - this.o.lateMs;
    for (const [id, at] of this.#seen) if (at < horizon) this.#seen.delete(id);
    return fresh;
  }

  snapshot(): ListingState {
    return { cursor: this.#cursor, seen: [...this.#seen] };
  }

  restore(state: unknown): void {
    if (!isListingState(state)) throw new Error('not a listing feed state');
    this.#cursor = state.cursor;
    this.#seen.clear();
    for (const [id, at] of state.seen) this.#seen.set(id, at);
  }

  #take(r: Rec): void {
    const at = instantOf(r, this.o.timeField) ?? this.#cursor;
    this.#seen.set(identity(r, this.o.idField), at);
    if (at > this.#cursor) this.#cursor = at;
  }
}

export type ActivityType = 'ROOM_STARTED' | 'ROOM_ENDED' | 'PARTICIPANT_JOINED' | 'PARTICIPANT_COMPLETED';

/** One change of an experiment: a room that started or ended, a participant who joined or completed. */
export interface Activity {
  type: ActivityType;
  /** When it happened (the record's createdAt, endedAt, joinedAt or completedAt). */
  at: string | null;
  room: Rec | null;
  participant: Rec | null;
}

/**
 * The rooms and participants of an experiment that started, ended, joined or completed. Starts and
 * joins come from the listings' time windows (by createdAt and joinedAt); ends and completions, which
 * change records in place, from the listings sorted by endedAt and completedAt, newest first, read until
 * an end older than the overlap (records still open, listed with no end, are skipped on the way).
 */
export class ActivityFeed implements Feed<Activity> {
  readonly id: string;
  readonly cost = 4;
  readonly #starts: { rooms: ListingFeed; participants: ListingFeed };
  #endCursor = 0;
  readonly #ended = new Map<string, number>();

  constructor(
    private readonly experimentId: string,
    private readonly o: { lateMs: number; pageLimit: number; now?: () => number },
  ) {
    this.id = `activity experiment:${experimentId}`;
    const scope: Scope = { kind: 'experiment', id: experimentId };
    const common = { scope, params: {}, idField: 'id', pageLimit: o.pageLimit, lateMs: o.lateMs, now: o.now };
    this.#starts = {
      rooms: new ListingFeed({ ...common, type: 'rooms', timeField: 'createdAt' }),
      participants: new ListingFeed({ ...common, type: 'participants', timeField: 'joinedAt' }),
    };
  }

  async baseline(session: UpstreamSession): Promise<void> {
    this.#endCursor = (this.o.now ?? Date.now)();
    await Promise.all([this.#starts.rooms.baseline(session), this.#starts.participants.baseline(session)]);
    await Promise.all([this.#ends(session, 'rooms', 'endedAt'), this.#ends(session, 'participants', 'completedAt')]);
  }

  async poll(session: UpstreamSession): Promise<Activity[]> {
    const [rooms, people, ended, completed] = await Promise.all([
      this.#starts.rooms.poll(session),
      this.#starts.participants.poll(session),
      this.#ends(session, 'rooms', 'endedAt'),
      this.#ends(session, 'participants', 'completedAt'),
    ]);
    const out: Activity[] = [
      ...rooms.map((r): Activity => ({ type: 'ROOM_STARTED', at: str(r.createdAt), room: r, participant: null })),
      ...people.map((p): Activity => ({ type: 'PARTICIPANT_JOINED', at: str(p.joinedAt), room: null, participant: p })),
      ...ended.map((r): Activity => ({ type: 'ROOM_ENDED', at: str(r.endedAt), room: r, participant: null })),
      ...completed.map((p): Activity => ({ type: 'PARTICIPANT_COMPLETED', at: str(p.completedAt), room: null, participant: p })),
    ];
    return out.sort((a, b) => (Date.parse(a.at ?? '') || 0) - (Date.parse(b.at ?? '') || 0));
  }

  /** The activities not yet delivered, taken as delivered (as a poll would have taken them). */
  admit(activities: readonly Activity[]): Activity[] {
    const since = this.#endCursor - this.o.lateMs;
    let newest = this.#endCursor;
    const fresh = activities.filter((a) => {
      if (a.type === 'ROOM_STARTED') return a.room !== null && this.#starts.rooms.admit([a.room]).length > 0;
      if (a.type === 'PARTICIPANT_JOINED') return a.participant !== null && this.#starts.participants.admit([a.participant]).length > 0;
      const [type, record, field] = a.type === 'ROOM_ENDED' ? ['rooms', a.room, 'endedAt'] : ['participants', a.participant, 'completedAt'];
      const at = record === null ? null : instantOf(record, field);
      if (record === null || at === null || at < since) return false;
      const key = `${type}:${String(record.id)}`;
      if (this.#ended.has(key)) return false;
      this.#ended.set(key, at);
      newest = Math.max(newest, at);
      return true;
    });
    this.#endCursor = newest;
    for (const [key, at] of this.#ended) if (at < this.#endCursor - this.o.lateMs) this.#ended.delete(key);
    return fresh;
  }

  snapshot(): unknown {
    return {
      rooms: this.#starts.rooms.snapshot(),
      participants: this.#starts.participants.snapshot(),
      endCursor: this.#endCursor,
      ended: [...this.#ended],
    };
  }

  restore(state: unknown): void {
    const s = state as { rooms?: unknown; participants?: unknown; endCursor?: unknown; ended?: unknown } | null;
    if (s === null || typeof s !== 'object' || typeof s.endCursor !== 'number' || !Array.isArray(s.ended))
      throw new Error('not an activity feed state');
    this.#starts.rooms.restore(s.rooms);
    this.#starts.participants.restore(s.participants);
    this.#endCursor = s.endCursor;
    this.#ended.clear();
    for (const entry of s.ended as unknown[]) {
      if (Array.isArray(entry) && typeof entry[0] === 'string' && typeof entry[1] === 'number') this.#ended.set(entry[0], entry[1]);
    }
  }

  /** Records whose end (`field`) is new since the last look; the first look only notes them. */
  async #ends(session: UpstreamSession, type: 'rooms' | 'participants', field: string): Promise<Rec[]> {
    const horizon = this.#endCursor - this.o.lateMs;
    const fresh: Rec[] = [];
    let newest = this.#endCursor;
    const scope: Scope = { kind: 'experiment', id: this.experimentId };
    const pageLimit = Math.min(this.o.pageLimit, 200);
    for (let offset = 0; ;) {
      const envelope = await session.fresh(
        routes.data(type, scope),
        dataQuery(scope, { sort: field, order: 'desc', limit: String(pageLimit), offset: String(offset) }),
      );
      const page = recordsOf(envelope);
      let older = false;
      for (const r of page) {
        const at = instantOf(r, field);
        if (at === null) continue;
        if (at < horizon) {
          older = true;
          break;
        }
        const key = `${type}:${String(r.id)}`;
        if (!this.#ended.has(key)) {
          this.#ended.set(key, at);
          fresh.push(r);
        }
        if (at > newest) newest = at;
      }
      offset += page.length;
      const pagination = envelope.metadata.pagination as { hasMore?: unknown } | undefined;
      if (older || page.length === 0 || pagination?.hasMore !== true) break;
    }
    this.#endCursor = Math.max(this.#endCursor, newest);
    for (const [key, at] of this.#ended) if (at < this.#endCursor - this.o.lateMs) this.#ended.delete(key);
    return fresh.reverse();
  }
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
