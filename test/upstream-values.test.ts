import { describe, expect, it } from 'vitest';
import { recordsOf } from '../src/loaders/fetch.ts';
import { joined, roomOf } from '../src/upstream/values.ts';

describe('roomOf (the room of a record: one rule for the schema, the planner and the loaders)', () => {
  it('reads roomId, else the older sessionId, as a string; null when neither is one', () => {
    expect(
      [
        { roomId: 'r1', sessionId: 's1' },
        { sessionId: 's1' },
        { roomId: null, sessionId: 's1' },
        { roomId: '', sessionId: 's1' },
        { roomId: 7 },
        { roomId: { id: 'r1' }, sessionId: 's1' },
        { roomId: ['r1'] },
        {},
      ].map(roomOf),
    ).toEqual(['r1', 's1', 's1', '', '7', 's1', null, null]);
  });
});

describe('joined (a listing’s pages, or a body’s pieces, in one array)', () => {
  it('keeps every element in order, arrays among them as they are, and makes a new array each time', () => {
    const inner = [1, 2];
    const a = [{ id: 'a' }, inner];
    const b: unknown[] = [];
    const c = ['c', null, undefined];
    const out = joined([a, b, c]);
    expect(out).toStrictEqual([{ id: 'a' }, [1, 2], 'c', null, undefined]);
    expect(out[1]).toBe(inner);
    expect(out).toHaveLength(5);
    expect(Object.keys(out)).toStrictEqual(['0', '1', '2', '3', '4']);
    expect(out).not.toBe(a);
    expect(joined([])).toStrictEqual([]);
    expect(joined([[], []])).toStrictEqual([]);
    expect(joined([a])).not.toBe(a);
  });
});

describe('recordsOf (the records of an upstream envelope)', () => {
  const envelope = (data: unknown) => ({ data, metadata: {}, rateLimit: null, bytes: 0 });
  it('gives a list of records as it is, leaves out what is no record, and wraps a single object', () => {
    const records = [{ id: 'e1' }, { id: 'e2' }];
    expect(recordsOf(envelope(records))).toBe(records);
    expect(recordsOf(envelope([{ id: 'e1' }, null, 3, ['x'], 'y', { id: 'e2' }]))).toStrictEqual([{ id: 'e1' }, { id: 'e2' }]);
    expect(recordsOf(envelope({ id: 'x1' }))).toStrictEqual([{ id: 'x1' }]);
    expect(recordsOf(envelope(null))).toStrictEqual([]);
    expect(recordsOf(envelope('text'))).toStrictEqual([]);
  });
});
