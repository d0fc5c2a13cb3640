import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMetrics, OperationNames } from '../src/observability.ts';
import { stackPerTest } from './helpers/stack.ts';
import { FULL } from './helpers/simulator.ts';

/** A stack of the test's own, closed after it. */
const ownStack = stackPerTest();

// Issue 9, item 7: before, the first 200 operation names held their labels for the life of the process,
// and every later name (a legitimate one, a trusted document's) was counted as `other`.
describe('operation name labels', () => {
  it('gives a label up once its name has been idle, so later names are counted by name', () => {
    let now = 0;
    const dropped: string[] = [];
    const names = new OperationNames({ max: 3, idleMs: 600_000, pinned: ['Pinned'], now: () => now }, (n) => dropped.push(n));
    expect(['A', 'B', 'C'].map((n) => names.label(n))).toEqual(['A', 'B', 'C']);
    expect(names.label('D')).toBe('other');
    now = 300_000;
    expect(names.label('A')).toBe('A');
    now = 600_000;
    // B is the least recently seen and has been idle long enough: D takes its label.
    expect(names.label('D')).toBe('D');
    expect(dropped).toEqual(['B']);
    expect(names.label('E')).toBe('E');
    expect(dropped).toEqual(['B', 'C']);
    // A (seen at 300 000) is not idle yet: nothing left to give up.
    expect(names.label('F')).toBe('other');
    expect(names.label('Pinned')).toBe('Pinned');
  });

  it("removes a dropped name's series from the registry", async () => {
    let now = 0;
    const metrics = createMetrics({ max: 1, idleMs: 1_000, pinned: [], now: () => now });
    metrics.operation('First', 'ok', 0.01);
    now = 2_000;
    metrics.operation('Second', 'ok', 0.01);
    const text = await metrics.registry.metrics();
    expect(text).toContain('hsgql_operations_total{operation="Second",outcome="ok"} 1');
    expect(text).not.toContain('operation="First"');
  });

  it("always counts the trusted documents' operations by name", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'names-'));
    const documents = Object.fromEntries(Array.from({ length: 250 }, (_, i) => [`doc-${i}`, `query Op${i} { __typename }`]));
    const path = join(dir, 'trusted.json');
    writeFileSync(path, JSON.stringify(documents));
    const stack = await ownStack({}, { TRUSTED_DOCUMENTS: path });
    for (let i = 0; i < 250; i++) {
      const res = await fetch(`${stack.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': FULL },
        body: JSON.stringify({ documentId: `doc-${i}` }),
      });
      expect(res.status).toBe(200);
    }
    const text = await (await fetch(`${stack.url}/metrics`)).text();
    expect(text).toContain('hsgql_operations_total{operation="Op249",outcome="ok"} 1');
    expect(text).not.toContain('operation="other"');
  });
});
