import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildGatewayBundle, GATEWAY_BUNDLE, inputsUnchanged, recordInputs } from './helpers/bundle.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A folder with two files, modified a minute ago, and where to record them. */
function inputs(): { root: string; record: string } {
  const root = mkdtempSync(join(tmpdir(), 'bundle-inputs-'));
  dirs.push(root);
  const past = new Date(Date.now() - 60_000);
  for (const name of ['a.ts', 'b.ts']) {
    writeFileSync(join(root, name), `export const name = '${name}';\n`);
    utimesSync(join(root, name), past, past);
  }
  return { root, record: join(root, 'inputs.json') };
}

describe("the gateway processes' bundle (test/helpers/bundle.ts)", () => {
  it('is kept from the run before when its inputs are as they were (global setup built it)', async () => {
    expect(await buildGatewayBundle()).toBe(false);
  });

  it('is ASCII, so that V8 keeps its source one byte a character', () => {
    const bytes = readFileSync(GATEWAY_BUNDLE);
    expect(bytes.length).toBeGreaterThan(1_000_000);
    expect(bytes.findIndex((byte) => byte > 0x7f)).toBe(-1);
  });

  it('is built again when an input changed, went missing, or another esbuild or Node built it', async () => {
    const { root, record } = inputs();
    expect(await inputsUnchanged(record, root, 'esbuild 1')).toBe(false);
    expect(await recordInputs(record, root, ['a.ts', 'b.ts'], 'esbuild 1', Date.now())).toBe(true);
    expect(await inputsUnchanged(record, root, 'esbuild 1')).toBe(true);
    expect(await inputsUnchanged(record, root, 'esbuild 2')).toBe(false);

    // The same size, another time.
    writeFileSync(join(root, 'a.ts'), `export const name = 'A.ts';\n`);
    expect(await inputsUnchanged(record, root, 'esbuild 1')).toBe(false);
    expect(await recordInputs(record, root, ['a.ts', 'b.ts'], 'esbuild 1', Date.now() + 1_000)).toBe(true);
    expect(await inputsUnchanged(record, root, 'esbuild 1')).toBe(true);
    rmSync(join(root, 'b.ts'));
    expect(await inputsUnchanged(record, root, 'esbuild 1')).toBe(false);
  });

  it('records nothing when an input was modified once the build started, or is missing', async () => {
    const { root, record } = inputs();
    const started = Date.now() - 1_000;
    writeFileSync(join(root, 'b.ts'), `export const name = 'edited';\n`);
    expect(await recordInputs(record, root, ['a.ts', 'b.ts'], 'esbuild 1', started)).toBe(false);
    expect(await recordInputs(record, root, ['a.ts', 'c.ts'], 'esbuild 1', Date.now())).toBe(false);
    expect(await inputsUnchanged(record, root, 'esbuild 1')).toBe(false);
  });
});
