/**
 * Prints the public schema to schema.graphql and the Federation subgraph SDL (what `_service { sdl }`
 * answers: the same API with @link and @key, plus the entity types) to subgraph.graphql; with --check,
 * fails when either committed file is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { publicSchema, subgraphSdl } from '../src/schema/index.ts';

const files = [
  {
    file: fileURLToPath(new URL('../schema.graphql', import.meta.url)),
    printed: `${printSchema(lexicographicSortSchema(publicSchema))}\n`,
  },
  { file: fileURLToPath(new URL('../subgraph.graphql', import.meta.url)), printed: `${subgraphSdl}\n` },
];

const read = (file: string): string => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

if (process.argv.includes('--check')) {
  const stale = files.filter(({ file, printed }) => read(file) !== printed);
  for (const { file } of stale) console.error(`${file} is stale: run \`npm run schema\` and commit the result.`);
  if (stale.length > 0) process.exit(1);
  console.log('schema.graphql and subgraph.graphql are up to date.');
} else {
  for (const { file, printed } of files) {
    writeFileSync(file, printed);
    console.log(`wrote ${file}`);
  }
}
