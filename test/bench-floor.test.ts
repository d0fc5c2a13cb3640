import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Children } from '../bench/lib/children.ts';
import { floorCpu, type FloorBytes } from '../bench/lib/floor.ts';

const BYTES: FloorBytes = {
  bodies: [JSON.stringify({ status: 'success', data: Array.from({ length: 200 }, (_, i) => ({ id: `evt_${i}` })) })],
  answer: JSON.stringify({ data: { events: Array.from({ length: 200 }, (_, i) => ({ id: `evt_${i}` })) } }),
};

describe("the bench's floor (JSON.parse of the bodies, JSON.stringify of the answer)", () => {
  it('gives the best pass and the mean of all passes, the mean no less than the best', () => {
    const { best, mean } = floorCpu(BYTES, 5, 1);
    expect(Number.isFinite(best) && best >= 0).toBe(true);
    expect(mean).toBeGreaterThanOrEqual(best);
  });

  it('is measured in a process of its own by bench/servers/floor-loop.ts, which refuses arguments it cannot use', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hsgql-floor-'));
    const file = join(dir, 'floor-bytes.json');
    writeFileSync(file, JSON.stringify(BYTES));
    const children = new Children(dir);
    try {
      const refused = children.spawnNode('floor-loop-refused', ['--import', 'tsx', 'bench/servers/floor-loop.ts', file, 'many']);
      expect(await refused.exited).toBe(2);
      expect(readFileSync(refused.logPath, 'utf8')).toBe('usage: floor-loop.ts FILE PASSES WARM\n');
      const loop = children.spawnNode('floor-loop', ['--import', 'tsx', 'bench/servers/floor-loop.ts', file, '5', '1']);
      const [, json = '{}'] = await loop.waitForOutput(/floor-loop (\{.*\})/);
      const measured = JSON.parse(json) as { best: number; mean: number };
      expect(Object.keys(measured).sort()).toEqual(['best', 'mean']);
      expect(measured.mean).toBeGreaterThanOrEqual(measured.best);
      // It waits to be stopped, so that the bench reads its line before it ends.
      expect(loop.running).toBe(true);
    } finally {
      await children.stopAll();
    }
  });
});
