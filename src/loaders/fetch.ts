import type { Envelope } from '../upstream/client.ts';
import type { Params } from '../spec/spec.ts';
import { dataQuery, routes, type Scope } from '../upstream/routes.ts';
import type { UpstreamSession } from '../upstream/session.ts';
import { joined, type Rec } from '../upstream/values.ts';

/** What the upstream said about a listing besides its records: its metadata and any warnings. */
export interface ListingMeta {
  /** The first page's `metadata` (processing, query echo, type-specific flags such as `truncated`). */
  metadata: Rec;
  /** `metadata._warnings` of every page read, once each (e.g. "MISSING_INDEX: … may be incomplete"). */
  warnings: string[];
}

/** A slice of an upstream listing, how many records the whole listing has, and what it said about it. */
export interface Page {
  records: Rec[];
  total: number;
  offset: number;
  meta: ListingMeta;
}

export const NO_META: ListingMeta = { metadata: {}, warnings: [] };

/** The meta of a listing read in several envelopes: the first one's metadata, everyone's warnings. */
export function metaOf(envelopes: readonly Envelope[]): ListingMeta {
  const warnings = new Set<string>();
  for (const envelope of envelopes) {
    const list = envelope.metadata._warnings;
    if (Array.isArray(list)) for (const w of list) if (typeof w === 'string') warnings.add(w);
  }
  return { metadata: envelopes[0]?.metadata ?? {}, warnings: [...warnings] };
}

/** Joins the meta of two parts of one listing. */
export const joinMeta = (a: ListingMeta, b: ListingMeta): ListingMeta => ({
  metadata: a.metadata,
  warnings: [...new Set([...a.warnings, ...b.warnings])],
});

/** The upstream's largest page for data listings and for the experiments list. */
export const DATA_PAGE_LIMIT = 1000;
export const EXPERIMENTS_PAGE_LIMIT = 100;

/** A whole listing, in the upstream's order. */
export interface Listing {
  records: Rec[];
  meta: ListingMeta;
}

const isRecord = (r: unknown): r is Rec => r !== null && typeof r === 'object' && !Array.isArray(r);

/** The records of an envelope: its own list when that holds records only (shared, as the envelope may be: never change it). */
export function recordsOf(envelope: Envelope): Rec[] {
  const { data } = envelope;
  if (Array.isArray(data)) {
    for (let i = 0; i < data.length; i++) if (!isRecord(data[i])) return data.filter(isRecord);
    return data as Rec[];
  }
  return isRecord(data) ? [data] : [];
}

/** The single object of an object endpoint (which may wrap it in a one-element array). */
export function objectOf(envelope: Envelope): Rec | null {
  return recordsOf(envelope)[0] ?? null;
}

function totalOf(envelope: Envelope, offset: number, returned: number): number {
  const pagination = envelope.metadata.pagination as Record<string, unknown> | undefined;
  const total = pagination?.total;
  if (typeof total === 'number' && Number.isFinite(total)) return total;
  return offset + returned + (pagination?.hasMore === true ? 1 : 0);
}

/** Runs tasks with at most `limit` in flight, keeping their order. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await task(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Runs `task` over the items with at most `ahead` started before the one handed out, handing them out in order. */
export async function* inOrder<T, R>(items: readonly T[], ahead: number, task: (item: T) => Promise<R>): AsyncGenerator<R> {
  const started: Promise<R>[] = [];
  let next = 0;
  const start = (): void => {
    while (next < items.length && started.length < Math.max(1, ahead)) {
      const pending = task(items[next++] as T);
      // Handled when its turn comes; an earlier failure ends the walk first.
      pending.catch(() => undefined);
      started.push(pending);
    }
  };
  start();
  for (let pending = started.shift(); pending; pending = started.shift()) {
    const value = await pending;
    start();
    yield value;
  }
}

export interface ListingSource {
  path: string;
  params: Params;
  scope?: Scope;
  pageLimit: number;
}

export const dataSource = (type: string, scope: Scope, params: Params, pageLimit = DATA_PAGE_LIMIT): ListingSource => ({
  path: routes.data(type, scope),
  params,
  scope,
  pageLimit,
});

function listingQuery(source: ListingSource, offset: number, limit: number): URLSearchParams {
  const params = { ...source.params, limit: String(limit), offset: String(offset) };
  if (source.scope) return dataQuery(source.scope, params);
  const query = new URLSearchParams();
  for (const name of Object.keys(params).sort()) {
    const value = params[name as keyof typeof params];
    if (value !== undefined) query.set(name, value);
  }
  return query;
}

/**
 * Reads listings through the operation's session: a window of any size as parallel pages of the
 * upstream's largest size, or the whole listing (first page, then the rest in parallel).
 */
export class ListingFetcher {
  constructor(
    private readonly session: UpstreamSession,
    private readonly pageConcurrency: number,
  ) {}

  async window(source: ListingSource, offset: number, limit: number): Promise<Page> {
    if (limit <= 0) return { records: [], total: await this.total(source), offset, meta: NO_META };
    const starts: number[] = [];
    for (let at = offset; at < offset + limit; at += source.pageLimit) starts.push(at);
    const envelopes = await mapBounded(starts, this.pageConcurrency, (at) =>
      this.session.get(source.path, listingQuery(source, at, Math.min(source.pageLimit, offset + limit - at)), 'page'),
    );
    const first = envelopes[0];
    const lists = envelopes.map(recordsOf);
    // One page (the usual case) is taken as it is; several are joined with one copy.
    const records = lists.length === 1 && lists[0] ? lists[0] : joined(lists);
    return { records, total: first ? totalOf(first, offset, lists[0]?.length ?? 0) : records.length, offset, meta: metaOf(envelopes) };
  }

  /**
   * One upstream page at `offset`, which the operation does not keep once read (a streamed table's
   * pages: see UpstreamSession.get).
   */
  async page(source: ListingSource, offset: number): Promise<Page> {
    const envelope = await this.session.get(source.path, listingQuery(source, offset, source.pageLimit), 'page', false);
    const records = recordsOf(envelope);
    return { records, total: totalOf(envelope, offset, records.length), offset, meta: metaOf([envelope]) };
  }

  /**
   * A whole listing page by page, in order, from its first page (one already started, or read here):
   * at most `ahead` pages are read ahead of the one handed out. Pages at offsets `skip` names (an
   * export job's pages already on disk) are neither read nor handed out; the first page always is read.
   */
  async *pages(source: ListingSource, ahead: number, firstPage?: Promise<Page>, skip?: (offset: number) => boolean): AsyncGenerator<Page> {
    const first = await (firstPage ?? this.page(source, 0));
    if (!skip?.(0)) yield first;
    const offsets: number[] = [];
    for (let at = first.records.length; at < first.total; at += source.pageLimit) if (!skip?.(at)) offsets.push(at);
    yield* inOrder(offsets, ahead, (at) => this.page(source, at));
  }

  /** The listing's total, from the smallest request (shared with any identical one of this operation). */
  async total(source: ListingSource): Promise<number> {
    const envelope = await this.session.get(source.path, listingQuery(source, 0, 1), 'page');
    return totalOf(envelope, 0, recordsOf(envelope).length);
  }

  /** The whole listing: the first page (or one already started), then the rest in parallel. */
  async all(source: ListingSource, firstPage: Promise<Page> = this.window(source, 0, source.pageLimit)): Promise<Listing> {
    const first = await firstPage;
    if (first.total <= first.records.length) return { records: first.records, meta: first.meta };
    const rest = await this.window(source, first.records.length, first.total - first.records.length);
    return { records: joined([first.records, rest.records]), meta: joinMeta(first.meta, rest.meta) };
  }
}
