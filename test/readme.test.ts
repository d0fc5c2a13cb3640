import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configSchema, loadConfig } from '../src/config.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('documents every configuration variable with its default', () => {
    const defaults = configSchema.parse({});
    for (const name of Object.keys(configSchema.shape)) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\``));
      expect(row, name).toBeDefined();
      const value = defaults[name as keyof typeof defaults];
      expect(row, name).toContain(`\`${value === undefined ? '(unset)' : String(value)}\``);
    }
    expect(loadConfig({}).port).toBe(4000);
  });

  it('lists the demo keys of DESIGN.md', () => {
    for (const key of ['hst_test_demo_full', 'hst_test_demo_readonly', 'hst_test_demo_events', 'hst_test_demo_other'])
      expect(readme).toContain(key);
  });
});
