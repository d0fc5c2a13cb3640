import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createDrain } from '../src/http/drain.ts';

describe('draining on shutdown', () => {
  it('waits for requests in flight within the grace period, then closes', async () => {
    const drain = createDrain();
    const server = createServer(drain.track((_req, res) => setTimeout(() => res.end('done'), 200)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const inFlight = fetch(url).then((r) => r.text());
    await new Promise((r) => setTimeout(r, 50));
    expect(drain.active).toBe(1);
    expect(await drain.close(server, 5_000)).toBe(true);
    expect(await inFlight).toBe('done');
  });

  it('cuts what still runs when the grace period ends', async () => {
    const drain = createDrain();
    const server = createServer(drain.track(() => undefined));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const inFlight = fetch(url).then(
      () => 'answered',
      () => 'cut',
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(await drain.close(server, 100)).toBe(false);
    expect(await inFlight).toBe('cut');
  });
});
