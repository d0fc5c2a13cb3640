import { describe, expect, it } from 'vitest';
import { DASHBOARD, sequentialRounds } from './helpers/dashboard.ts';
import { startStack } from './helpers/stack.ts';

const EXP = 'exp_movie01';

/** The dashboard with each room's fields behind a fragment on the Node interface. */
const BEHIND_NODE = DASHBOARD.replace(
  /edges \{ node \{\n\s*roomId status\n([\s\S]*?)\n {6}\} \}\n {4}\}/,
  (_all, rest: string) => `edges { node { ... on Node { ... on Room {\n        roomId status\n${rest}\n      } } } }\n    }`,
);

describe('the lookahead', () => {
  it('reads fragments on an object type inside one on an interface: the dashboard costs the same, in one round', async () => {
    expect(BEHIND_NODE).toContain('... on Node { ... on Room {');
    const stack = await startStack({ rooms: 2, participantsPerRoom: 2, latencyMs: 150 });
    try {
      // A key's first request in a process goes alone until the upstream confirms the key.
      await stack.gql(`{ experiment(id: "${EXP}") { name } }`);
      stack.sim.stats.reset();
      const res = await stack.gql(BEHIND_NODE, { variables: { id: EXP } });
      expect(res.body.errors).toBeUndefined();
      // The experiment, rooms, participants, events and sparse ratings: one request each.
      expect(stack.sim.stats.total).toBe(5);
      expect(sequentialRounds(stack.sim.stats.requests, 150)).toBe(1);
      const plain = await stack.gql(DASHBOARD, { variables: { id: EXP } });
      expect(res.body.data).toEqual(plain.body.data);
    } finally {
      await stack.close();
    }
  });
});
