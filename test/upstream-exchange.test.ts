import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { BodyTooLarge, exchange, SCRATCH_MAX_BYTES, withBody, type Exchange } from '../src/upstream/exchange.ts';

/** An upstream page of 1,000 records: 410 kB, read in several socket chunks. */
const PAGE = Buffer.from(JSON.stringify({ data: Array.from({ length: 1000 }, (_, i) => ({ id: `evt_${i}`, payload: 'x'.repeat(380) })) }));

const open: { server: Server; pool: Pool }[] = [];
afterEach(async () => {
  for (const { server, pool } of open.splice(0)) {
    await pool.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function upstream(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<Pool> {
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 4 });
  open.push({ server, pool });
  return pool;
}

const page = (_req: IncomingMessage, res: ServerResponse): void => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': PAGE.length, 'X-Trace': 'a' });
  res.end(PAGE);
};

describe('one upstream exchange', () => {
  it('reads the status, the headers by lower-case name and the whole body, chunk by chunk', async () => {
    const pool = await upstream(page);
    const answer = await exchange(pool, { path: '/page', method: 'GET' }, 1_000_000);
    expect(answer.statusCode).toBe(200);
    expect(answer.headers['content-type']).toBe('application/json');
    expect(answer.headers['x-trace']).toBe('a');
    expect(answer.bytes).toBe(PAGE.length);
    expect(answer.chunks.length).toBeGreaterThan(1);
    expect(withBody(answer, (body) => body.equals(PAGE))).toBe(true);
  });

  it('lends one scratch buffer to the bodies read one after another, and a buffer of its own to one read inside another', () => {
    const answer = (text: string): Exchange => {
      const bytes = Buffer.from(text);
      return { statusCode: 200, headers: {}, chunks: [bytes.subarray(0, 3), bytes.subarray(3)], bytes: bytes.length };
    };
    const seen: { text: string; buffer: ArrayBufferLike }[] = [];
    const read = (text: string): void => withBody(answer(text), (body) => void seen.push({ text: body.toString(), buffer: body.buffer }));
    read('{"data":[1,2,3]}');
    read('{"data":[4]}');
    withBody(answer('{"outer":true}'), (outer) => {
      read('{"inner":true}');
      seen.push({ text: outer.toString(), buffer: outer.buffer });
    });
    expect(seen.map((s) => s.text)).toEqual(['{"data":[1,2,3]}', '{"data":[4]}', '{"inner":true}', '{"outer":true}']);
    // The first two and the outer one in the same memory; the one read inside another in its own.
    expect(seen[1]?.buffer).toBe(seen[0]?.buffer);
    expect(seen[3]?.buffer).toBe(seen[0]?.buffer);
    expect(seen[2]?.buffer).not.toBe(seen[0]?.buffer);
    // A body over the limit is joined into a buffer of its own, of exactly its length.
    const big = Buffer.alloc(SCRATCH_MAX_BYTES + 1, 0x20);
    const whole = withBody(
      { statusCode: 200, headers: {}, chunks: [big.subarray(0, 10), big.subarray(10)], bytes: big.length },
      (body) => body,
    );
    expect(whole.length).toBe(SCRATCH_MAX_BYTES + 1);
    expect(whole.buffer).not.toBe(seen[0]?.buffer);
    expect(whole.equals(big)).toBe(true);
  });

  it('fails with BodyTooLarge past the limit, declared or streamed, and closes the connection', async () => {
    const closed: string[] = [];
    const pool = await upstream((req, res) => {
      req.socket.once('close', () => closed.push(req.url ?? ''));
      if (req.url === '/declared') return page(req, res);
      res.writeHead(502, { 'content-type': 'application/json' }); // chunked: no length to refuse it by
      res.write(PAGE.subarray(0, 300_000));
      setTimeout(() => res.end(PAGE.subarray(300_000)), 50);
    });
    for (const path of ['/declared', '/streamed']) {
      const failure = await exchange(pool, { path, method: 'GET' }, 200_000).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(BodyTooLarge);
      expect((failure as BodyTooLarge).status).toBe(path === '/declared' ? 200 : 502);
    }
    await expect.poll(() => closed.sort()).toEqual(['/declared', '/streamed']);
  });

  it("fails with the signal's reason when it aborts, before or while the answer is read", async () => {
    const pool = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"data":['); // and no more
    });
    const before = new AbortController();
    before.abort(new Error('the operation ended'));
    await expect(exchange(pool, { path: '/', method: 'GET' }, 1_000_000, before.signal)).rejects.toThrow('the operation ended');
    const during = new AbortController();
    setTimeout(() => during.abort(new Error('deadline')), 50);
    await expect(exchange(pool, { path: '/', method: 'GET' }, 1_000_000, during.signal)).rejects.toThrow('deadline');
  });

  // Issue 23: through undici's request(), V8's young collector kept about one 64 kB chunk of each answer
  // until a full collection (which object held it was not found), and the growing memory outside the
  // heap made V8 run a full collection every ~100 dashboards. Read through request(), this loop ends
  // ~3 MB higher than it starts (checked by running it so).
  it('leaves no memory outside the heap for the young collector to keep', async () => {
    const pool = await upstream(page);
    const levels: number[] = [];
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const { kind } = (entry as PerformanceEntry & { detail: { kind: number } }).detail;
        if (kind === constants.NODE_PERFORMANCE_GC_MINOR) levels.push(process.memoryUsage().arrayBuffers);
      }
    });
    observer.observe({ entryTypes: ['gc'] });
    try {
      for (let i = 0; i < 3000 && levels.length < 25; i++) {
        const answer = await exchange(pool, { path: '/page', method: 'GET' }, 1_000_000);
        expect(answer.bytes).toBe(PAGE.length);
        // What a dashboard's records do: fill the young generation, so that minor collections come.
        const records: { i: number }[] = [];
        for (let j = 0; j < 150_000; j++) records.push({ i: j });
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    } finally {
      observer.disconnect();
    }
    expect(levels.length).toBeGreaterThanOrEqual(20);
    // After the first few collections (warm-up), the level stays flat: the lowest of the last five is
    // no higher than 1 MB over the lowest of five before them.
    const lowest = (from: number, to: number): number => Math.min(...levels.slice(from, to));
    expect(lowest(levels.length - 5, levels.length) - lowest(5, 10)).toBeLessThan(1_000_000);
  });
});
