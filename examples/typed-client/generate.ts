/**
 * Types the example's operations with graphql-codegen's client preset, from the gateway's public
 * schema (schema.graphql), into src/gql/: typed documents, and persisted-documents.json — the
 * allow-list TRUSTED_DOCUMENTS reads (`{ "<sha256>": "<document>" }`). `npm run example:codegen`.
 *
 * This runs the preset through @graphql-codegen/core so that it needs nothing beyond the preset; with
 * @graphql-codegen/cli, the same settings go into a codegen.ts (see docs/front-end.md).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { preset } from '@graphql-codegen/client-preset';
import { codegen } from '@graphql-codegen/core';
import { buildASTSchema, parse } from 'graphql';

const here = dirname(fileURLToPath(import.meta.url));

/** The scalars as a front end sees them on the wire. */
export const CODEGEN_CONFIG = {
  scalars: {
    DateTime: { input: 'string', output: 'string' },
    JSON: { input: '../json#JsonValue', output: '../json#JsonValue' },
    EventCategory: { input: 'string', output: 'string' },
    ExperimentRoles: { input: '../json#JsonObject', output: '../json#JsonObject' },
    RoleOverrides: { input: '../json#JsonObject', output: '../json#JsonObject' },
    ComponentVisibility: { input: '../json#JsonObject', output: '../json#JsonObject' },
  },
  strictScalars: true,
  useTypeImports: true,
  enumsAsTypes: true,
};

export const PRESET_CONFIG = {
  fragmentMasking: false,
  persistedDocuments: { mode: 'embedHashInDocument', hashAlgorithm: 'sha256' },
} as const;

/** Writes src/gql/ and returns the files it wrote. */
export async function generateTypedClient(root = here): Promise<string[]> {
  const schemaText = readFileSync(join(here, '../../schema.graphql'), 'utf8');
  const schema = parse(schemaText);
  const location = join(root, 'src/operations.graphql');
  const rawSDL = readFileSync(location, 'utf8');
  const outputDir = `${join(root, 'src/gql')}/`;
  const sections = await preset.buildGeneratesSection({
    baseOutputDir: outputDir,
    schema,
    schemaAst: buildASTSchema(schema),
    documents: [{ location, document: parse(rawSDL), rawSDL }],
    config: CODEGEN_CONFIG,
    presetConfig: PRESET_CONFIG,
    plugins: [],
    pluginMap: {},
  });
  mkdirSync(outputDir, { recursive: true });
  const written: string[] = [];
  // In order: persisted-documents.json waits for the typed documents (graphql.ts) to be hashed.
  for (const section of sections) {
    writeFileSync(section.filename, await codegen(section));
    written.push(section.filename);
  }
  return written;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const file of await generateTypedClient()) console.log(`wrote ${file}`);
}
