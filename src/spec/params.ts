import { badInput } from '../schema/errors.ts';
import { EVENT_CATEGORIES, filtersOf, type Filter, type ListingSpec, type Params } from './spec.ts';

/** The arguments of a listing connection as GraphQL hands them over (filters, sort, order, window). */
export type ListingArgs = Readonly<Record<string, unknown>>;

const KNOWN_CATEGORIES = new Map<string, string>(EVENT_CATEGORIES.map((c) => [c.toUpperCase(), c]));

/** The form two spellings of one category share: lower case, letters and digits only. */
const folded = (text: string): string => text.toLowerCase().replace(/[^a-z0-9]/g, '');

/** Edit distance with adjacent swaps (optimal string alignment), for spotting slips. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i] as number[];
      const up = d[i - 1] as number[];
      row[j] = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        row[j] = Math.min(row[j] as number, ((d[i - 2] as number[])[j - 2] as number) + 1);
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

/**
 * The known category an unknown one looks like a slip of (`COMPONENTS`, `pre-experiment`, `sytem`):
 * the same letters in another case or with other separators, or one edit away (two for longer names).
 */
export function nearCategory(value: string): string | null {
  const text = folded(value);
  let best: { category: string; edits: number } | null = null;
  for (const category of EVENT_CATEGORIES) {
    const edits = distance(text, folded(category));
    if (edits <= (category.length >= 6 ? 2 : 1) && (best === null || edits < best.edits)) best = { category, edits };
  }
  return best?.category ?? null;
}

/**
 * An event category as the upstream takes it: a known name in either case (MEDIA, media), or any
 * other non-blank value as given — the upstream's set is open, so an unknown one is never refused,
 * unless it is written in capitals (a name, or a string with an upper-case letter) and looks like a
 * slip of a known one (`COMPONENTS`): the upstream writes categories in lower case, so that one would
 * match nothing.
 */
export function eventCategory(value: string, argument = 'category', asName = false): string {
  const text = value.trim();
  if (text === '' || text !== value) throw badInput(`'${argument}' must be a non-blank category without surrounding spaces`, argument);
  if (text.length > 100) throw badInput(`'${argument}' is longer than 100 characters`, argument);
  const known = KNOWN_CATEGORIES.get(text.toUpperCase());
  if (known !== undefined) return known;
  const near = nearCategory(text);
  if (near !== null && (asName || /[A-Z]/.test(text))) {
    throw badInput(
      `${asName ? text : JSON.stringify(text)} is not a known event category: did you mean ${near.toUpperCase()} ("${near}")? ` +
        'A category of your own is given as a string in lower case, as the upstream writes categories.',
      argument,
      { value: text, known: near },
    );
  }
  // A name (enum-style literal) the gateway does not know reads as the upstream writes categories.
  return asName ? text.toLowerCase() : text;
}

/**
 * What to tell a caller whose unknown category looks like a slip of a known one (`components`): it
 * goes upstream as given (the set is open), but may well match nothing. Null for any other category.
 */
export function categoryWarning(category: string): string | null {
  if (KNOWN_CATEGORIES.has(category.toUpperCase())) return null;
  const near = nearCategory(category);
  return near === null
    ? null
    : `UNKNOWN_CATEGORY: "${category}" is not a known event category (did you mean "${near}"?); it was sent as given and may match no events.`;
}

function paramValue(filter: Filter, value: unknown): string {
  const { arg, input } = filter;
  switch (input.kind) {
    case 'DateTime':
      return (value as Date).toISOString();
    case 'Boolean':
      return String(value === true);
    case 'Int': {
      const n = value as number;
      if (!Number.isInteger(n) || n < input.min || n > input.max) {
        throw badInput(`'${arg}' must be between ${input.min} and ${input.max} ${input.unit}, got ${n}`, arg, { value: n });
      }
      return String(n);
    }
    case 'Enum':
      return String(value);
    case 'EventCategory':
      return eventCategory(String(value), arg);
    case 'String': {
      const text = String(value);
      // A blank filter is the caller's mistake, not "no filter".
      if (text.trim() === '') throw badInput(`'${arg}' must not be blank`, arg);
      return text;
    }
  }
}

/**
 * The upstream parameters of a listing from its connection's arguments, checked before any upstream
 * call. Every declared filter is read here and only here, so an argument cannot be declared and not sent.
 */
export function listingParams(spec: ListingSpec, args: ListingArgs, warn?: (warning: string) => void): Params {
  const params: Record<string, string | undefined> = {};
  for (const filter of filtersOf(spec)) {
    const value = args[filter.arg];
    params[filter.param] = value === null || value === undefined ? undefined : paramValue(filter, value);
    const sent = params[filter.param];
    if (warn && filter.input.kind === 'EventCategory' && sent !== undefined) {
      const warning = categoryWarning(sent);
      if (warning !== null) warn(warning);
    }
  }
  const { startTime, endTime } = args;
  if (startTime instanceof Date && endTime instanceof Date && startTime > endTime) {
    throw badInput("'startTime' must not be after 'endTime'", 'startTime', {
      startTime: startTime.toISOString(),
      endTime: endTime.toISOString(),
    });
  }
  params.sort = typeof args.sort === 'string' ? args.sort : undefined;
  params.order = typeof args.order === 'string' ? args.order : undefined;
  return params;
}
