import type { Rec } from '../upstream/values.ts';
import { LISTING_BY_PATH } from './data-types.ts';
import type { ListingSpec, Params } from './spec.ts';

/** Two values of a sort field as the upstream orders them: numbers by value, anything else as text; nulls last. */
function compareValues(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1;
  if (b === null || b === undefined) return -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const x = typeof a === 'object' ? JSON.stringify(a) : String(a as string | number | boolean);
  const y = typeof b === 'object' ? JSON.stringify(b) : String(b as string | number | boolean);
  return x < y ? -1 : x > y ? 1 : 0;
}

const instantOf = (record: Rec, field: string): number => {
  const value = record[field];
  const ms = typeof value === 'string' ? Date.parse(value) : typeof value === 'number' ? value : Number.NaN;
  return Number.isNaN(ms) ? 0 : ms;
};

/**
 * The upstream's order of a listing's records under its `sort` and `order` parameters: by the sort
 * field (the record's instant for the default and `timestamp` sorts), records equal in it by their
 * instant, all of it reversed for `desc`. Records equal in both have no documented order (0 here):
 * a merge keeps them in the order of its inputs.
 */
export function upstreamOrder(spec: Pick<ListingSpec, 'instant'>, params: Params): (a: Rec, b: Rec) => number {
  const sign = params.order === 'desc' ? -1 : 1;
  const sort = params.sort;
  const instant = spec.instant;
  if (sort === undefined || sort === 'timestamp' || sort === instant)
    return (a, b) => sign * (instantOf(a, instant) - instantOf(b, instant));
  return (a, b) => sign * (compareValues(a[sort], b[sort]) || instantOf(a, instant) - instantOf(b, instant));
}

/** The upstream's order of a listing's records, by its data type's path (`events`) and parameters. */
export const listingOrder = (type: string, params: Params): ((a: Rec, b: Rec) => number) =>
  upstreamOrder({ instant: LISTING_BY_PATH.get(type)?.instant ?? 'timestamp' }, params);
