import type { TypedDocumentNode } from '@graphql-typed-document-node/core';

/** An error as the gateway reports it (`extensions.code`: UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, …). */
export interface GatewayError {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string } & Record<string, unknown>;
}

/** An answer: the data (partial when some fields failed) and the errors of the fields that did. */
export interface Answer<Result> {
  data: Result | null;
  errors: GatewayError[];
}

export interface ClientOptions {
  /** The gateway's GraphQL endpoint, e.g. http://localhost:4000/graphql. */
  url: string;
  /** The caller's own HyperStudy API key (the gateway forwards it upstream). */
  apiKey: string;
  fetch?: typeof fetch;
}

/** The hash codegen put on a persisted document (`__meta__.hash`), if it has one. */
function hashOf(document: object): string | null {
  const meta: unknown = '__meta__' in document ? document.__meta__ : null;
  return meta !== null && typeof meta === 'object' && 'hash' in meta && typeof meta.hash === 'string' ? meta.hash : null;
}

/**
 * A minimal typed client: it sends each operation by its persisted id only (what a gateway with
 * TRUSTED_DOCUMENTS accepts), and the answer has the type codegen gave the document.
 */
export function createClient({ url, apiKey, fetch: send = fetch }: ClientOptions) {
  return {
    async execute<Result, Variables>(document: TypedDocumentNode<Result, Variables>, variables: Variables): Promise<Answer<Result>> {
      const documentId = hashOf(document);
      if (documentId === null) throw new Error('Not a persisted document: run `npm run example:codegen`');
      const response = await send(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', 'x-api-key': apiKey },
        body: JSON.stringify({ documentId, variables }),
      });
      const body = (await response.json()) as { data?: Result | null; errors?: GatewayError[] };
      return { data: body.data ?? null, errors: body.errors ?? [] };
    },
  };
}

export type Client = ReturnType<typeof createClient>;
