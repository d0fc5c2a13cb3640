import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestIdOf, withRequestId } from '../src/http/request-id.ts';

let server: Server;
let url: string;
beforeAll(async () => {
  server = createServer(
    withRequestId((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(String(req.headers['x-request-id']));
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('request ids', () => {
  it("keeps a well-formed caller's id, on the request and the response", async () => {
    const res = await fetch(url, { headers: { 'x-request-id': 'trace-abc:1.2_3' } });
    expect([res.headers.get('x-request-id'), await res.text()]).toEqual(['trace-abc:1.2_3', 'trace-abc:1.2_3']);
  });

  it('replaces a missing or malformed id with a new UUID', async () => {
    const cases: Record<string, string>[] = [
      {},
      { 'x-request-id': 'has space' },
      { 'x-request-id': 'x'.repeat(129) },
      { 'x-request-id': 'a\u00e9' },
    ];
    for (const headers of cases) {
      const res = await fetch(url, { headers });
      const id = res.headers.get('x-request-id');
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(await res.text()).toBe(id);
    }
    expect(requestIdOf(['a', 'b'])).toMatch(/^[0-9a-f-]{36}$/);
  });
});
