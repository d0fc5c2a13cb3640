import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { TestSpecification, Vitest } from 'vitest/node';
import SlowestFirst, { pathOf, SECONDS } from './sequencer.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

/** What BaseSequencer and SlowestFirst read of a file: its path and its project's settings. */
const spec = (path: string): TestSpecification =>
  ({ moduleId: `${ROOT}/${path}`, project: { name: '', config: { root: ROOT, isolate: false, sequence: { groupOrder: 0 } } } }) as never;

/** vitest's side of the sequencer: its settings, and a cache that knows no file (a fresh clone). */
const vitest = (sequence: { shuffle: boolean; seed: number }): Vitest =>
  ({
    config: { root: ROOT, sequence },
    cache: { getFileTestResults: () => undefined, getFileStats: () => undefined },
  }) as never;

describe('the test files’ order (test/sequencer.ts)', () => {
  it('names files that exist, slowest first', () => {
    expect(Object.keys(SECONDS).filter((path) => !existsSync(`${ROOT}/${path}`))).toEqual([]);
    const seconds = Object.values(SECONDS);
    expect(seconds).toEqual([...seconds].sort((a, b) => b - a));
  });

  it('starts the slowest files first, then the others in vitest’s order', async () => {
    const files = ['test/ids.test.ts', 'test/live.test.ts', 'test/docs.test.ts', 'test/exports-replicas.test.ts', 'test/exports.test.ts'];
    const sorted = await new SlowestFirst(vitest({ shuffle: false, seed: 1 })).sort(files.map(spec));
    expect(sorted.map(pathOf)).toEqual([
      'test/exports-replicas.test.ts',
      'test/exports.test.ts',
      'test/live.test.ts',
      'test/ids.test.ts',
      'test/docs.test.ts',
    ]);
  });

  it('shuffles them by the seed with --sequence.shuffle: the same seed, the same order', async () => {
    const files = Object.keys(SECONDS).map(spec);
    const order = async (seed: number): Promise<string[]> =>
      (await new SlowestFirst(vitest({ shuffle: true, seed })).sort(files)).map(pathOf);
    const [a, again, b] = [await order(7), await order(7), await order(8)];
    expect(a).toEqual(again);
    expect(a).not.toEqual(b);
    expect([...a].sort()).toEqual(Object.keys(SECONDS).sort());
    expect(a).not.toEqual(Object.keys(SECONDS));
  });
});
