import { describe, expect, it } from 'vitest';
import { FairQueue, Limiter, type Release } from '../src/upstream/scheduler.ts';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('Limiter', () => {
  it('lets `limit` holders through and the rest in order; an aborted wait leaves the line', async () => {
    const limiter = new Limiter(2);
    const order: string[] = [];
    const take = (name: string, signal?: AbortSignal) =>
      limiter.acquire(signal).then((release) => {
        order.push(name);
        return release;
      });
    const a = await take('a');
    const b = await take('b');
    const gone = new AbortController();
    const c = take('c', gone.signal).catch(() => null);
    const d = take('d');
    gone.abort(new Error('gone'));
    expect(await c).toBeNull();
    a();
    a(); // releasing twice gives back one slot
    await tick();
    expect(order).toEqual(['a', 'b', 'd']);
    b();
    (await d)();
  });
});

describe('FairQueue', () => {
  it('serves waiting keys in turn, each within its own limit', async () => {
    const queue = new FairQueue({ capacity: 2, perPartition: 2 });
    const served: string[] = [];
    const held: Release[] = [];
    const ask = (key: string) =>
      queue.acquire(key).then((release) => {
        served.push(key);
        held.push(release);
      });
    const waits = [...Array.from({ length: 6 }, () => ask('a')), ask('b'), ask('b'), ask('c')];
    await tick();
    expect(served).toEqual(['a', 'a']);
    while (served.length < 9) {
      held.shift()?.();
      await tick();
    }
    await Promise.all(waits);
    // a had the pool first; then the waiting keys take turns (a rejoins the line after each release).
    expect(served).toEqual(['a', 'a', 'b', 'c', 'a', 'b', 'a', 'a', 'a']);
    for (const release of held) release();
    expect(queue.load).toEqual({ active: 0, waiting: 0, partitions: 0 });
  });

  it('keeps a key within its own limit even when the pool has room', async () => {
    const queue = new FairQueue({ capacity: 10, perPartition: 2 });
    const releases = await Promise.all([queue.acquire('a'), queue.acquire('a')]);
    let third = false;
    const waiting = queue.acquire('a').then((release) => ((third = true), release));
    const other = await queue.acquire('b');
    await tick();
    expect([third, queue.load]).toEqual([false, { active: 3, waiting: 1, partitions: 2 }]);
    releases[0]?.();
    (await waiting)();
    releases[1]?.();
    other();
    expect(queue.load).toEqual({ active: 0, waiting: 0, partitions: 0 });
  });

  it('drops a cancelled wait and forgets idle keys', async () => {
    const queue = new FairQueue({ capacity: 1, perPartition: 1 });
    const first = await queue.acquire('a');
    const gone = new AbortController();
    const cancelled = queue.acquire('b', gone.signal);
    gone.abort(new Error('operation ended'));
    await expect(cancelled).rejects.toThrow('operation ended');
    expect(queue.load).toEqual({ active: 1, waiting: 0, partitions: 1 });
    first();
    expect(queue.load).toEqual({ active: 0, waiting: 0, partitions: 0 });
  });
});
