import type { Plugin } from 'graphql-yoga';
import { gatewayError } from '../errors.ts';

const HINT = "send the operation as JSON with the header content-type: application/json (with curl: -H 'content-type: application/json')";

/** Whether a request parsed as a form carried no operation (a JSON body sent without its content type, as curl -d does). */
function empty(params: { query?: string; extensions?: Record<string, unknown> } & Record<string, unknown>): boolean {
  return !params.query && params.documentId === undefined && params.extensions?.persistedQuery === undefined;
}

/**
 * Tells a caller who sent a POST without a content type GraphQL reads (none, text/plain …), or a JSON
 * body labelled as a form (what `curl -d` does without `-H 'content-type: application/json'`), what to
 * send: 415, or 400 for the form, with `BAD_REQUEST` and the hint, instead of an empty 415 or
 * "Must provide query string.".
 */
export function useContentTypeHints(): Plugin {
  return {
    onRequestParse({ request }) {
      if (request.method !== 'POST') return;
      const type = request.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase() ?? '';
      if (type === 'application/x-www-form-urlencoded')
        return {
          onRequestParseDone({ requestParserResult }) {
            const all = Array.isArray(requestParserResult) ? requestParserResult : [requestParserResult];
            if (all.some((p) => empty(p as Parameters<typeof empty>[0])))
              throw gatewayError('BAD_REQUEST', `The form carried no operation: ${HINT}`, { status: 400 });
          },
        };
      if (type === '' || !/^(application\/(json|graphql-response\+json|graphql)|multipart\/form-data)$/.test(type))
        throw gatewayError(
          'BAD_REQUEST',
          `${type === '' ? 'The request has no content type' : 'The content type is not one GraphQL reads'}: ${HINT}`,
          { status: 415 },
        );
    },
  };
}
