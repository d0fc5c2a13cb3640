import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTrustedDocuments } from '../src/plugins/use-trusted-documents.ts';
import { startStack } from './helpers/stack.ts';
import { FULL } from './helpers/simulator.ts';

const dir = mkdtempSync(join(tmpdir(), 'trusted-'));
const file = (name: string, content: string): string => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

describe('trusted documents', () => {
  it('runs only allow-listed operations, sent by id', async () => {
    const path = file('ok.json', JSON.stringify({ 'sha256:exp-name': 'query ExperimentName($id: ID!) { experiment(id: $id) { name } }' }));
    const stack = await startStack({}, { TRUSTED_DOCUMENTS: path });
    const post = (body: unknown) =>
      fetch(`${stack.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': FULL },
        body: JSON.stringify(body),
      }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] },
      }));
    try {
      const byHash = await post({
        extensions: { persistedQuery: { version: 1, sha256Hash: 'sha256:exp-name' } },
        variables: { id: 'exp_movie01' },
      });
      expect(byHash.body.data).toEqual({ experiment: { name: 'Movie Watching Study' } });
      const byDocumentId = await post({ documentId: 'sha256:exp-name', variables: { id: 'exp_joint02' } });
      expect(byDocumentId.body.data).toEqual({ experiment: { name: 'Joint Attention Pilot' } });
      // A document's text (what GraphiQL and curl send) is told what to send instead.
      const arbitrary = await post({ query: '{ experiments { totalCount } }' });
      expect(arbitrary).toEqual({
        status: 400,
        body: {
          errors: [
            {
              message:
                "This gateway runs only its trusted documents (TRUSTED_DOCUMENTS): send an operation's id as documentId (or extensions.persistedQuery.sha256Hash), not its text; GraphiQL cannot run operations here",
              extensions: { code: 'PERSISTED_QUERY_ONLY' },
            },
          ],
        },
      });
      const unknown = await post({ documentId: 'sha256:nope' });
      expect(unknown).toEqual({
        status: 400,
        body: {
          errors: [
            {
              message:
                'No trusted document has this id (TRUSTED_DOCUMENTS): send the id your build wrote into its persisted-documents manifest',
              extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' },
            },
          ],
        },
      });
      expect(stack.sim.stats.total).toBe(2);
    } finally {
      await stack.close();
    }
  });

  it('refuses a bad allow-list at start with a clear message', () => {
    expect(() => loadTrustedDocuments(join(dir, 'missing.json'))).toThrow(/TRUSTED_DOCUMENTS: cannot read .*missing\.json as JSON/);
    expect(() => loadTrustedDocuments(file('list.json', '["{ a }"]'))).toThrow('must hold a JSON object of id → document');
    expect(() => loadTrustedDocuments(file('bad.json', '{"x": "{ experiment( }"}'))).toThrow(/the document of 'x' does not parse/);
  });
});
