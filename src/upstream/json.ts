/**
 * Bodies up to this size are decoded and parsed whole; a larger one is parsed in pieces of about this
 * size. V8 keeps a string over 128 kB in its large-object space, each in memory of its own fresh
 * from the system: decoding a 425 kB page of events into one string cost more CPU than parsing it
 * (docs/performance.md), and pieces this small are allocated where memory is reused.
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

/** The largest array that is the value of a member of the top-level object, found by one scan. */
interface Cut {
  /** The member's key. */
  key: string;
  /** Offsets of the array's `[` and `]`. */
  open: number;
  close: number;
  /** Offsets of the commas between its elements where a piece ends (one per ~PIECE_BYTES). */
  splits: number[];
}

/**
 * `JSON.parse(body.toString('utf8'))`, the same value (or the same throw), without one string of the
 * body's whole length when the body is an object whose largest member is a long array (the upstream's
 * `{"status":…,"data":[…],…}`): the object without that array is parsed, then the array's elements in
 * pieces of about PIECE_BYTES. Pieces end only at a comma between elements, an ASCII byte outside any
 * string, so no UTF-8 sequence is split. Anything unexpected falls back to parsing the whole.
 */
export function parseJsonBytes(body: Buffer): unknown {
  if (body.length <= PIECE_BYTES * 2) return JSON.parse(body.toString('utf8'));
  const cut = scan(body);
  if (cut === null || cut.key === '__proto__') return JSON.parse(body.toString('utf8'));
  try {
    const outer: unknown = JSON.parse(body.toString('utf8', 0, cut.open + 1) + body.toString('utf8', cut.close));
    if (outer === null || typeof outer !== 'object' || Array.isArray(outer)) return JSON.parse(body.toString('utf8'));
    const list: unknown = (outer as Record<string, unknown>)[cut.key];
    if (!Array.isArray(list) || list.length !== 0) return JSON.parse(body.toString('utf8'));
    let start = cut.open + 1;
    for (const end of [...cut.splits, cut.close]) {
      const piece = JSON.parse(`[${body.toString('utf8', start, end)}]`) as unknown[];
      for (const item of piece) list.push(item);
      start = end + 1;
    }
    return outer;
  } catch {
    // The body is no JSON (or not as scanned): the whole throws as JSON.parse does.
    return JSON.parse(body.toString('utf8'));
  }
}

/**
 * Where parseJsonBytes cuts `body`: the offsets of the split array's `[`, of the commas that end its
 * pieces, and of its `]`; null when it parses the body whole.
 */
export function pieceBounds(body: Buffer): number[] | null {
  if (body.length <= PIECE_BYTES * 2) return null;
  const cut = scan(body);
  return cut === null || cut.key === '__proto__' ? null : [cut.open, ...cut.splits, cut.close];
}

/** One pass over the bytes: the top-level object's largest array member and where to split it; null when there is none worth it or the key repeats. */
function scan(body: Buffer): Cut | null {
  const n = body.length;
  let i = 0;
  while (i < n && body[i] !== OPEN_BRACE) {
    const c = body[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return null;
    i++;
  }
  if (i === n) return null;
  const keys = new Set<string>();
  let best: Cut | null = null;
  let depth = 0;
  let lastStringStart = -1;
  let lastStringEnd = -1;
  let key = '';
  let arrayOpen = -1;
  let pieceStart = 0;
  let splits: number[] = [];
  for (; i < n; i++) {
    const c = body[i];
    if (c === QUOTE) {
      const start = i;
      for (i++; i < n; i++) {
        const s = body[i];
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
      if (depth === 1) {
        lastStringStart = start;
        lastStringEnd = i;
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
      if (depth === 2 && c === OPEN_BRACKET) {
        arrayOpen = i;
        pieceStart = i;
        splits = [];
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (depth === 2 && c === CLOSE_BRACKET && arrayOpen >= 0) {
        if (best === null || i - arrayOpen > best.close - best.open) best = { key, open: arrayOpen, close: i, splits };
        arrayOpen = -1;
      }
      depth--;
      if (depth === 0) break;
    } else if (c === COMMA) {
      if (depth === 2 && arrayOpen >= 0 && i - pieceStart >= PIECE_BYTES) {
        splits.push(i);
        pieceStart = i;
      }
    } else if (c === COLON && depth === 1 && lastStringEnd >= 0) {
      key = JSON.parse(body.toString('utf8', lastStringStart, lastStringEnd + 1)) as string;
      if (keys.has(key)) return null;
      keys.add(key);
    }
  }
  if (depth !== 0 || best === null || best.splits.length === 0) return null;
  return best;
}
