import { describe, expect, it } from 'vitest';
import { parseJsonBytes, pieceBounds, PIECE_BYTES } from '../src/upstream/json.ts';

/** An upstream-shaped page: records with non-ASCII text, escapes, brackets and commas inside strings, nested values. */
function page(count: number, space = ''): Buffer {
  const data = Array.from({ length: count }, (_, i) => ({
    id: `evt_${i}`,
    onset: i * 1.5 - 100,
    text: i % 3 === 0 ? 'Zoë said "],[" \\ {"data":[]} — 👋' : `plain ${i}`,
    tags: [i, [i, { deep: ',' }], null, true],
    data: { nested: { list: [1, 2, 3], empty: [] } },
  }));
  return Buffer.from(
    JSON.stringify({ status: 'success', data, metadata: { note: '[not, this]' }, pagination: { total: count } }, null, space),
  );
}

describe('parseJsonBytes (a large upstream body parsed in pieces, the same value as JSON.parse)', () => {
  it('parses a 4,000-record page to exactly what JSON.parse gives, cut only at commas between elements', () => {
    for (const body of [page(4000), page(4000, ' ')]) {
      const expected: unknown = JSON.parse(body.toString('utf8'));
      const parsed = parseJsonBytes(body);
      expect(parsed).toStrictEqual(expected);
      expect(JSON.stringify(parsed)).toBe(JSON.stringify(expected));
      const bounds = pieceBounds(body) ?? [];
      expect(bounds.length).toBeGreaterThan(3);
      expect(body.toString('latin1', bounds[0], (bounds[0] ?? 0) + 1)).toBe('[');
      expect(body.toString('latin1', bounds.at(-1), (bounds.at(-1) ?? 0) + 1)).toBe(']');
      for (const comma of bounds.slice(1, -1)) {
        expect(body.toString('latin1', comma - 1, comma + 2)).toMatch(/^[}\s],[\s{]$/);
      }
      for (let i = 1; i < bounds.length - 1; i++) expect((bounds[i] ?? 0) - (bounds[i - 1] ?? 0)).toBeGreaterThanOrEqual(PIECE_BYTES);
    }
  });

  it('cuts where a guess at the next element (`},{"id":`, the last `}]`) lands inside an element or past the array, as JSON.parse reads it', () => {
    // Elements whose nested lists hold objects with the same first key, and metadata with a list of objects after the array.
    const data = Array.from({ length: 1000 }, (_, i) => ({
      id: `r${i}`,
      items: [...Array.from({ length: 10 }, (_, k) => ({ id: k })), { id: `b${i}`, note: '},{"id":' }],
      text: i % 2 === 0 ? 'Zoë' : '}]',
    }));
    const body = Buffer.from(JSON.stringify({ status: 'success', data, metadata: { notes: [{ id: 1 }, { id: 2 }] } }));
    const expected: unknown = JSON.parse(body.toString('utf8'));
    const parsed = parseJsonBytes(body);
    expect(parsed).toStrictEqual(expected);
    expect(JSON.stringify(parsed)).toBe(body.toString('utf8'));
    const bounds = pieceBounds(body) ?? [];
    expect(bounds.length).toBeGreaterThan(3);
    // Every cut ends an element of the data list: the elements before it, bracketed, parse as they are.
    const start = bounds[0] ?? 0;
    for (const cut of bounds.slice(1)) {
      const before = JSON.parse(`${body.toString('utf8', start, cut)}]`) as unknown[];
      expect(before).toStrictEqual(data.slice(0, before.length));
    }
    expect(bounds.at(-1)).toBe(body.indexOf('],"metadata"'));
    // The body is left as it was.
    expect(body.toString('utf8')).toBe(JSON.stringify(expected));
  });

  it('parses small bodies, arrays and scalars whole', () => {
    for (const text of ['{"status":"success","data":[1,2]}', '[1,"ü"]', '"x"', '7', 'null', ' {"a" : [ ] } ']) {
      expect(pieceBounds(Buffer.from(text))).toBeNull();
      expect(parseJsonBytes(Buffer.from(text))).toStrictEqual(JSON.parse(text));
    }
  });

  it('keeps JSON.parse’s answer where the cut would change it: a repeated key, __proto__, a top-level array', () => {
    const big = JSON.stringify(Array.from({ length: 20_000 }, (_, i) => i));
    const cases = [
      `{"data":${big},"data":[1]}`,
      `{"data":[1],"data":${big}}`,
      `{"__proto__":${big},"status":"success"}`,
      `[${big}]`,
      `{"a":{"data":${big}}}`,
      `{"status":"success","data":${big},"metadata":{"x":1},"data":[]}`,
      `{"warnings":[],"data":${big}}`,
    ];
    for (const text of cases) {
      const parsed = parseJsonBytes(Buffer.from(text));
      expect(parsed).toStrictEqual(JSON.parse(text));
      expect(JSON.stringify(parsed)).toBe(JSON.stringify(JSON.parse(text)));
    }
    expect(pieceBounds(Buffer.from(cases[0] ?? ''))).toBeNull();
    expect(pieceBounds(Buffer.from(cases[2] ?? ''))).toBeNull();
    expect(Object.getPrototypeOf(parseJsonBytes(Buffer.from(cases[2] ?? '')))).toBe(Object.prototype);
  });

  it('throws JSON.parse’s SyntaxError for a body that is no JSON: cut short, a trailing comma, a bad element', () => {
    const body = page(4000).toString('utf8');
    const bad = [body.slice(0, -10), body.replace('}],"metadata"', '},],"metadata"'), body.replace('"onset":300', '"onset":3 00')];
    for (const text of bad) {
      expect(() => JSON.parse(text)).toThrow(SyntaxError);
      expect(() => parseJsonBytes(Buffer.from(text))).toThrow(SyntaxError);
    }
  });
});
