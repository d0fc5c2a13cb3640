import { readFileSync } from 'node:fs';
import { usePersistedOperations } from '@graphql-yoga/plugin-persisted-operations';
import { Kind, parse } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { ConfigError } from '../config.ts';
import { errorExtensions, type ErrorCode } from '../errors.ts';
import type { GatewayContext } from '../schema/builder.ts';

/**
 * Reads a trusted-documents allow-list: a JSON object from document id (for example a sha256 hash) to
 * the GraphQL document. Every document must parse; a bad file stops the gateway at start.
 */
export function loadTrustedDocuments(path: string): Map<string, string> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError(`TRUSTED_DOCUMENTS: cannot read ${path} as JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new ConfigError(`TRUSTED_DOCUMENTS: ${path} must hold a JSON object of id → document`);
  const documents = new Map<string, string>();
  for (const [id, document] of Object.entries(raw)) {
    if (typeof document !== 'string') throw new ConfigError(`TRUSTED_DOCUMENTS: the document of '${id}' is not a string`);
    try {
      parse(document);
    } catch (error) {
      throw new ConfigError(
        `TRUSTED_DOCUMENTS: the document of '${id}' does not parse: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    documents.set(id, document);
  }
  return documents;
}

/** A document's text sent to a gateway that runs only its trusted documents (over HTTP and WebSocket alike). */
export const ONLY_TRUSTED = {
  message:
    "This gateway runs only its trusted documents (TRUSTED_DOCUMENTS): send an operation's id as documentId (or extensions.persistedQuery.sha256Hash), not its text; GraphiQL cannot run operations here",
  code: 'PERSISTED_QUERY_ONLY',
} as const satisfies { message: string; code: ErrorCode };

/** An id the allow-list does not hold. */
export const NOT_TRUSTED = {
  message: 'No trusted document has this id (TRUSTED_DOCUMENTS): send the id your build wrote into its persisted-documents manifest',
  code: 'PERSISTED_QUERY_NOT_FOUND',
} as const satisfies { message: string; code: ErrorCode };

/** Only operations from the allow-list run (sent by id: `extensions.persistedQuery.sha256Hash` or `documentId`). */
export function useTrustedDocuments(documents: Map<string, string>): Plugin<GatewayContext> {
  return usePersistedOperations<GatewayContext>({
    allowArbitraryOperations: false,
    // What a caller who sent a document's text (GraphiQL, curl) needs to know, rather than the plugin's bare names.
    customErrors: {
      persistedQueryOnly: { message: ONLY_TRUSTED.message, extensions: errorExtensions(ONLY_TRUSTED.code, {}, 400) },
      notFound: { message: NOT_TRUSTED.message, extensions: errorExtensions(NOT_TRUSTED.code, {}, 400) },
    },
    getPersistedOperation: (id) => documents.get(id) ?? null,
    extractPersistedOperationId: (params) => {
      const extensions = params.extensions as { persistedQuery?: { sha256Hash?: unknown } } | undefined;
      const hash = extensions?.persistedQuery?.sha256Hash;
      if (typeof hash === 'string') return hash;
      const documentId = (params as { documentId?: unknown }).documentId;
      return typeof documentId === 'string' ? documentId : null;
    },
  }) as Plugin<GatewayContext>;
}

/** The names of the operations the allow-list holds (their metrics are always counted by name). */
export function operationNamesOf(documents: Map<string, string>): string[] {
  const names = new Set<string>();
  for (const document of documents.values())
    for (const definition of parse(document).definitions)
      if (definition.kind === Kind.OPERATION_DEFINITION && definition.name) names.add(definition.name.value);
  return [...names];
}
