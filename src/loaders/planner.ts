import DataLoader from 'dataloader';
import type { DataTypePath, Scope } from '../upstream/routes.ts';
import { DATA_PAGE_LIMIT, dataSource, type ListingFetcher, type Page, type Rec } from './fetch.ts';

/** One connection's need: a data type with filters, at a scope, and the experiment the scope lies in. */
export interface DataRequest {
  type: DataTypePath;
  /** Upstream filter parameters (never limit or offset). */
  params: Record<string, string | undefined>;
  scope: Scope;
  /** Known from the parent record; lets a room or participant be served from an experiment listing. */
  experimentId: string | null;
}

const roomOf = (r: Rec): string | null => (typeof r.roomId === 'string' ? r.roomId : typeof r.sessionId === 'string' ? r.sessionId : null);

const paramsKey = (params: Record<string, string | undefined>): string =>
  Object.keys(params)
    .filter((k) => params[k] !== undefined)
    .sort()
    .map((k) => `${k}=${params[k]}`)
    .join('&');

const scopeKey = (scope: Scope): string => `${scope.kind}:${scope.id}${scope.kind === 'participant' ? `@${scope.roomId}` : ''}`;

export const sourceKey = (type: DataTypePath, params: Record<string, string | undefined>, scope: Scope): string =>
  `${type} ${scopeKey(scope)} ${paramsKey(params)}`;

/** A listing grouped by room and by participant once, so that each parent's slice is a lookup. */
const splits = new WeakMap<Rec[], Map<string, Rec[]>>();

/** The records of a wider listing that belong to a scope, in the listing's order. */
function sliceFor(list: Rec[], scope: Scope): Rec[] {
  if (scope.kind === 'experiment') return list;
  let groups = splits.get(list);
  if (!groups) {
    groups = new Map();
    for (const r of list) {
      const room = roomOf(r) ?? '';
      for (const key of [`room:${room}`, `participant:${String(r.participantId)}@${room}`]) {
        const group = groups.get(key);
        if (group) group.push(r);
        else groups.set(key, [r]);
      }
    }
    splits.set(list, groups);
  }
  return groups.get(scopeKey(scope)) ?? [];
}

/** The scopes whose listings contain a scope's records, narrowest first. */
function widerScopes(req: DataRequest): Scope[] {
  const out: Scope[] = [];
  if (req.scope.kind === 'participant') out.push({ kind: 'room', id: req.scope.roomId });
  if (req.scope.kind !== 'experiment' && req.experimentId !== null) out.push({ kind: 'experiment', id: req.experimentId });
  return out;
}

/**
 * Plans one operation's listings. Requests for the same data (type and filters) under several
 * participants of a room, or several rooms of an experiment, are served from one listing at the wider
 * scope, split by room and participant, when that costs no more requests than asking per parent. The
 * split keeps the upstream's order, so each parent's slice is exactly what its own listing would be.
 */
export class Planner {
  readonly #probes = new Map<string, Promise<Page>>();
  readonly #all = new Map<string, Promise<Rec[]>>();
  readonly #batch: DataLoader<DataRequest, Rec[] | null, string>;
  /** What was decided per wider listing (tests and debugging): source key → 'lifted' or 'per-parent'. */
  readonly decisions = new Map<string, 'lifted' | 'per-parent'>();

  constructor(
    private readonly listings: ListingFetcher,
    readonly enabled: boolean,
  ) {
    this.#batch = new DataLoader((reqs) => this.#decide(reqs), {
      cacheKeyFn: (req) => sourceKey(req.type, req.params, req.scope),
      // Wait for sibling resolvers from every parent settled in this turn, not just this microtask.
      batchScheduleFn: (run) => setImmediate(run),
    });
  }

  /** Probes a data listing by its parts (lookahead). */
  prefetch(type: DataTypePath, params: Record<string, string | undefined>, scope: Scope): void {
    if (this.enabled) void this.#probeData(type, params, scope);
  }

  #probeData(type: DataTypePath, params: Record<string, string | undefined>, scope: Scope): Promise<Page> {
    const key = sourceKey(type, params, scope);
    let probe = this.#probes.get(key);
    if (!probe) {
      probe = this.listings.window(dataSource(type, scope, params), 0, DATA_PAGE_LIMIT);
      probe.catch(() => undefined);
      this.#probes.set(key, probe);
    }
    return probe;
  }

  #allData(type: DataTypePath, params: Record<string, string | undefined>, scope: Scope): Promise<Rec[]> {
    const key = sourceKey(type, params, scope);
    let all = this.#all.get(key);
    if (!all) {
      all = this.listings.all(dataSource(type, scope, params), this.#probeData(type, params, scope));
      this.#all.set(key, all);
    }
    return all;
  }

  /** The first page of a listing when a probe for it was started, for windows that fit inside it. */
  startedProbe(type: DataTypePath, params: Record<string, string | undefined>, scope: Scope): Promise<Page> | null {
    return this.enabled ? (this.#probes.get(sourceKey(type, params, scope)) ?? null) : null;
  }

  /**
   * Every record of the request's scope, in the upstream's order, when a listing at this or a wider
   * scope serves it; null when the parent should fetch its own window.
   */
  async records(req: DataRequest): Promise<Rec[] | null> {
    if (!this.enabled) return null;
    const covered = await this.#covered(req);
    if (covered) return covered;
    if (req.scope.kind === 'experiment') return null;
    return this.#batch.load(req);
  }

  /** A listing already complete (or in flight to be) at the request's scope or a wider one. */
  async #covered(req: DataRequest): Promise<Rec[] | null> {
    for (const scope of [req.scope, ...widerScopes(req)]) {
      const key = sourceKey(req.type, req.params, scope);
      // The scope's own listing is its answer as is; a wider one is split.
      const slice = (list: Rec[]): Rec[] => (scope === req.scope ? list : sliceFor(list, req.scope));
      const all = this.#all.get(key);
      if (all) return slice(await all);
      const probe = this.#probes.get(key);
      if (probe) {
        const page = await probe;
        if (page.total <= page.records.length) return slice(page.records);
      }
    }
    return null;
  }

  /** Groups a turn's requests by data and experiment, and lifts each group when it is no dearer. */
  async #decide(reqs: readonly DataRequest[]): Promise<(Rec[] | null | Error)[]> {
    const groups = new Map<string, DataRequest[]>();
    for (const req of reqs) {
      const key = `${req.type} ${paramsKey(req.params)} ${req.experimentId ?? ''}`;
      groups.set(key, [...(groups.get(key) ?? []), req]);
    }
    const answers = new Map<DataRequest, Rec[] | null | Error>();
    await Promise.all(
      [...groups.values()].map(async (group) => {
        const first = group[0];
        if (!first) return;
        const rooms = new Set(group.map((r) => (r.scope.kind === 'participant' ? r.scope.roomId : r.scope.id)));
        const target: Scope | null =
          first.experimentId !== null && rooms.size > 1
            ? { kind: 'experiment', id: first.experimentId }
            : group.length > 1 && first.scope.kind === 'participant'
              ? { kind: 'room', id: first.scope.roomId }
              : null;
        if (target === null) {
          for (const req of group) answers.set(req, null);
          return;
        }
        const decisionKey = sourceKey(first.type, first.params, target);
        try {
          // The first page tells the total: lift when the wider listing needs no more requests than
          // one per parent; otherwise the probe is the only extra request.
          const probe = await this.#probeData(first.type, first.params, target);
          const pages = Math.max(1, Math.ceil(probe.total / DATA_PAGE_LIMIT));
          if (pages > group.length) {
            this.decisions.set(decisionKey, 'per-parent');
            for (const req of group) answers.set(req, null);
            return;
          }
          this.decisions.set(decisionKey, 'lifted');
          const all = await this.#allData(first.type, first.params, target);
          for (const req of group) answers.set(req, sliceFor(all, req.scope));
        } catch (error) {
          for (const req of group) answers.set(req, error instanceof Error ? error : new Error(String(error)));
        }
      }),
    );
    return reqs.map((req) => answers.get(req) ?? null);
  }

  /** A record of a complete listing already fetched or in flight (back-links look here first). */
  async find(type: DataTypePath, match: (r: Rec) => boolean): Promise<Rec | null> {
    if (!this.enabled) return null;
    const prefix = `${type} `;
    for (const [key, probe] of this.#probes) {
      if (!key.startsWith(prefix) || !key.endsWith(' ')) continue;
      try {
        const all = this.#all.get(key);
        const records = all ? await all : await probe.then((p) => (p.total <= p.records.length ? p.records : []));
        const hit = records.find(match);
        if (hit) return hit;
      } catch {
        // a failed listing serves nothing; the caller asks on its own
      }
    }
    return null;
  }
}
