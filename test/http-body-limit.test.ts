import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withBodyLimit } from '../src/http/body-limit.ts';

/** What became of the endless answers: cancelled by the body limit, and whether the replayed request's signal aborted. */
const endings: { cancelled: boolean; aborted: boolean }[] = [];

/** An answer that sends one part and never ends (as a subscription's event stream). */
function endless(signal: AbortSignal | null): Response {
  const ending = { cancelled: false, aborted: false };
  endings.push(ending);
  signal?.addEventListener('abort', () => (ending.aborted = true));
  const stream = new ReadableStream<Uint8Array>({
    start: (controller) => controller.enqueue(new TextEncoder().encode('first part')),
    cancel: () => void (ending.cancelled = true),
  });
  return new Response(stream, { status: 200, headers: { 'content-type': 'text/event-stream' } });
}

let server: Server;
let port: number;
const replayed: string[] = [];
beforeAll(async () => {
  server = createServer(
    withBodyLimit(
      {
        bodyBytes: 100,
        replay: async (_url, init) => {
          const body = Buffer.from(init.body as Buffer).toString();
          if (body === 'stream') return endless(init.signal ?? null);
          replayed.push(body);
          return new Response(`replayed ${String(init.method)}`, { status: 200, headers: { 'x-replayed': 'yes' } });
        },
        onError: () => undefined,
      },
      (req, res) => {
        req.resume();
        req.on('end', () => res.end('passed through'));
      },
    ),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Sends `parts` as separate writes; without a content-length Node sends them chunked. */
function send(parts: string[], headers: Record<string, string> = {}) {
  return new Promise<{ status: number; text: string; headers: Record<string, unknown> }>((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', method: 'POST', path: '/graphql', headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
    });
    req.on('error', reject);
    for (const part of parts.slice(0, -1)) req.write(part);
    req.end(parts.at(-1));
  });
}

const TOO_LARGE = { errors: [{ message: 'The request body exceeds 100 bytes', extensions: { code: 'PAYLOAD_TOO_LARGE' } }] };

describe('the request body limit', () => {
  it('passes a body of declared length within the limit through, and refuses a longer one with 413', async () => {
    const body = 'x'.repeat(100);
    expect((await send([body], { 'content-length': '100' })).text).toBe('passed through');
    const refused = await send(['x'.repeat(101)], { 'content-length': '101' });
    expect([refused.status, JSON.parse(refused.text), refused.headers.connection]).toEqual([413, TOO_LARGE, 'close']);
  });

  it('reads a chunked body up to the limit and replays it; past the limit answers 413 without reading on', async () => {
    const small = await send(['{"a":', '1}']);
    expect([small.status, small.text, small.headers['x-replayed']]).toEqual([200, 'replayed POST', 'yes']);
    expect(replayed).toEqual(['{"a":1}']);
    const big = await send(['x'.repeat(60), 'x'.repeat(60), 'x'.repeat(60)]);
    expect([big.status, JSON.parse(big.text)]).toEqual([413, TOO_LARGE]);
    expect(replayed).toHaveLength(1);
  });

  it('sends a replayed answer as it comes, and cancels it and the request when the caller leaves', async () => {
    const first = await new Promise<{ status: number; type: unknown; text: string }>((resolve, reject) => {
      const req = request({ port, host: '127.0.0.1', method: 'POST', path: '/graphql' }, (res) => {
        res.once('data', (chunk: Buffer) => {
          resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], text: chunk.toString() });
          req.destroy();
        });
      });
      req.on('error', () => undefined);
      setTimeout(() => reject(new Error('nothing arrived')), 2_000).unref();
      req.write('str');
      req.end('eam');
    });
    expect(first).toEqual({ status: 200, type: 'text/event-stream', text: 'first part' });
    for (let i = 0; i < 50 && !endings[0]?.cancelled; i++) await new Promise((r) => setTimeout(r, 20));
    expect(endings).toEqual([{ cancelled: true, aborted: true }]);
  });
});
