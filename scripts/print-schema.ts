/**
 * Prints schema.graphql — the public schema exactly as the running gateway serves it, read by
 * introspection over HTTP (scripts/served-schema.ts) — and subgraph.graphql, the Federation subgraph
 * SDL (what `_service { sdl }` answers: the same API with @link and @key, plus the entity types); with
 * --check, fails when either committed file differs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printSubgraphSdl } from '../src/schema/index.ts';
import { servedSchemaSdl } from './served-schema.ts';

const SCHEMA_FILE = fileURLToPath(new URL('../schema.graphql', import.meta.url));
const SUBGRAPH_FILE = fileURLToPath(new URL('../subgraph.graphql', import.meta.url));

const read = (file: string): string => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

/** The files (schema.graphql, subgraph.graphql by default) that differ from what the gateway serves. */
export async function staleSchemaFiles(schemaFile = SCHEMA_FILE, subgraphFile = SUBGRAPH_FILE): Promise<string[]> {
  const served = await servedSchemaSdl();
  return [
    { file: schemaFile, printed: served },
    { file: subgraphFile, printed: `${printSubgraphSdl()}\n` },
  ]
    .filter(({ file, printed }) => read(file) !== printed)
    .map(({ file }) => file);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--check')) {
    const stale = await staleSchemaFiles();
    for (const file of stale) console.error(`${file} is not what the gateway serves: run \`npm run schema\` and commit the result.`);
    if (stale.length > 0) process.exit(1);
    console.log('schema.graphql and subgraph.graphql are what the gateway serves.');
  } else {
    writeFileSync(SCHEMA_FILE, await servedSchemaSdl());
    writeFileSync(SUBGRAPH_FILE, `${printSubgraphSdl()}\n`);
    console.log(`wrote ${SCHEMA_FILE} and ${SUBGRAPH_FILE}`);
  }
}
