import { auditServer } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './helpers/stack.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack.close());

describe('GraphQL over HTTP', () => {
  it('passes every audit of the graphql-http suite (MUST, SHOULD and MAY)', async () => {
    const results = await auditServer({ url: `${stack.url}/graphql` });
    const failing = results.filter((r) => r.status !== 'ok').map((r) => `${r.name}: ${'reason' in r ? r.reason : ''}`);
    expect(failing).toEqual([]);
    const count = (level: string) => results.filter((r) => r.name.startsWith(level)).length;
    expect([count('MUST'), count('SHOULD'), count('MAY')]).toEqual([13, 23, 25]);
  });
});
