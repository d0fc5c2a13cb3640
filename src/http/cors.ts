import type { Plugin } from 'graphql-yoga';

export interface CorsOptions {
  /** `*` (any origin, no credentials) or the origins allowed. */
  origins: '*' | readonly string[];
  methods?: readonly string[];
  /** Request headers a browser may send. */
  allowedHeaders?: readonly string[];
  /** Response headers a browser may read. */
  exposedHeaders?: readonly string[];
  /** How long a browser may reuse a preflight answer, in seconds. */
  maxAge?: number;
}

/**
 * CORS as docs/configuration.md states it. Callers authenticate with a header, never a cookie, so credentials are
 * never allowed: with `*` the answer is the literal `Access-Control-Allow-Origin: *` (browsers then send
 * no cookies), with a list only a listed origin is named back (and `Vary: Origin`); any other origin
 * gets no CORS headers at all, so the browser keeps the answer from it.
 */
export function useCors(options: CorsOptions): Plugin {
  const methods = (options.methods ?? ['GET', 'POST', 'OPTIONS']).join(', ');
  const allowedHeaders = (options.allowedHeaders ?? ['content-type']).join(', ');
  const exposed = options.exposedHeaders?.join(', ');
  const maxAge = String(options.maxAge ?? 600);
  const allowed = (origin: string | null): string | null => {
    if (!origin) return null;
    if (options.origins === '*') return '*';
    return options.origins.includes(origin) ? origin : null;
  };
  const isPreflight = (request: Request): boolean =>
    request.method === 'OPTIONS' && request.headers.get('access-control-request-method') !== null;
  return {
    onRequest({ request, endResponse, fetchAPI }) {
      if (isPreflight(request)) endResponse(new fetchAPI.Response(null, { status: 204, headers: { 'content-length': '0' } }));
    },
    onResponse({ request, response }) {
      if (options.origins !== '*') response.headers.append('vary', 'Origin');
      const origin = allowed(request.headers.get('origin'));
      if (origin === null) return;
      response.headers.set('access-control-allow-origin', origin);
      if (isPreflight(request)) {
        response.headers.set('access-control-allow-methods', methods);
        response.headers.set('access-control-allow-headers', allowedHeaders);
        response.headers.set('access-control-max-age', maxAge);
      } else if (exposed) response.headers.set('access-control-expose-headers', exposed);
    },
  };
}
