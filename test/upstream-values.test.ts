import { describe, expect, it } from 'vitest';
import { roomOf } from '../src/upstream/values.ts';

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
