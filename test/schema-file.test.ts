import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { staleSchemaFiles } from '../scripts/print-schema.ts';

const SCHEMA = new URL('../schema.graphql', import.meta.url);
const SUBGRAPH = new URL('../subgraph.graphql', import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'hsgql-schema-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Issue 22, item 5: the served schema has the @defer/@stream definitions, which schema.graphql lacked,
// so a client's codegen validating @defer documents against the file failed.
describe('schema.graphql', () => {
  const committed = readFileSync(SCHEMA, 'utf8');

  it('is what the running gateway answers to introspection, @defer and @stream included', async () => {
    expect(await staleSchemaFiles(SCHEMA.pathname, SUBGRAPH.pathname)).toEqual([]);
    expect(committed).toContain('directive @defer(\n');
    expect(committed).toContain('directive @stream(\n');
    // Federation's plumbing is in subgraph.graphql only.
    expect(committed).not.toMatch(/_entities|_service|_Any/);
  });

  it('fails the check when it differs from the introspection, by one directive or one description', async () => {
    const withoutDefer = join(dir, 'without-defer.graphql');
    writeFileSync(
      withoutDefer,
      committed.replace(/"""\nDirects the executor to defer[\s\S]*?\) on FRAGMENT_SPREAD \| INLINE_FRAGMENT\n\n/, ''),
    );
    expect(readFileSync(withoutDefer, 'utf8')).not.toContain('@defer');
    const reworded = join(dir, 'reworded.graphql');
    writeFileSync(reworded, committed.replace('A HyperStudy experiment.', 'An experiment.'));
    expect(await staleSchemaFiles(withoutDefer, SUBGRAPH.pathname)).toEqual([withoutDefer]);
    expect(await staleSchemaFiles(reworded, SUBGRAPH.pathname)).toEqual([reworded]);
  });
});
