import { isAsyncIterable, processRegularResult, type Plugin } from 'graphql-yoga';

/**
 * Serialized JSON is produced in strings of about this length: V8 keeps a string over 128 kB in its
 * large-object space, in memory of its own fresh from the system, and on Node 24 `JSON.stringify` of a
 * 688 kB answer (then encoded into a buffer for the socket) took 3–4× the CPU of the same answer in
 * pieces (docs/measured.md).
 */
const PIECE_CHARS = 32 * 1024;

const omitted = (value: unknown): boolean => value === undefined || typeof value === 'function' || typeof value === 'symbol';

/** An array or an object JSON.stringify walks itself (no toJSON, a plain prototype). */
function walkable(value: object): boolean {
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  if (Array.isArray(value)) return true;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Appends the JSON text of `value` to `out` in pieces: an object member by member; an array's elements
 * in runs sized from the first element's length (each run one native `JSON.stringify`), or, when the
 * first alone is longer than a piece, the first as it was measured and the others one by one.
 * Concatenated, the pieces are `JSON.stringify(value)`.
 */
function write(value: unknown, out: string[]): void {
  if (value === null || typeof value !== 'object' || !walkable(value)) {
    out.push(JSON.stringify(value));
    return;
  }
  if (Array.isArray(value)) {
    const items: readonly unknown[] = value;
    if (items.length === 0) {
      out.push('[]');
      return;
    }
    const first = JSON.stringify(omitted(items[0]) ? null : items[0]);
    if (first.length > PIECE_CHARS) {
      // The first element's text is made already: a piece of its own, longer than most.
      out.push('[', first);
      for (let i = 1; i < items.length; i++) {
        out.push(',');
        const item = items[i];
        if (omitted(item)) out.push('null');
        else write(item, out);
      }
      out.push(']');
      return;
    }
    const run = Math.max(1, Math.floor(PIECE_CHARS / Math.max(1, first.length)));
    out.push('[', first);
    for (let i = 1; i < items.length; i += run) out.push(',', JSON.stringify(items.slice(i, i + run)).slice(1, -1));
    out.push(']');
    return;
  }
  const record = value as Record<string, unknown>;
  let first = true;
  out.push('{');
  for (const key of Object.keys(record)) {
    const member = record[key];
    if (omitted(member)) continue;
    out.push(`${first ? '' : ','}${JSON.stringify(key)}:`);
    first = false;
    write(member, out);
  }
  out.push('}');
}

/** `Buffer.from(JSON.stringify(value))`, the same bytes, without a string of the whole answer's length. */
export function jsonBytes(value: unknown): Buffer {
  const pieces: string[] = [];
  write(value, pieces);
  // Most answers are ASCII, whose UTF-8 is as long as the text: written at that length first. A piece
  // with any other character writes more bytes than it has characters (or is cut short at the end),
  // and the answer is written again at its exact UTF-8 length.
  let chars = 0;
  for (const piece of pieces) chars += piece.length;
  const ascii = Buffer.allocUnsafe(chars);
  let at = 0;
  for (const piece of pieces) {
    const written = ascii.write(piece, at);
    if (written !== piece.length) return utf8Bytes(pieces);
    at += written;
  }
  return ascii;
}

function utf8Bytes(pieces: readonly string[]): Buffer {
  let length = 0;
  for (const piece of pieces) length += Buffer.byteLength(piece);
  const bytes = Buffer.allocUnsafe(length);
  let at = 0;
  for (const piece of pieces) at += bytes.write(piece, at);
  return bytes;
}

/**
 * A JSON answer (Yoga's regular result processor: `application/json` or
 * `application/graphql-response+json`) written by jsonBytes. Yoga serializes with the result's own
 * `stringify` and hands what it returns to `new Response(…)`, which takes bytes as well as text; the
 * status, headers and bytes are those of `JSON.stringify`.
 */
export function useJsonAnswer(): Plugin {
  return {
    onResultProcess({ result, resultProcessor, setResult }) {
      if (resultProcessor !== processRegularResult || Array.isArray(result) || isAsyncIterable(result)) return;
      // Yoga's type says text; Response takes the buffer as it is (Content-Length is its length).
      const stringify = jsonBytes as unknown as (r: unknown) => string;
      setResult({ ...result, stringify });
    },
  };
}
