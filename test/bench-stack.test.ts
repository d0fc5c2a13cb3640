import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startCommandOf } from '../bench/lib/stack.ts';

const checkoutWith = (start: string): string => {
  const dir = mkdtempSync(join(tmpdir(), 'hsgql-start-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ scripts: { start } }));
  return dir;
};

describe('the bench runs gateways as npm start does', () => {
  it("reads this checkout's start script: src/main.ts in production mode", () => {
    expect(startCommandOf('.')).toEqual({ entry: 'src/main.ts', nodeEnv: 'production' });
  });

  it('reads an older checkout that sets no NODE_ENV, and refuses a script it cannot run as it is', () => {
    expect(startCommandOf(checkoutWith('tsx src/main.ts'))).toEqual({ entry: 'src/main.ts', nodeEnv: null });
    expect(() => startCommandOf(checkoutWith('node dist/main.js'))).toThrow(/npm start runs 'node dist\/main.js'/);
  });
});
