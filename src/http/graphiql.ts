import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import type { Plugin } from 'graphql-yoga';
import { notModified } from './conditional.ts';

export interface GraphiqlPageOptions {
  /** Where browsers open GraphiQL: the GraphQL endpoint. */
  endpoint: string;
  /** Renders the page; called once, on the first visit (it may load the renderer then). */
  render: () => string | Promise<string>;
}

export type PageEncoding = 'br' | 'gzip' | 'identity';

const compressBrotli = promisify(brotliCompress);
const compressGzip = promisify(gzip);

/**
 * The encoding to answer with: brotli, else gzip, when `Accept-Encoding` allows it (a `q` of 0 refuses
 * one, `*` stands for any not named), else none.
 */
export function chooseEncoding(acceptEncoding: string | null): PageEncoding {
  const weights = new Map<string, number>();
  for (const part of (acceptEncoding ?? '').split(',')) {
    const [name = '', ...params] = part.trim().toLowerCase().split(';');
    if (name === '') continue;
    const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    weights.set(name, q === undefined ? 1 : Number(q));
  }
  const accepts = (encoding: string): boolean => (weights.get(encoding) ?? weights.get('*') ?? 0) > 0;
  if (accepts('br')) return 'br';
  if (accepts('gzip')) return 'gzip';
  return 'identity';
}

/**
 * GraphiQL for browsers (`GET` of the endpoint accepting `text/html`), compressed and cacheable: the
 * page (some 9 MB, its assets inlined) is rendered once, compressed once per encoding (brotli or gzip,
 * as `Accept-Encoding` allows; in the background, the first visit waits for it), and sent with an
 * ETag and `Cache-Control: no-cache`, so that a browser asks again on every visit and gets 304 Not
 * Modified without a body while the page is the same.
 */
export function useGraphiqlPage(options: GraphiqlPageOptions): Plugin {
  let page: { body: Buffer; hash: string } | null = null;
  const encoded = new Map<PageEncoding, Promise<Buffer>>();
  const etagOf = (hash: string, encoding: PageEncoding): string => `"${hash}${encoding === 'identity' ? '' : `-${encoding}`}"`;

  let rendering: Promise<{ body: Buffer; hash: string }> | null = null;
  const pageNow = (): Promise<{ body: Buffer; hash: string }> => {
    if (page) return Promise.resolve(page);
    rendering ??= Promise.resolve(options.render()).then(
      (html) => {
        const body = Buffer.from(html, 'utf8');
        page = { body, hash: createHash('sha256').update(body).digest('base64url').slice(0, 27) };
        return page;
      },
      (error: unknown) => {
        // A failed render is not remembered: the next visit tries again.
        rendering = null;
        throw error;
      },
    );
    return rendering;
  };

  const bodyIn = (encoding: PageEncoding, body: Buffer): Promise<Buffer> => {
    let pending = encoded.get(encoding);
    if (!pending) {
      pending =
        encoding === 'br'
          ? compressBrotli(body, {
              params: { [constants.BROTLI_PARAM_QUALITY]: 9, [constants.BROTLI_PARAM_SIZE_HINT]: body.length },
            })
          : encoding === 'gzip'
            ? compressGzip(body, { level: 9 })
            : Promise.resolve(body);
      // A failed compression is not remembered: the next visit tries again.
      pending.catch(() => encoded.delete(encoding));
      encoded.set(encoding, pending);
    }
    return pending;
  };

  return {
    onRequest({ request, url, endResponse, fetchAPI }) {
      if (request.method !== 'GET' || !request.headers.get('accept')?.includes('text/html')) return;
      if (url.pathname !== options.endpoint && url.pathname !== `${options.endpoint}/`) return;
      return pageNow().then(({ body, hash }) => answer(request, fetchAPI, endResponse, body, hash));
    },
  };

  function answer(
    request: Request,
    fetchAPI: { Response: typeof Response },
    endResponse: (response: Response) => void,
    body: Buffer,
    hash: string,
  ): Promise<void> | undefined {
    const encoding = chooseEncoding(request.headers.get('accept-encoding'));
    const etag = etagOf(hash, encoding);
    const headers: Record<string, string> = {
      'content-type': 'text/html; charset=utf-8',
      etag,
      'cache-control': 'no-cache',
      vary: 'Accept-Encoding',
    };
    // Only the representation this request would get: another encoding's ETag is another page.
    if (notModified(request.headers.get('if-none-match'), etag)) {
      endResponse(new fetchAPI.Response(null, { status: 304, headers }));
      return;
    }
    return bodyIn(encoding, body).then((sent) => {
      if (encoding !== 'identity') headers['content-encoding'] = encoding;
      headers['content-length'] = String(sent.length);
      // A view of the same bytes: the body is sent without a copy.
      const bytes = new Uint8Array(sent.buffer as ArrayBuffer, sent.byteOffset, sent.byteLength);
      endResponse(new fetchAPI.Response(bytes, { status: 200, headers }));
    });
  }
}
