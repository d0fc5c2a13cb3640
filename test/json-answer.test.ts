import { describe, expect, it } from 'vitest';
import { jsonBytes } from '../src/plugins/use-json-answer.ts';

describe('jsonBytes (a JSON answer written in pieces: the bytes of JSON.stringify)', () => {
  it('writes exactly Buffer.from(JSON.stringify(value)) for large and awkward values', () => {
    const edge = (i: number) => ({
      cursor: `c${i}`,
      node: { id: `evt_${i}`, onset: i / 3, label: i % 5 === 0 ? 'Zoë "quoted" \\ 👋\n' : null },
    });
    const rooms = Array.from({ length: 20 }, (_, r) => ({
      node: { roomId: `room_${r}`, events: { edges: Array.from({ length: 300 }, (_, i) => edge(i)) } },
    }));
    const sparse: unknown[] = [1];
    sparse[3] = 4;
    const bare = Object.assign(Object.create(null) as object, { a: 1 });
    const values: unknown[] = [
      { data: { experiment: { name: 'x', rooms: { totalCount: 20, edges: rooms } } }, extensions: { upstream: { requests: 9 } } },
      { data: { huge: [{ big: Array.from({ length: 5000 }, (_, i) => `item ${i}`) }, 'tail', { small: 1 }] } },
      // A first element longer than a piece, then elements JSON writes as null.
      [Array.from({ length: 5000 }, (_, i) => `item ${i}`), undefined, () => 1, { after: [1, 2] }],
      {
        data: {
          list: [undefined, () => 1, Symbol('s'), 2],
          skipped: undefined,
          fn: () => 1,
          date: new Date(0),
          nested: { toJSON: () => 'J' },
        },
      },
      { data: { sparse, bare, empty: [], emptyObject: {}, n: null, t: true, f: -0.5 } },
      Array.from({ length: 4000 }, (_, i) => (i % 2 ? { i } : [i, `${i}`])),
      // ASCII but for one character: at the very end (its piece is cut short), or at the start (it fits).
      { data: { events: Array.from({ length: 3000 }, (_, i) => ({ id: `evt_${i}` })), last: 'café' } },
      { first: '€', data: { events: Array.from({ length: 3000 }, (_, i) => ({ id: `evt_${i}` })) } },
      'text',
      7,
      null,
    ];
    for (const value of values) expect(jsonBytes(value).equals(Buffer.from(JSON.stringify(value)))).toBe(true);
    expect(jsonBytes(values[0]).length).toBe(Buffer.byteLength(JSON.stringify(values[0])));
  });
});
