import type { GraphQLResolveInfo } from 'graphql';
import type { GatewayContext } from './builder.ts';
import { badInput } from './errors.ts';
import type { ListingMeta, ListingSource } from '../loaders/fetch.ts';
import type { DataRequest } from '../loaders/listings.ts';
import type { Slicer } from '../loaders/planner.ts';
import type { Rec } from '../upstream/values.ts';

export const MAX_FIRST = 1000;

export interface ConnectionArgs {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

export interface ConnectionResult<N = Rec> {
  edges: { cursor: string; node: N }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  totalCount: number;
  /** What the upstream said about the listing (processing, warnings), for connection-level fields. */
  meta: ListingMeta;
}

const PREFIX = 'offset:';

const encode = (offset: number): string => Buffer.from(`${PREFIX}${offset}`, 'utf8').toString('base64url');

/** The cursors of the first offsets, encoded once: every list's edges start at small offsets (a dashboard has thousands). */
const FIRST_CURSORS: string[] = [];
const REMEMBERED_CURSORS = 10_000;

/** Cursors are opaque to callers: the record's position in the upstream's order for these filters. */
export const encodeCursor = (offset: number): string =>
  Number.isInteger(offset) && offset >= 0 && offset < REMEMBERED_CURSORS ? (FIRST_CURSORS[offset] ??= encode(offset)) : encode(offset);

export function decodeCursor(cursor: string, argument: 'after' | 'before'): number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const offset = text.startsWith(PREFIX) ? Number(text.slice(PREFIX.length)) : Number.NaN;
  if (!Number.isSafeInteger(offset) || offset < 0 || encodeCursor(offset) !== cursor) {
    throw badInput(`'${argument}' is not a cursor this connection gave out`, argument, { value: cursor });
  }
  return offset;
}

/** An edge whose cursor is encoded only when read: most selections of a record list ask for no cursors. */
export class Edge<N> {
  constructor(
    readonly offset: number,
    readonly node: N,
  ) {}

  get cursor(): string {
    return encodeCursor(this.offset);
  }
}

function checkCount(value: number | null | undefined, argument: 'first' | 'last'): number | null {
  if (value === null || value === undefined) return null;
  if (!Number.isInteger(value) || value < 0 || value > MAX_FIRST) {
    throw badInput(`'${argument}' must be between 0 and ${MAX_FIRST}, got ${value}`, argument, { value, max: MAX_FIRST });
  }
  return value;
}

/**
 * The window [start, end) that Relay arguments select; `end` is null when it needs the total. A
 * `defaultSize` of null reads every record from `after` on (a table's connections, src/tables).
 */
export function selectWindow(args: ConnectionArgs, defaultSize: number | null): { start: number; end: number | null; last: number | null } {
  const first = checkCount(args.first, 'first');
  const last = checkCount(args.last, 'last');
  const after = args.after ? decodeCursor(args.after, 'after') + 1 : 0;
  const before = args.before ? decodeCursor(args.before, 'before') : null;
  if (before !== null && before < after) return { start: after, end: after, last: null };
  if (first !== null) {
    const end = Math.min(after + first, before ?? Number.POSITIVE_INFINITY);
    return { start: last === null ? after : Math.max(after, end - last), end, last: null };
  }
  if (last !== null) {
    if (before !== null) return { start: Math.max(after, before - last), end: before, last: null };
    return { start: after, end: null, last };
  }
  if (defaultSize === null) return { start: after, end: before, last: null };
  return { start: after, end: Math.min(after + defaultSize, before ?? Number.POSITIVE_INFINITY), last: null };
}

const asRecord = (r: Rec): Rec => r;

/** The edges a connection gives when neither `first` nor `last` is given: all of them in a table (src/tables). */
function defaultSizeOf(ctx: GatewayContext, info: GraphQLResolveInfo | undefined): number | null {
  const node = info?.fieldNodes[0];
  return node && ctx.table?.all(node) ? null : ctx.defaultPageSize;
}

/**
 * Resolves Relay arguments over any source of windows: an upstream listing, a planned list, records in
 * hand; `view` makes each record the node its type reads (a record type's view). With `info`, a
 * table's connections read every record when they have no window (src/tables).
 */
export async function connectionOver<N = Rec>(
  ctx: GatewayContext,
  args: ConnectionArgs,
  slicer: Slicer,
  view: (record: Rec) => N = asRecord as (record: Rec) => N,
  info?: GraphQLResolveInfo,
): Promise<ConnectionResult<N>> {
  const window = selectWindow(args, defaultSizeOf(ctx, info));
  let { start, end } = window;
  if (end === null) {
    end = Math.max(start, await slicer.total());
    if (window.last !== null) start = Math.max(start, end - window.last);
  }
  // A table's connection without a window: what it reads counts toward the table's rows (TABLE_MAX_ROWS).
  if (window.end === null) ctx.table?.records(end - start);
  const page = await slicer.window(start, end - start);
  const edges = page.records.map((record, i) => new Edge(start + i, view(record)));
  for (const warning of page.meta.warnings) ctx.warnings.add(warning);
  return {
    edges,
    totalCount: page.total,
    meta: page.meta,
    pageInfo: {
      hasPreviousPage: start > 0 && page.total > 0,
      hasNextPage: start + edges.length < page.total,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}

/** Resolves a Relay connection over an upstream listing, mapped onto limit/offset. */
export function resolveConnection(
  ctx: GatewayContext,
  source: ListingSource,
  args: ConnectionArgs,
  info?: GraphQLResolveInfo,
): Promise<ConnectionResult> {
  return connectionOver(
    ctx,
    args,
    {
      window: (start, limit) => ctx.loaders.listings.window(source, start, limit),
      total: () => ctx.loaders.listings.total(source),
    },
    undefined,
    info,
  );
}

/** Resolves a data connection through the planner (see loaders/planner.ts). */
export function resolveDataConnection<N>(
  ctx: GatewayContext,
  req: DataRequest,
  args: ConnectionArgs,
  view: (record: Rec) => N,
  info?: GraphQLResolveInfo,
): Promise<ConnectionResult<N>> {
  selectWindow(args, ctx.defaultPageSize); // bad arguments fail here, before the planner may fetch
  return connectionOver(ctx, args, ctx.loaders.planner.slicer(req), view, info);
}
