import { isPlainSegment } from './routes.ts';

/**
 * Lenient readers of upstream values: a missing or mistyped field is null, never a crash. The schema,
 * the loaders and the live feeds read records with these.
 */

/** An upstream record (or any JSON object the upstream sent). */
export type Rec = Record<string, unknown>;

/**
 * The lists' elements in one new array, in order, as `[].concat(...lists)` gives them (arrays among
 * them stay elements) but copied by index. `Array.prototype.concat` is not fast here: apache-arrow
 * (src/tables/arrow.ts) defines `Symbol.isConcatSpreadable` on its classes, and once it is loaded V8
 * takes concat's slow path in the whole process (4 pages of 1,000 records: 3 µs before, 1.2 ms after).
 * The lint forbids concat in src for that reason.
 */
export function joined<T>(lists: readonly (readonly T[])[]): T[] {
  let length = 0;
  for (const list of lists) length += list.length;
  const out = new Array<T>(length);
  let at = 0;
  for (const list of lists) for (let i = 0; i < list.length; i++) out[at++] = list[i] as T;
  return out;
}

export const str = (v: unknown): string | null =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;

export function float(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
}

export function int(v: unknown): number | null {
  const n = float(v);
  return n !== null && Number.isSafeInteger(Math.round(n)) ? Math.round(n) : null;
}

export const bool = (v: unknown): boolean | null => (typeof v === 'boolean' ? v : v === 'true' ? true : v === 'false' ? false : null);

export function date(v: unknown): Date | null {
  if (typeof v !== 'string' && typeof v !== 'number') return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

export const strList = (v: unknown): string[] | null => (Array.isArray(v) ? v.map(str).filter((s): s is string => s !== null) : null);

export const json = (v: unknown): unknown => (v === undefined ? null : v);

export const obj = (v: unknown): Rec | null => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Rec) : null);

/** The room of a record: `roomId`, or `sessionId` on older payloads. */
export const roomOf = (r: Rec): string | null => str(r.roomId) ?? str(r.sessionId);

/** An id a back-link can follow: one that would address another route upstream (blank, `..`) links nowhere. */
export const linkable = (id: string | null): string | null => (id !== null && isPlainSegment(id) ? id : null);

/** The objects of a list (other entries dropped); an absent or mistyped list is empty. */
export const objects = (v: unknown): Rec[] =>
  Array.isArray(v)
    ? v.flatMap((x): Rec[] => {
        const o = obj(x);
        return o ? [o] : [];
      })
    : [];
