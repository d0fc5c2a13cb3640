import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Gateway } from '../src/server.ts';
import { startScripted, type Scripted } from './helpers/scripted.ts';
import { startGateway } from './helpers/stack.ts';

const MIB = 1024 * 1024;

/** Writes `chunk` until `total` bytes are out (Infinity: forever) or the client goes away; resolves what was written. */
function pour(res: ServerResponse, total: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 'x');
  return new Promise((resolve) => {
    let written = 0;
    let closed = false;
    res.once('close', () => {
      closed = true;
      resolve(written);
    });
    const write = (): void => {
      while (!closed && written < total) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', write);
      }
      if (!closed) res.end(() => resolve(written));
    };
    write();
  });
}

// Issue 9, item 8: before, a 200 MB answer was read whole (RSS 357 MB → 1.7 GB) and an endless one for
// 30 s, until the body timeout; the gateway now stops at UPSTREAM_MAX_BODY_BYTES and closes the connection.
describe('upstream answers larger than UPSTREAM_MAX_BODY_BYTES', () => {
  let upstream: Scripted;
  let gateway: Gateway;
  let url: string;
  const written: Record<string, Promise<number>> = {};

  beforeAll(async () => {
    upstream = await startScripted((req, res, seen) => {
      res.writeHead(200, {
        'content-type': 'application/json',
        ...(seen.path === '/experiments/declared' ? { 'content-length': String(200 * MIB) } : {}),
      });
      // The start of a valid envelope, then padding that never closes it.
      res.write('{"status":"success","data":[{"id":"x","name":"');
      written[seen.path] = pour(res, seen.path === '/experiments/endless' ? Infinity : 200 * MIB);
    });
    ({ gateway, url } = await startGateway({ HYPERSTUDY_API_URL: upstream.url, CACHE_TTL_MS: '0', UPSTREAM_TIMEOUT_MS: '30000' }));
  });
  afterAll(async () => {
    await gateway.close();
    await upstream.close();
  });

  const ask = async (id: string) => {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'hst_test_k' },
      body: JSON.stringify({ query: `{ experiment(id: "${id}") { name } }` }),
    });
    return (await res.json()) as { data: unknown; errors?: { message: string; extensions: Record<string, unknown> }[] };
  };

  const expected = {
    message: "The HyperStudy API's answer exceeds 33554432 bytes (UPSTREAM_MAX_BODY_BYTES); it was not read",
    extensions: {
      code: 'UPSTREAM_ERROR',
      upstream: { status: 200, code: null, details: { reason: 'body too large', maxBytes: 33554432 } },
    },
  };

  it('refuses a 200 MB answer by its declared length without reading it', async () => {
    const body = await ask('declared');
    expect(body.data).toEqual({ experiment: null });
    expect(body.errors?.[0]).toMatchObject(expected);
    expect(await written['/experiments/declared']).toBeLessThan(16 * MIB);
    expect(upstream.seen.filter((s) => s.path === '/experiments/declared')).toHaveLength(1);
  });

  it('stops reading an endless chunked answer at the limit and closes the connection', async () => {
    const body = await ask('endless');
    expect(body.errors?.[0]).toMatchObject(expected);
    // The upstream could write the limit plus what the sockets buffer, then saw the connection closed.
    const sent = await written['/experiments/endless'];
    expect(sent).toBeGreaterThan(32 * MIB);
    expect(sent).toBeLessThan(48 * MIB);
    const seen = upstream.seen.filter((s) => s.path === '/experiments/endless');
    expect(seen.map((s) => s.cut)).toEqual([true]);
  });
});
