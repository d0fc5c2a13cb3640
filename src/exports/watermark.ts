/**
 * An export's watermark: where an incremental pull (`startExport(…, since:)`) takes up. It holds the
 * latest instant among the rows' records (their listing's own time field, `ListingSpec.instant`) and a
 * print of each record at that instant. The next pull asks the row list's listing for records at or
 * after that instant (inclusive `startTime`) and drops the ones printed: so a record written later with
 * the same instant as the last one delivered is neither lost (as `instant + 1 ms` would lose it) nor
 * delivered twice. The string is base64url JSON, opaque to callers, and names the document it belongs
 * to (a hash of its query, variables and operation name), so another export's watermark is refused.
 */
import { createHash } from 'node:crypto';
import { Kind, parse, print, visit, type ArgumentNode, type DocumentNode, type FieldNode, type ValueNode } from 'graphql';
import { gatewayError } from '../errors.ts';
import { LISTING_BY_FIELD } from '../spec/data-types.ts';
import type { ListingSpec } from '../spec/spec.ts';
import type { Projection } from '../tables/projection.ts';
import type { Rec } from '../upstream/values.ts';

/** The latest instant of the records delivered (ms; null: none yet) and the prints of those at it. */
export interface Mark {
  at: number | null;
  prints: string[];
}

export const NO_MARK: Mark = { at: null, prints: [] };

const VERSION = 1;

/** Fields that name a record for good (its content may change: a participant's status, a room's end). */
const ID_FIELDS = ['id', 'recordingId', 'ratingId', 'messageId'];

/** JSON with object keys sorted, so that equal values print alike. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

const hash = (text: string): string => createHash('sha256').update(text).digest('base64url').slice(0, 22);

/** The document a watermark belongs to: its query (as printed, so layout does not count), variables and operation name. */
export function documentOf(query: string, variables: Record<string, unknown> | null, operationName: string | null): string {
  return hash(`${print(parse(query))}\u0000${canonical(variables ?? {})}\u0000${operationName ?? ''}`);
}

/** A record's print: its id when it has one, else its whole content. */
export function printOf(record: Rec): string {
  for (const field of ID_FIELDS) {
    const id = record[field];
    if (typeof id === 'string' || typeof id === 'number') return hash(`${field}\u0000${String(id)}`);
  }
  return hash(canonical(record));
}

/** A record's instant in ms (null when its time field is missing or not a date). */
export function instantOf(record: Rec, field: string): number | null {
  const value = record[field];
  if (typeof value !== 'string' && typeof value !== 'number') return null;
  const ms = typeof value === 'number' ? value : Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

/** `mark` with `record` delivered. */
export function advance(mark: Mark, record: Rec, field: string): Mark {
  const at = instantOf(record, field);
  if (at === null || (mark.at !== null && at < mark.at)) return mark;
  const print = printOf(record);
  if (mark.at === at) return mark.prints.includes(print) ? mark : { at, prints: [...mark.prints, print] };
  return { at, prints: [print] };
}

/** Two marks as one (the later instant's prints; both sets at the same instant). */
export function merge(a: Mark, b: Mark): Mark {
  if (a.at === null) return b;
  if (b.at === null || b.at < a.at) return a;
  if (a.at < b.at) return b;
  return { at: a.at, prints: [...new Set([...a.prints, ...b.prints])] };
}

/** Whether a record is new since `mark`: after its instant, or at it and not delivered. */
export function isNew(mark: Mark, record: Rec, field: string): boolean {
  if (mark.at === null) return true;
  const at = instantOf(record, field);
  if (at === null) return true;
  return at > mark.at || (at === mark.at && !mark.prints.includes(printOf(record)));
}

export function encode(document: string, mark: Mark): string {
  return Buffer.from(JSON.stringify({ v: VERSION, doc: document, at: mark.at, prints: mark.prints })).toString('base64url');
}

const badSince = (message: string) => gatewayError('BAD_USER_INPUT', message, { extensions: { argument: 'since' } });

/** The latest instant a JavaScript date holds, in ms either side of 1970. */
const MAX_INSTANT = 8.64e15;
/** Records a watermark may print (those at its instant; a batch of recordEvents at one instant is 10,000). */
const MAX_PRINTS = 100_000;
const MAX_PRINT_CHARS = 64;

/** The mark of a watermark given as `since` for `document`; BAD_USER_INPUT when it is not one, or another export's. */
export function decode(since: string, document: string): Mark {
  let value: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(since)) throw new Error('not base64url');
    value = JSON.parse(Buffer.from(since, 'base64url').toString('utf8'));
  } catch {
    throw badSince("'since' is not an export's watermark: give the watermark of a SUCCEEDED job as it is");
  }
  const v = value as { v?: unknown; doc?: unknown; at?: unknown; prints?: unknown } | null;
  const wellFormed =
    v !== null &&
    typeof v === 'object' &&
    v.v === VERSION &&
    typeof v.doc === 'string' &&
    // An instant a date holds (±8.64e15 ms), in whole milliseconds, as a watermark has it.
    (v.at === null || (typeof v.at === 'number' && Number.isInteger(v.at) && Math.abs(v.at) <= MAX_INSTANT)) &&
    Array.isArray(v.prints) &&
    v.prints.length <= MAX_PRINTS &&
    v.prints.every((p) => typeof p === 'string' && p.length <= MAX_PRINT_CHARS);
  if (!wellFormed) throw badSince("'since' is not an export's watermark: give the watermark of a SUCCEEDED job as it is");
  if (v.doc !== document) {
    throw badSince(
      "'since' is the watermark of another export: its query, variables or operation name differ from this one's (a watermark continues the export it came from)",
    );
  }
  return { at: v.at as number | null, prints: v.prints as string[] };
}

/** The listing of a table's row list, and its time field; null when the rows are no data listing's records. */
export function rowListingOf(projection: Projection): { spec: ListingSpec; fields: ReadonlySet<FieldNode> } | null {
  const streamed = projection.streamed;
  const first = streamed ? [...streamed.fields][0] : undefined;
  const spec = first ? LISTING_BY_FIELD.get(first.name.value) : undefined;
  return streamed && spec ? { spec, fields: streamed.fields } : null;
}

const WINDOW = new Set(['first', 'last', 'after', 'before']);

/**
 * Why a table cannot be pulled incrementally (null: it can): its rows must be a data listing's
 * records with a time field, streamed (so not given a window).
 */
export function whyNotIncremental(projection: Projection): string | null {
  const listing = rowListingOf(projection);
  const name = projection.rowList || 'the operation';
  if (!listing) {
    const why = projection.inMemory ?? `'${name}' is not one`;
    return `'since' needs the rows to be the records of a data listing with a time field (events, ratings, recordings, …): ${why}`;
  }
  if (!listing.spec.instant) return `'since' needs the rows' listing to have a time field; '${listing.spec.field}' has none`;
  if ([...listing.fields].some((f) => (f.arguments ?? []).some((a) => WINDOW.has(a.name.value)))) {
    return `'since' needs every record of '${name}': leave out its window (first, last, after, before)`;
  }
  return null;
}

/** The instant a literal or variable DateTime argument holds (null when it holds none). */
function instantArg(value: ValueNode, variables: Record<string, unknown> | null): number | null {
  const raw = value.kind === Kind.STRING ? value.value : value.kind === Kind.VARIABLE ? variables?.[value.name.value] : null;
  if (typeof raw !== 'string') return null;
  const ms = Date.parse(raw);
  return Number.isFinite(ms) ? ms : null;
}

/**
 * The query with the row list's listing read from `at` on (its `startTime`, inclusive, or the
 * document's own when later; never past the document's `endTime`): the upstream then serves only the pages of what is new, and the
 * lookahead and the plan ask for the same listing.
 */
export function narrowed(document: DocumentNode, fields: ReadonlySet<FieldNode>, at: number, variables: Record<string, unknown> | null) {
  return visit(document, {
    Field(node) {
      if (!fields.has(node)) return undefined;
      const arg = (name: string): number | null => {
        const given = (node.arguments ?? []).find((a) => a.name.value === name);
        return given ? instantArg(given.value, variables) : null;
      };
      const [own, end] = [arg('startTime'), arg('endTime')];
      // Past the document's own endTime nothing is new: its last instant is read (the upstream refuses a start after the end), and dropped.
      const from = Math.min(own !== null && own > at ? own : at, end ?? Infinity);
      const startTime: ArgumentNode = {
        kind: Kind.ARGUMENT,
        name: { kind: Kind.NAME, value: 'startTime' },
        value: { kind: Kind.STRING, value: new Date(from).toISOString() },
      };
      return { ...node, arguments: [...(node.arguments ?? []).filter((a) => a.name.value !== 'startTime'), startTime] };
    },
  });
}
