import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { variables } from '../src/config.ts';
import { withVariablesTable } from '../scripts/print-config.ts';

const read = (path: string): string => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');
const readme = read('README.md');
const configuration = read('docs/configuration.md');

describe('README and docs', () => {
  it('docs/configuration.md holds the table src/config.ts declares (npm run config-docs), and the README links to it', async () => {
    expect(configuration).toBe(await withVariablesTable(configuration));
    // Read back apart from the script that writes it: one row per variable, with its default.
    const rows = configuration.split('\n').filter((line) => line.startsWith('| `'));
    expect(rows.map((row) => /^\| `([A-Z0-9_]+)`/.exec(row)?.[1])).toEqual(variables.map((v) => v.env));
    for (const [i, v] of variables.entries()) expect(rows[i]?.split('|')[2]?.trim(), v.env).toBe(`\`${v.fallback ?? '(unset)'}\``);
    expect(readme).toContain('](docs/configuration.md)');
  });

  it('restate a default only as src/config.ts declares it', () => {
    const docs = readdirSync(new URL('../docs', import.meta.url)).filter((file) => file.endsWith('.md') && file !== 'configuration.md');
    const restated: { where: string; name: string; value: string }[] = [];
    for (const where of ['README.md', ...docs.map((file) => `docs/${file}`)]) {
      const text = read(where);
      // `PORT` (default 4000), `UPSTREAM_BUDGET` (300), `UPSTREAM_BUDGET`, 300, `UPSTREAM_MAX_BODY_BYTES` (32 MiB, `REDIS_TIMEOUT_MS` (200 ms)
      for (const [, name = '', number = '', unit] of text.matchAll(
        /`([A-Z][A-Z0-9_]+)`(?: \((?:default )?|, )(\d[\d,]*)(?: (ms|MiB))?(?=[),;])/g,
      ))
        restated.push({ where, name, value: String(Number(number.replaceAll(',', '')) * (unit === 'MiB' ? 1_048_576 : 1)) });
      // `CORS_ORIGINS` is `*` by default
      for (const [, name = '', value = ''] of text.matchAll(/`([A-Z][A-Z0-9_]+)` is `([^`]+)` by default/g))
        restated.push({ where, name, value });
    }
    const declared = restated.filter(({ name }) => variables.some((v) => v.env === name));
    expect(declared.length).toBeGreaterThanOrEqual(10);
    for (const { where, name, value } of declared)
      expect(value, `${where}: ${name}`).toBe(variables.find((v) => v.env === name)?.fallback ?? '(unset)');
  });

  it('lists the demo keys of DESIGN.md', () => {
    for (const key of ['hst_test_demo_full', 'hst_test_demo_readonly', 'hst_test_demo_events', 'hst_test_demo_other'])
      expect(readme).toContain(key);
  });
});
