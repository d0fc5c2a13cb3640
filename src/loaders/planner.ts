/**
 * The query planner: it makes a nested operation cost a small, constant number of upstream requests.
 *
 * REST has no batch-by-id endpoints, but every record carries its experimentId, roomId (or the older
 * sessionId) and participantId. So the same data wanted under many participants of a room, or many
 * rooms of an experiment, is read once at the wider scope and split by id ("scope lifting"), and work
 * known at the root starts at once ("lookahead"). Its parts (listings' keys, groups and splits in
 * src/loaders/listings.ts):
 *
 *   - `ListingKey`: a listing is a data type with filters at a scope; maps of listings are keyed by it.
 *   - lookahead: `experiment(id:)` and `room(id:)` (and Experiment and Room entities in `_entities`,
 *     and Experiment and Room nodes of `node(id:)` and `nodes(ids:)`)
 *     read the operation below them and start the first page of every listing the nested fields will
 *     need, at the root's own scope (`prefetch`).
 *   - probe reuse: a started first page serves any window inside it, and tells the listing's total.
 *   - the cheaper plan: requests of one event-loop turn are grouped; a group is lifted to the wider
 *     listing when its pages are no more than one request per parent; otherwise each parent fetches
 *     its own window and the probe was the only extra request.
 *   - splitting: a wider listing is grouped by room and participant once; each parent's slice keeps
 *     the upstream's order, so Relay windows, cursors and totalCount apply after the split exactly as
 *     on the parent's own listing.
 *
 * The 20 rooms × 4 participants dashboard (experiment → rooms → participants → events + sparse
 * ratings, 30 events and 3 sparse ratings per participant), round by round:
 *
 *   Round 1, all at once when `experiment(id:)` resolves: the experiment itself (its loader), and the
 *   lookahead's first pages at experiment scope of rooms, participants, events and sparse ratings —
 *   5 requests. Rooms (20), participants (80) and sparse ratings (240) are complete in their first
 *   page of 1000; events are not (2,400 in all).
 *   Then, without a request: `rooms` is the experiment's complete rooms listing as is; each room's
 *   `participants` is its slice of the experiment's participants.
 *   Round 2: the 80 participants' `events` arrive in one turn; the group's wider listing needs
 *   ⌈2400 ÷ 1000⌉ = 3 pages ≤ 80 parents, so it is lifted: pages 2 and 3 are fetched in parallel
 *   (2 requests) and split. Each participant's `sparseRatings` is its slice of the complete probe.
 *
 * In all 7 requests in 2 sequential rounds, where asking per parent costs 1 + 1 + 20 + 160 = 182.
 * With the planner off (PLANNER=off) every parent fetches its own window. Every decision is explained
 * on request (`explain()`, surfaced as `extensions.plan`).
 */
import DataLoader from 'dataloader';
import {
  getArgumentValues,
  getNamedType,
  isObjectType,
  Kind,
  type FieldNode,
  type GraphQLResolveInfo,
  type SelectionSetNode,
} from 'graphql';
import { selectionWalk, type SelectionWalk } from '../document.ts';
import { LISTING_BY_FIELD } from '../spec/data-types.ts';
import { listingOrder } from '../spec/order.ts';
import { listingParams, type ListingArgs } from '../spec/params.ts';
import type { ListingSpec, Scope } from '../spec/spec.ts';
import { isPlainSegment } from '../upstream/routes.ts';
import { roomOf, type Rec } from '../upstream/values.ts';
import { dataSource, mapBounded, type Listing, type ListingFetcher, type ListingSource, type Page } from './fetch.ts';
import {
  type DataRequest,
  dataText,
  hasFilters,
  liftable,
  liftTarget,
  type ListingKey,
  ListingMap,
  ownSource,
  participantOf,
  placesOf,
  type PlanDecision,
  scopeText,
  Split,
  widerScopes,
  groupOf,
} from './listings.ts';

/** One page of a streamed listing: its records in the upstream's order, and for each the requests (by index) it answers. */
export interface StreamedPage {
  records: Rec[];
  owners: number[][];
  /**
   * Which of the plan's reads it is from, and where in that listing it starts; for the merge of a
   * group's reads (`merged`), the group's first read and the merged page's place (its number × the page
   * size), which the same listings merge to again.
   */
  read: number;
  offset: number;
  merged: boolean;
  /**
   * For a merged page, how many records of each of the group's listings the merge has taken once the
   * page is handed out: where a resumed merge starts (stream's `from`).
   */
  taken?: readonly number[];
}

/** One listing a table's plan reads: its first page (read while planning), its total, and whose each record is. */
export interface PlannedRead {
  /** The listing (what `seed` takes to stand in for its first page). */
  key: ListingKey;
  source: ListingSource;
  first: Promise<Page>;
  total: number;
  owners: (record: Rec) => number[];
  /**
   * Rows each record makes: 1 for a parent's own listing; for a wider one, the parents that share each
   * record's place (every parent of the experiment at experiment scope; a place reached twice, through a
   * back-link, counts twice).
   */
  rowsPerRecord: number;
  /** The reads of one data type, filters and experiment share a group: several (each parent's own) are merged in the upstream's order. */
  group: number;
  order: (a: Rec, b: Rec) => number;
}

/** What reading a table's row list will take: the listings, the requests after their first pages, and the records. */
export interface StreamPlan {
  reads: readonly PlannedRead[];
  /** Upstream requests still to send (every listing's first page is read while planning). */
  requests: number;
  /** Records the listings hold (the rows, when every record has a parent in the table). */
  rows: number;
  /** The upstream path of each listing and the pages still to read from it. */
  endpoints: readonly { path: string; pages: number }[];
  /**
   * Each request's own total, when the plan was asked for them (a table that selects its row list's
   * totalCount, startCursor or endCursor): known from a first page read while planning, or a listing
   * still to count (one request of one record, in `requests`: see `totals`).
   */
  totals: readonly (number | ListingSource)[] | null;
}

/** A source of windows over one connection's records, however they are planned. */
export interface Slicer {
  window(start: number, limit: number): Promise<Page>;
  total(): Promise<number>;
}

const windowOf = (list: Listing, start: number, limit: number): Page => ({
  records: list.records.slice(start, start + limit),
  total: list.records.length,
  offset: start,
  meta: list.meta,
});

/** Windows over records already in hand. */
export const listSlicer = (list: Listing): Slicer => ({
  window: async (start, limit) => windowOf(list, start, limit),
  total: async () => list.records.length,
});

/** A request to the planner, with the text of its data computed once. */
interface Planned {
  req: DataRequest;
  data: string;
}

/**
 * The windows of one connection: from the listing the planner holds for it, from a first page already
 * started when the window fits inside it, or else from the parent's own window.
 */
class PlannedSlicer implements Slicer {
  constructor(
    private readonly listings: ListingFetcher,
    private readonly req: DataRequest,
    private readonly planned: Promise<Listing | null>,
    private readonly probe: Promise<Page> | null,
  ) {}

  #own(): ListingSource {
    return dataSource(this.req.type, this.req.scope, this.req.params, this.req.pageLimit);
  }

  async window(start: number, limit: number): Promise<Page> {
    const list = await this.planned;
    if (list) return windowOf(list, start, limit);
    const first = this.probe ? await this.probe : null;
    if (first && start + limit <= first.records.length) {
      return { ...first, records: first.records.slice(start, start + limit), offset: start };
    }
    return this.listings.window(this.#own(), start, limit);
  }

  async total(): Promise<number> {
    const list = await this.planned;
    if (list) return list.records.length;
    return this.probe ? (await this.probe).total : this.listings.total(this.#own());
  }
}

/** Plans one operation's listings (a new planner per operation, like its loaders). */
export class Planner {
  readonly #probes = new ListingMap<Promise<Page>>();
  readonly #all = new ListingMap<Promise<Listing>>();
  /** Keyed by the records, not the listing: a complete probe is wrapped anew for every request it serves. */
  readonly #splits = new WeakMap<readonly Rec[], Split>();
  readonly #batch: DataLoader<Planned, Listing | null, string>;
  readonly #decisions: PlanDecision[] = [];
  /**
   * The lookahead's listings below each entity type of an `_entities` field (`entityLookahead`), worked
   * out once per operation (the arguments depend on its variables), however many representations it has.
   */
  readonly entityListings = new Map<FieldNode, Map<string, Found[]>>();

  constructor(
    private readonly listings: ListingFetcher,
    readonly enabled: boolean,
  ) {
    this.#batch = new DataLoader<Planned, Listing | null, string>((planned) => this.#decide(planned.map((p) => p.req)), {
      cacheKeyFn: ({ req, data }) => `${data}\u0000${scopeText(req.scope)}`,
      // Wait for sibling resolvers from every parent settled in this turn, not just this microtask.
      batchScheduleFn: (run) => setImmediate(run),
    });
  }

  /** What the planner decided so far in this operation (the `extensions.plan` debug view). */
  explain(): readonly PlanDecision[] {
    return this.#decisions;
  }

  /**
   * A listing's first page, known already (an export job's, from its checkpoint): the lookahead and
   * plan() take it instead of reading it.
   */
  seed(key: ListingKey, page: Page): void {
    if (!this.#probes.get(key)) this.#probes.set(key, Promise.resolve(page));
  }

  /**
   * The lookahead of Relay `node(id:)` and `nodes(ids:)` (`nodeLookahead`): a method, so that the
   * builder's node fields reach it through the context without importing the planner.
   */
  lookaheadNodes(info: GraphQLResolveInfo, ids: readonly NodeId[], defaultSize: number): void {
    nodeLookahead(this, info, ids, defaultSize);
  }

  /** Starts a listing's first page (lookahead), unless one is started already. */
  prefetch(key: ListingKey, pageLimit: number): void {
    if (this.enabled) void this.#probe(key, pageLimit);
  }

  #probe(key: ListingKey, pageLimit: number): Promise<Page> {
    const known = this.#probes.get(key);
    if (known) return known;
    const probe = this.listings.window(dataSource(key.type, key.scope, key.params, pageLimit), 0, pageLimit);
    probe.catch(() => undefined);
    return this.#probes.set(key, probe);
  }

  #whole(key: ListingKey, pageLimit: number): Promise<Listing> {
    return (
      this.#all.get(key) ??
      this.#all.set(key, this.listings.all(dataSource(key.type, key.scope, key.params, pageLimit), this.#probe(key, pageLimit)))
    );
  }

  /** A wider listing's records of one scope, in the listing's order. */
  #slice(list: Listing, scope: Scope): Listing {
    if (scope.kind === 'experiment') return list;
    let split = this.#splits.get(list.records);
    if (!split) this.#splits.set(list.records, (split = new Split(list.records)));
    return { records: split.slice(scope), meta: list.meta };
  }

  /**
   * The windows of one connection: from a listing the planner holds (this scope's or a wider one,
   * split), from a first page already started when the window fits inside it, or else from the
   * parent's own window.
   */
  slicer(req: DataRequest): Slicer {
    if (!this.enabled) return new PlannedSlicer(this.listings, req, Promise.resolve(null), null);
    const data = dataText(req.type, req.params);
    return new PlannedSlicer(this.listings, req, this.#records({ req, data }), this.#probes.at(data, req.scope) ?? null);
  }

  /**
   * Every record of the request's scope, in the upstream's order, when a listing at this or a wider
   * scope serves it; null when the parent should fetch its own window.
   */
  records(req: DataRequest): Promise<Listing | null> {
    return this.enabled ? this.#records({ req, data: dataText(req.type, req.params) }) : Promise.resolve(null);
  }

  async #records(planned: Planned): Promise<Listing | null> {
    const covered = await this.#covered(planned);
    if (covered) return covered;
    if (planned.req.scope.kind === 'experiment') return null;
    return this.#batch.load(planned);
  }

  /** A listing already complete (or in flight to be) at the request's scope or a wider one. */
  async #covered({ req, data }: Planned): Promise<Listing | null> {
    for (const scope of [req.scope, ...widerScopes(req)]) {
      // The scope's own listing is its answer as is; a wider one is split.
      const all = this.#all.at(data, scope);
      if (all) return this.#sliceOf(await all, scope, req.scope);
      const probe = this.#probes.at(data, scope);
      if (probe) {
        const page = await probe;
        if (page.total <= page.records.length) return this.#sliceOf({ records: page.records, meta: page.meta }, scope, req.scope);
      }
    }
    return null;
  }

  #sliceOf(list: Listing, from: Scope, to: Scope): Listing {
    return from === to ? list : this.#slice(list, to);
  }

  /** Groups a turn's requests by data and experiment, and lifts each group when it is no dearer. */
  async #decide(reqs: readonly DataRequest[]): Promise<(Listing | null | Error)[]> {
    const groups = new Map<string, DataRequest[]>();
    for (const req of reqs) {
      const group = groupOf(req);
      groups.set(group, [...(groups.get(group) ?? []), req]);
    }
    const answers = new Map<DataRequest, Listing | null | Error>();
    await Promise.all(
      [...groups.values()].map(async (group) => {
        const first = group[0];
        if (!first) return;
        const target = liftTarget(group);
        if (target === null) {
          for (const req of group) answers.set(req, null);
          return;
        }
        const listing: ListingKey = { type: first.type, params: first.params, scope: target };
        try {
          // The first page tells the total: lift when the wider listing needs no more requests than
          // one per parent; otherwise the probe is the only extra request.
          const probe = await this.#probe(listing, first.pageLimit);
          const lifted = liftable(probe, first.pageLimit, group.length);
          this.#decisions.push({ listing, decision: lifted ? 'lifted' : 'per-parent', parents: group.length, total: probe.total });
          if (!lifted) {
            for (const req of group) answers.set(req, null);
            return;
          }
          const all = await this.#whole(listing, first.pageLimit);
          for (const req of group) answers.set(req, this.#slice(all, req.scope));
        } catch (error) {
          for (const req of group) answers.set(req, error instanceof Error ? error : new Error(String(error)));
        }
      }),
    );
    return reqs.map((req) => answers.get(req) ?? null);
  }

  /**
   * How many parents' listings of one connection (a table's row list) will be read: for the parents of
   * each experiment, one wider listing when that is the cheaper plan (the same decision as for a
   * turn's requests, explained likewise), otherwise each parent's own. Reads the first page of each
   * listing it plans (a wider one's, or each parent's), which tells its total: the stream reads them
   * first, so planning costs no request the table would not make anyway. With `totals`, it also tells
   * each request's own total: a lifted listing's parents are counted from its first page when that
   * holds it all, else each is asked after the plan (a request each, counted in the plan).
   */
  async plan(reqs: readonly DataRequest[], options: { totals?: boolean } = {}): Promise<StreamPlan> {
    const totals: (number | ListingSource)[] | null = options.totals ? reqs.map(() => 0) : null;
    const groups = new Map<string, number[]>();
    reqs.forEach((req, i) => {
      const group = groupOf(req);
      groups.set(group, [...(groups.get(group) ?? []), i]);
    });
    const reads: PlannedRead[] = [];
    for (const [g, indices] of [...groups.values()].entries()) {
      const group = indices.map((i) => reqs[i] as DataRequest);
      const first = group[0];
      if (!first) continue;
      const order = listingOrder(first.type, first.params);
      const target = this.enabled && first.experimentId !== null ? liftTarget(group) : null;
      if (target !== null) {
        const listing: ListingKey = { type: first.type, params: first.params, scope: target };
        const probe = this.#probe(listing, first.pageLimit);
        const page = await probe;
        const lifted = liftable(page, first.pageLimit, group.length);
        this.#decisions.push({ listing, decision: lifted ? 'lifted' : 'per-parent', parents: group.length, total: page.total });
        if (lifted) {
          // Whose each record is, by room and then participant: a lookup per record, no key built.
          // (An experiment's own request has every record: it is in none of them.)
          const owners = new Map<string, Map<string, number[]>>();
          const everywhere: number[] = [];
          indices.forEach((index, k) => {
            const scope = (group[k] as DataRequest).scope;
            if (scope.kind === 'experiment') return void everywhere.push(index);
            const [room, participant] = scope.kind === 'participant' ? [scope.roomId, scope.id] : [scope.id, ''];
            const inRoom = owners.get(room) ?? new Map<string, number[]>();
            owners.set(room, inRoom.set(participant, [...(inRoom.get(participant) ?? []), index]));
          });
          const kind = group.every((req) => req.scope.kind === first.scope.kind) ? first.scope.kind : null;
          const none: number[] = [];
          const ownersOf =
            kind === 'experiment'
              ? () => indices
              : kind !== null
                ? (r: Rec): number[] => owners.get(roomOf(r) ?? '')?.get(kind === 'room' ? '' : participantOf(r)) ?? none
                : // Parents of several kinds (entities or nodes of an experiment, a room, a participant): each the records of its scope, in the parents' order.
                  (r: Rec): number[] => {
                    const inRoom = owners.get(roomOf(r) ?? '');
                    return [...everywhere, ...(inRoom?.get('') ?? none), ...(inRoom?.get(participantOf(r)) ?? none)].sort((a, b) => a - b);
                  };
          reads.push({
            key: listing,
            source: dataSource(listing.type, target, listing.params, first.pageLimit),
            first: probe,
            total: page.total,
            owners: ownersOf,
            rowsPerRecord: everywhere.length + (indices.length - everywhere.length) / placesOf(owners),
            group: g,
            order,
          });
          // A wider listing whole in its first page tells each parent's total; otherwise each is counted.
          if (totals && page.total <= page.records.length)
            for (const r of page.records) for (const o of ownersOf(r)) totals[o] = (totals[o] as number) + 1;
          else if (totals) for (const index of indices) totals[index] = ownSource(reqs[index] as DataRequest);
          continue;
        }
      }
      for (const index of indices) {
        const req = reqs[index] as DataRequest;
        const probe = this.#probe(req, req.pageLimit);
        const total = (await probe).total;
        if (totals) totals[index] = total;
        reads.push({
          key: { type: req.type, params: req.params, scope: req.scope },
          source: dataSource(req.type, req.scope, req.params, req.pageLimit),
          first: probe,
          total,
          owners: () => [index],
          rowsPerRecord: 1,
          group: g,
          order,
        });
      }
    }
    const pages = (read: PlannedRead): number => Math.max(0, Math.ceil(read.total / read.source.pageLimit) - 1);
    const counts = (totals ?? []).filter((t): t is ListingSource => typeof t !== 'number');
    return {
      reads,
      requests: reads.reduce((n, read) => n + pages(read), 0) + counts.length,
      rows: Math.round(reads.reduce((n, read) => n + read.total * read.rowsPerRecord, 0)),
      endpoints: [
        ...reads.map((read) => ({ path: read.source.path, pages: pages(read) })),
        ...counts.map((c) => ({ path: c.path, pages: 1 })),
      ],
      totals,
    };
  }

  /** Each request's own total of a plan made with totals: the listings still to count are asked now, `concurrency` at a time. */
  async totals(plan: StreamPlan, concurrency: number): Promise<number[]> {
    return mapBounded(plan.totals ?? [], concurrency, async (t) => (typeof t === 'number' ? t : this.listings.total(t)));
  }

  /**
   * The records of a plan's listings, page by page as the upstream sends them, each page's records
   * with the parents they belong to: what a table streams (src/tables/rows.ts). A wider listing's
   * records come in its order, `ahead` pages read ahead of the one handed out. Each parent's own
   * listings (the cheaper plan when the parents are few in a wide scope) are merged in the upstream's
   * order (`sort`, `order`), as the wider listing would have them: see `#merged`. None is kept once
   * handed out, so memory holds a few pages whatever the listings' size. Pages `skip` names (by read
   * and offset: an export job's, on disk) are not handed out, nor read when they are a listing's own
   * (but a first page, read while planning). A merge that `from` gives a place (by its first read: the
   * `taken` of the last merged page on disk) starts there, reading each listing from the page it stands in.
   */
  async *stream(
    plan: StreamPlan,
    ahead: number,
    skip?: (read: number, offset: number) => boolean,
    from?: (read: number) => readonly number[] | undefined,
  ): AsyncGenerator<StreamedPage> {
    for (let i = 0; i < plan.reads.length;) {
      const index = i;
      const group = (plan.reads[i] as PlannedRead).group;
      let end = i + 1;
      while (end < plan.reads.length && (plan.reads[end] as PlannedRead).group === group) end++;
      const reads = plan.reads.slice(i, end);
      i = end;
      const read = reads[0];
      const skipped = skip && ((offset: number) => skip(index, offset));
      if (read && reads.length === 1) {
        for await (const { records, offset } of this.listings.pages(read.source, ahead, read.first, skipped))
          yield { records, owners: records.map(read.owners), read: index, offset, merged: false };
      } else yield* this.#merged(reads, index, skipped, from?.(index));
    }
  }

  /**
   * A k-way merge of each parent's listing by the upstream's order, in pages of the listings' page
   * size: each listing holds its current page and reads its next one ahead, so memory is two pages a
   * parent (their first pages are what planning read anyway). Records equal in the order keep the
   * parents' order. Given `from` (how many records of each listing were taken), the merge goes on from
   * there as it would have: each listing is read from the page holding its next record.
   */
  async *#merged(
    reads: readonly PlannedRead[],
    index: number,
    skip?: (offset: number) => boolean,
    from?: readonly number[],
  ): AsyncGenerator<StreamedPage> {
    const first = reads[0];
    if (!first) return;
    const start = from?.length === reads.length ? from : null;
    const heads = reads.map((read, i) => {
      const taken = start?.[i] ?? 0;
      // The page holding the next record, and that record's place in it.
      const page = taken - (taken % read.source.pageLimit);
      const before = page > 0 ? (offset: number) => offset < page : undefined;
      return {
        read,
        pages: this.listings.pages(read.source, 1, read.first, before),
        records: [] as Rec[],
        at: 0,
        into: taken - page,
        taken,
        done: false,
      };
    });
    type Head = (typeof heads)[number];
    const refill = async (head: Head): Promise<void> => {
      while (!head.done && head.at >= head.records.length) {
        const next = await head.pages.next();
        if (next.done) head.done = true;
        else [head.records, head.at, head.into] = [next.value.records, head.into, 0];
      }
    };
    try {
      await Promise.all(heads.map(refill));
      let records: Rec[] = [];
      let owners: number[][] = [];
      // Where the merged page starts in the merge.
      let at = heads.reduce((n, head) => n + head.taken, 0);
      for (;;) {
        let best: Head | null = null;
        for (const head of heads) {
          if (head.done) continue;
          if (best === null || first.order(head.records[head.at] as Rec, best.records[best.at] as Rec) < 0) best = head;
        }
        if (best === null) break;
        const record = best.records[best.at++] as Rec;
        best.taken++;
        records.push(record);
        owners.push(best.read.owners(record));
        if (best.at >= best.records.length) await refill(best);
        if (records.length >= first.source.pageLimit) {
          if (!skip?.(at)) yield { records, owners, read: index, offset: at, merged: true, taken: heads.map((h) => h.taken) };
          at += records.length;
          [records, owners] = [[], []];
        }
      }
      if (records.length > 0 && !skip?.(at))
        yield { records, owners, read: index, offset: at, merged: true, taken: heads.map((h) => h.taken) };
    } finally {
      await Promise.all(heads.map((head) => head.pages.return(undefined)));
    }
  }

  /** A record of a complete, unfiltered listing already fetched or in flight (back-links look here first). */
  async find(type: string, match: (r: Rec) => boolean): Promise<Rec | null> {
    if (!this.enabled) return null;
    for (const { key, value: probe } of this.#probes.entries()) {
      if (key.type !== type || hasFilters(key.params)) continue;
      try {
        const all = this.#all.get(key);
        const records = all ? (await all).records : await probe.then((p) => (p.total <= p.records.length ? p.records : []));
        const hit = records.find(match);
        if (hit) return hit;
      } catch {
        // a failed listing serves nothing; the caller asks on its own
      }
    }
    return null;
  }
}

// --- Lookahead --------------------------------------------------------------------------------

const RECORD_TYPES = new Set(['Experiment', 'Room', 'Participant']);

interface Found {
  parentType: string;
  spec: ListingSpec;
  args: ListingArgs;
  /** How many Experiment/Room/Participant levels below the root the parent is (0: the root itself). */
  depth: number;
}

/**
 * The listings an operation selects below a root field, each with its parent type and arguments, in
 * document order (fragments resolved; fields selected on an interface type are passed over, fragments
 * on an object type within them are not).
 */
function listingsBelow(info: GraphQLResolveInfo): SelectionWalk<Found[]> {
  return selectionWalk<Found[]>(
    {
      none: [],
      add: (a, b) => (b.length === 0 ? a : a.length === 0 ? b : [...a, ...b]),
      field: (node, type, walk) => {
        if (!isObjectType(type)) return [];
        const definition = type.getFields()[node.name.value];
        if (!definition) return [];
        let args: ListingArgs;
        try {
          args = getArgumentValues(definition, node, info.variableValues);
        } catch {
          return [];
        }
        const spec = RECORD_TYPES.has(type.name) ? LISTING_BY_FIELD.get(node.name.value) : undefined;
        const own: Found[] = spec ? [{ parentType: type.name, spec, args, depth: 0 }] : [];
        const child = getNamedType(definition.type);
        if (!node.selectionSet || !isObjectType(child)) return own;
        // Depths are counted from the selection walked: one more below each Experiment, Room or Participant.
        const below = walk(node.selectionSet, child);
        return [...own, ...(RECORD_TYPES.has(child.name) ? below.map((f) => ({ ...f, depth: f.depth + 1 })) : below)];
      },
    },
    (name) => info.fragments[name],
    info.schema,
  );
}

/** Whether a connection's window lies inside the first upstream page, so a probe can serve it. */
function fitsFirstPage(args: ListingArgs, defaultSize: number, pageLimit: number): boolean {
  if (args.after || args.before || (args.last !== null && args.last !== undefined)) return false;
  const first = typeof args.first === 'number' ? args.first : defaultSize;
  return first >= 0 && first <= pageLimit;
}

/**
 * Reads the operation below a root experiment or room and starts, at once and in parallel, the first
 * page of every listing the nested fields will need — at the root's own scope, so that nested rooms
 * and participants can later be served from them (scope lifting) without another round trip.
 */
export function lookahead(
  planner: Planner,
  info: GraphQLResolveInfo,
  root: Scope & { kind: 'experiment' | 'room' },
  defaultSize: number,
): void {
  if (!planner.enabled) return;
  const rootType = getNamedType(info.returnType);
  if (!isObjectType(rootType)) return;
  const below = listingsBelow(info);
  prefetchFound(
    planner,
    info.fieldNodes.flatMap((node) => below(node.selectionSet, rootType)),
    rootType.name,
    root,
    defaultSize,
  );
}

/**
 * The lookahead of a Federation entity (`_entities`): what `lookahead` does for `experiment(id:)` and
 * `room(id:)`, on the selections of the entity's own type (its fragments in `_entities`), so that the
 * same nested selection costs the same requests and rounds through a supergraph as directly.
 */
export function entityLookahead(
  planner: Planner,
  info: GraphQLResolveInfo,
  root: Scope & { kind: 'experiment' | 'room' },
  defaultSize: number,
): void {
  if (!planner.enabled) return;
  const typeName = root.kind === 'experiment' ? 'Experiment' : 'Room';
  const type = info.schema.getType(typeName);
  if (!isObjectType(type)) return;
  const found = info.fieldNodes.flatMap((node) => {
    let byType = planner.entityListings.get(node);
    if (!byType) planner.entityListings.set(node, (byType = new Map()));
    let listings = byType.get(typeName);
    if (!listings) {
      const below = listingsBelow(info);
      byType.set(typeName, (listings = selectionsOf(node.selectionSet, typeName, info).flatMap((set) => below(set, type))));
    }
    return listings;
  });
  prefetchFound(planner, found, typeName, root, defaultSize);
}

/** A decoded Relay node id. */
export interface NodeId {
  typename: string;
  id: string;
}

/**
 * The lookahead of Relay `node(id:)` and `nodes(ids:)`: each Experiment and Room among the ids looks
 * ahead as its entity does in `_entities` (the fragments on its type, at its own scope), so that the
 * same nested selection costs the same requests and rounds as under `experiment(id:)` or `room(id:)`.
 * An id the node's loader refuses (not a plain path segment) starts nothing.
 */
export function nodeLookahead(planner: Planner, info: GraphQLResolveInfo, ids: readonly NodeId[], defaultSize: number): void {
  for (const { typename, id } of ids) {
    if (!isPlainSegment(id)) continue;
    if (typename === 'Experiment') entityLookahead(planner, info, { kind: 'experiment', id }, defaultSize);
    else if (typename === 'Room') entityLookahead(planner, info, { kind: 'room', id }, defaultSize);
  }
}

/**
 * The selection sets of an abstract field's selection that apply to one object type: its inline
 * fragments and named fragments on that type, and those without a type condition or on an abstract
 * type (`... on Node`) looked into.
 */
function selectionsOf(selection: SelectionSetNode | undefined, typeName: string, info: GraphQLResolveInfo): SelectionSetNode[] {
  const sets: SelectionSetNode[] = [];
  const visit = (set: SelectionSetNode | undefined, seen: Set<string>): void => {
    for (const s of set?.selections ?? []) {
      if (s.kind === Kind.INLINE_FRAGMENT) {
        const condition = s.typeCondition?.name.value;
        if (condition === typeName) sets.push(s.selectionSet);
        else if (condition === undefined || !isObjectType(info.schema.getType(condition))) visit(s.selectionSet, seen);
      } else if (s.kind === Kind.FRAGMENT_SPREAD && !seen.has(s.name.value)) {
        const fragment = info.fragments[s.name.value];
        if (fragment?.typeCondition.name.value === typeName) sets.push(fragment.selectionSet);
        else if (fragment && !isObjectType(info.schema.getType(fragment.typeCondition.name.value)))
          visit(fragment.selectionSet, new Set([...seen, s.name.value]));
      }
    }
  };
  visit(selection, new Set());
  return sets;
}

/** Starts the first page of each listing found below a root of type `rootTypeName`, at the root's scope. */
function prefetchFound(
  planner: Planner,
  found: readonly Found[],
  rootTypeName: string,
  root: Scope & { kind: 'experiment' | 'room' },
  defaultSize: number,
): void {
  for (const { parentType, spec, args, depth } of found) {
    if (!spec.scopes.includes(root.kind)) continue;
    const nested = depth > 0 && parentType !== 'Experiment';
    const atRoot = depth === 0 && parentType === rootTypeName && fitsFirstPage(args, defaultSize, spec.pageLimit);
    if (!nested && !atRoot) continue;
    try {
      planner.prefetch({ type: spec.path, params: listingParams(spec, args), scope: root }, spec.pageLimit);
    } catch {
      // A bad argument is reported by the field's own resolver, before any upstream call.
    }
  }
}
