import { badInput } from '../schema/errors.ts';
import { EVENT_CATEGORIES, filtersOf, type Filter, type ListingSpec, type Params } from './spec.ts';

/** The arguments of a listing connection as GraphQL hands them over (filters, sort, order, window). */
export type ListingArgs = Readonly<Record<string, unknown>>;

const KNOWN_CATEGORIES = new Map<string, string>(EVENT_CATEGORIES.map((c) => [c.toUpperCase(), c]));

/**
 * An event category as the upstream takes it: a known name in either case (MEDIA, media), or any
 * other non-blank value as given — the upstream's set is open, so an unknown one is never refused.
 */
export function eventCategory(value: string, argument = 'category', asName = false): string {
  const text = value.trim();
  if (text === '' || text !== value) throw badInput(`'${argument}' must be a non-blank category without surrounding spaces`, argument);
  if (text.length > 100) throw badInput(`'${argument}' is longer than 100 characters`, argument);
  // A name (enum-style literal) the gateway does not know reads as the upstream writes categories.
  return KNOWN_CATEGORIES.get(text.toUpperCase()) ?? (asName ? text.toLowerCase() : text);
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
export function listingParams(spec: ListingSpec, args: ListingArgs): Params {
  const params: Record<string, string | undefined> = {};
  for (const filter of filtersOf(spec)) {
    const value = args[filter.arg];
    params[filter.param] = value === null || value === undefined ? undefined : paramValue(filter, value);
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
