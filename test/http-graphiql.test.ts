import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseEncoding } from '../src/http/graphiql.ts';
import { type Gateway } from '../src/server.ts';
import { startGateway } from './helpers/stack.ts';

let gateway: Gateway;
let url: string;
beforeAll(async () => {
  // No upstream call is made: the page is the gateway's own.
  ({ gateway, url } = await startGateway({ HYPERSTUDY_API_URL: 'http://127.0.0.1:9/api/v3' }));
});
afterAll(async () => {
  await gateway.close();
});

/** The page as a browser asks for it; the body as sent (undici's request does not decompress). */
async function page(headers: Record<string, string> = {}) {
  const res = await request(`${url}/graphql`, { headers: { accept: 'text/html,application/xhtml+xml', ...headers } });
  const body = Buffer.from(await res.body.arrayBuffer());
  const header = (name: string): string | undefined => {
    const value = res.headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  };
  return { status: res.statusCode, body, header };
}

describe('the GraphiQL page', () => {
  it('is sent compressed as the browser accepts it (brotli, else gzip), the same page each way', async () => {
    const plain = await page();
    const html = plain.body.toString('utf8');
    expect(plain.status).toBe(200);
    expect(html).toContain('<title>HyperStudy GraphQL</title>');
    expect(html).toContain('query Dashboard');
    expect(plain.header('content-encoding')).toBeUndefined();
    expect(plain.header('content-length')).toBe(String(plain.body.length));
    expect(plain.body.length).toBeGreaterThan(5_000_000);

    const br = await page({ 'accept-encoding': 'gzip, deflate, br, zstd' });
    expect(br.header('content-encoding')).toBe('br');
    expect(br.header('content-length')).toBe(String(br.body.length));
    expect(brotliDecompressSync(br.body).equals(plain.body)).toBe(true);
    expect(br.body.length).toBeLessThan(plain.body.length / 4);

    const gz = await page({ 'accept-encoding': 'gzip, br;q=0' });
    expect(gz.header('content-encoding')).toBe('gzip');
    expect(gunzipSync(gz.body).equals(plain.body)).toBe(true);
    expect(gz.body.length).toBeLessThan(plain.body.length / 3);

    for (const reply of [plain, br, gz]) {
      expect(reply.header('content-type')).toBe('text/html; charset=utf-8');
      expect(reply.header('vary')).toBe('Accept-Encoding');
      expect(reply.header('cache-control')).toBe('no-cache');
    }
    expect(new Set([plain, br, gz].map((r) => r.header('etag'))).size).toBe(3);
  });

  it('answers 304 Not Modified without a body to a browser that has it (If-None-Match)', async () => {
    const first = await page({ 'accept-encoding': 'br' });
    const etag = first.header('etag') ?? '';
    expect(etag).toMatch(/^"[\w-]+-br"$/);
    const again = await page({ 'accept-encoding': 'br', 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.header('etag')).toBe(etag);
    expect((await page({ 'accept-encoding': 'br', 'if-none-match': `W/${etag}, "other"` })).status).toBe(304);
    const changed = await page({ 'accept-encoding': 'br', 'if-none-match': '"an-older-page-br"' });
    expect(changed.status).toBe(200);
    expect(changed.body.equals(first.body)).toBe(true);
    // The brotli page's ETag does not stand for the gzip or plain page: those are sent.
    const gzip = await page({ 'accept-encoding': 'gzip', 'if-none-match': etag });
    expect(gzip.status).toBe(200);
    expect(gzip.header('content-encoding')).toBe('gzip');
    expect(gzip.header('etag')).toMatch(/^"[\w-]+-gzip"$/);
    expect((await page({ 'accept-encoding': 'identity', 'if-none-match': etag })).status).toBe(200);
  });

  it('leaves GraphQL over GET alone', async () => {
    const res = await request(`${url}/graphql?query=${encodeURIComponent('{ __typename }')}`, {
      headers: { accept: 'application/json', 'accept-encoding': 'br' },
    });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toMatchObject({ data: { __typename: 'Query' } });
    expect(res.headers['content-encoding']).toBeUndefined();
  });

  it('chooses the encoding by Accept-Encoding', () => {
    expect(chooseEncoding(null)).toBe('identity');
    expect(chooseEncoding('')).toBe('identity');
    expect(chooseEncoding('gzip, deflate, br')).toBe('br');
    expect(chooseEncoding('GZIP')).toBe('gzip');
    expect(chooseEncoding('br;q=0, gzip;q=0.5')).toBe('gzip');
    expect(chooseEncoding('*')).toBe('br');
    expect(chooseEncoding('*;q=0, identity')).toBe('identity');
    expect(chooseEncoding('deflate')).toBe('identity');
  });
});
