import { joined } from './values.ts';

/**
 * Bodies up to this size are decoded and parsed whole; a larger one is parsed in pieces of about this
 * size. V8 keeps a string over 128 kB in its large-object space, each in memory of its own fresh
 * from the system: decoding a 425 kB page of events into one string cost more CPU than parsing it
 * (docs/measured.md), and pieces this small are allocated where memory is reused.
 */
export const PIECE_BYTES = 64 * 1024;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

const isSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * `JSON.parse(body.toString('utf8'))`, the same value (or the same throw), without one string of the
 * body's whole length when the body is an object with an array member (the upstream's
 * `{"status":…,"data":[…],…}`): the object without that array is parsed, then the array's elements in
 * pieces of about PIECE_BYTES. Anything unexpected falls back to parsing the whole.
 */
export function parseJsonBytes(body: Buffer): unknown {
  if (body.length > PIECE_BYTES * 2) {
    try {
      const parsed = inPieces(body);
      if (parsed !== null) return parsed.value;
    } catch {
      // The body is no JSON: the whole throws as JSON.parse does.
    }
  }
  return JSON.parse(body.toString('utf8'));
}

/**
 * Where parseJsonBytes cuts `body`: the offsets of the split array's `[`, of the commas that end its
 * pieces, and of its `]`; null when it parses the body whole.
 */
export function pieceBounds(body: Buffer): number[] | null {
  if (body.length <= PIECE_BYTES * 2) return null;
  try {
    return inPieces(body)?.bounds ?? null;
  } catch {
    return null;
  }
}

/** The top-level object's first member whose value is an array: its key, the offset of its `[`, and the keys before it. */
interface Head {
  key: string;
  open: number;
  keys: Set<string>;
}

/**
 * The value of `body` parsed in pieces, and where it was cut; null when it is not an object with an
 * array member worth cutting (or a key repeats: JSON.parse keeps the last). Throws when it is no JSON.
 *
 * A piece ends at a comma between the array's elements, found the cheap way when it can be: the next
 * `},{"k":` (k the first element's first key) at least PIECE_BYTES on, and for the last piece the body's
 * last `}]`. JSON.parse checks each guess: the text from an element's start to a byte, bracketed, is an
 * array only when that byte ends an element at the array's own level (a comma or `]` inside a string or
 * an element leaves the piece unterminated or unbalanced; a `]` past the array's end leaves text after
 * it). A guess that fails costs that piece's parse; then each byte of the rest is walked (`exactEnd`).
 */
function inPieces(body: Buffer): { value: unknown; bounds: number[] } | null {
  const head = headOf(body);
  if (head === null || head.key === '__proto__') return null;
  const { open } = head;
  const marker = elementMarker(body, open);
  const lastEnd = body.lastIndexOf('}]');
  const guessedClose = lastEnd > open ? lastEnd + 1 : -1;
  const pieces: unknown[][] = [];
  const bounds = [open];
  let exact = false;
  let start = open + 1;
  for (;;) {
    let end = -1;
    let piece: unknown[] | null = null;
    if (!exact) {
      const found = marker === null ? -1 : body.indexOf(marker, start + PIECE_BYTES);
      if (found >= 0 && (guessedClose < 0 || found < guessedClose)) end = found + 1;
      else if (guessedClose > start && guessedClose - start <= 2 * PIECE_BYTES) end = guessedClose;
      if (end > start) {
        try {
          piece = parseRun(body, start, end);
        } catch {
          exact = true;
        }
      } else exact = true;
    }
    if (piece === null) {
      end = exactEnd(body, start);
      if (end < 0) return null;
      piece = parseRun(body, start, end);
    }
    // An element follows every comma: an empty piece is `[…,]` unless it is the whole of `[ ]`.
    if (piece.length === 0 && (bounds.length > 1 || body[end] !== CLOSE_BRACKET)) throw new SyntaxError('Unexpected token in JSON');
    pieces.push(piece);
    bounds.push(end);
    if (body[end] === CLOSE_BRACKET) break;
    start = end + 1;
  }
  const close = bounds.at(-1) ?? -1;
  if (!tailKeysUnique(body, close + 1, head.keys)) return null;
  if (bounds.length < 3) return null;
  const outer: unknown = JSON.parse(body.toString('utf8', 0, open + 1) + body.toString('utf8', close));
  const record = outer as Record<string, unknown>;
  // Defensive: the head scan and JSON.parse agree unless the body is not what was scanned.
  if (outer === null || typeof outer !== 'object' || !Array.isArray(record[head.key])) return null;
  record[head.key] = joined(pieces);
  return { value: outer, bounds };
}

/**
 * `JSON.parse('[' + text of body[start, end) + ']')`: the bytes before `start` and at `end` (a `[` or comma,
 * and a comma or `]`) are made the brackets for the decoding, then put back, so that the piece is one
 * string with no copy of it to join.
 */
function parseRun(body: Buffer, start: number, end: number): unknown[] {
  const before = body[start - 1] ?? OPEN_BRACKET;
  const after = body[end] ?? CLOSE_BRACKET;
  body[start - 1] = OPEN_BRACKET;
  body[end] = CLOSE_BRACKET;
  try {
    return JSON.parse(body.toString('utf8', start - 1, end + 1)) as unknown[];
  } finally {
    body[start - 1] = before;
    body[end] = after;
  }
}

/** The bytes that start every element but the first when the elements are objects with the same first key: `},{"key":`. */
function elementMarker(body: Buffer, open: number): Buffer | null {
  let i = open + 1;
  while (isSpace(body[i])) i++;
  if (body[i] !== OPEN_BRACE || body[i + 1] !== QUOTE) return null;
  const keyStart = i + 1;
  for (i = keyStart + 1; i < body.length && body[i] !== QUOTE; i++) if (body[i] === BACKSLASH) i++;
  if (body[i + 1] !== COLON) return Buffer.from('},{');
  return Buffer.concat([Buffer.from('},{'), body.subarray(keyStart, i + 2)]);
}

/** One walk over the top-level object up to its first member whose value is an array. */
function headOf(body: Buffer): Head | null {
  const n = body.length;
  let i = 0;
  while (isSpace(body[i])) i++;
  if (body[i] !== OPEN_BRACE) return null;
  const keys = new Set<string>();
  let depth = 0;
  let lastStringStart = -1;
  let lastStringEnd = -1;
  let key: string | null = null;
  for (; i < n; i++) {
    const c = body[i];
    if (c === QUOTE) {
      const start = i;
      i = stringEnd(body, i);
      if (depth === 1) {
        lastStringStart = start;
        lastStringEnd = i;
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
      if (depth === 2 && c === OPEN_BRACKET && key !== null) return { key, open: i, keys };
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
      if (depth === 0) return null;
    } else if (c === COLON && depth === 1 && lastStringEnd >= 0) {
      key = JSON.parse(body.toString('utf8', lastStringStart, lastStringEnd + 1)) as string;
      if (keys.has(key)) return null;
      keys.add(key);
    } else if (c === COMMA && depth === 1) key = null;
  }
  return null;
}

/**
 * From `start`, an element's start inside the array (outside strings), the offset of the first comma
 * between elements at least PIECE_BYTES on, or of the array's `]`; -1 when the body ends first.
 */
function exactEnd(body: Buffer, start: number): number {
  const n = body.length;
  let depth = 0;
  for (let i = start; i < n; i++) {
    const c = body[i];
    if (c === QUOTE) {
      for (i++; i < n; i++) {
        const s = body[i];
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (depth === 0) return c === CLOSE_BRACKET ? i : -1;
      depth--;
    } else if (c === COMMA && depth === 0 && i - start >= PIECE_BYTES) return i;
  }
  return -1;
}

/** Where the string starting at `at` (its opening quote) ends: its closing quote, or the body's end. */
function stringEnd(body: Buffer, at: number): number {
  const n = body.length;
  let i = at + 1;
  for (; i < n; i++) {
    const s = body[i];
    if (s === BACKSLASH) i++;
    else if (s === QUOTE) break;
  }
  return i;
}

/** Whether the members of the top-level object after the array (from `from`, just past its `]`) repeat none of `keys`. */
function tailKeysUnique(body: Buffer, from: number, keys: Set<string>): boolean {
  const n = body.length;
  let depth = 1;
  let lastStringStart = -1;
  let lastStringEnd = -1;
  for (let i = from; i < n; i++) {
    const c = body[i];
    if (c === QUOTE) {
      const start = i;
      i = stringEnd(body, i);
      if (depth === 1) {
        lastStringStart = start;
        lastStringEnd = i;
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
      if (depth === 0) return true;
    } else if (c === COLON && depth === 1 && lastStringEnd >= 0) {
      const key = JSON.parse(body.toString('utf8', lastStringStart, lastStringEnd + 1)) as string;
      if (keys.has(key)) return false;
      keys.add(key);
    }
  }
  return true;
}
