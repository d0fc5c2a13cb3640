import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig, variables } from '../src/config.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const configuration = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');

describe('README and docs', () => {
  it('docs/configuration.md documents every configuration variable with its default, and the README links to it', () => {
    const rows = configuration.split('\n').filter((line) => line.startsWith('| `'));
    for (const { env: name, fallback } of variables) {
      const row = rows.find((line) => line.startsWith(`| \`${name}\``));
      expect(row, name).toBeDefined();
      expect(row, name).toContain(`\`${fallback ?? '(unset)'}\``);
    }
    // No row for a variable the gateway does not read.
    const documented = rows.map((line) => /^\| `([A-Z0-9_]+)`/.exec(line)?.[1]).filter((name) => name !== undefined);
    expect(documented.sort()).toEqual(variables.map((v) => v.env).sort());
    expect(readme).toContain('](docs/configuration.md)');
    expect(loadConfig({}).port).toBe(4000);
  });

  it('lists the demo keys of DESIGN.md', () => {
    for (const key of ['hst_test_demo_full', 'hst_test_demo_readonly', 'hst_test_demo_events', 'hst_test_demo_other'])
      expect(readme).toContain(key);
  });
});
