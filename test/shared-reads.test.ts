import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../src/upstream/envelope.ts';
import { SharedReads } from '../src/state/shared-reads.ts';
import { delay } from './helpers/scripted.ts';
import { collector, keptByScavenges } from './helpers/young-gc.ts';
import { startStack } from './helpers/stack.ts';

const envelope = (bytes: number, data: unknown = []): Envelope => ({ data, metadata: {}, rateLimit: null, bytes });

/** A fetch that waits for the test to answer it, and tells whether it was cancelled. */
function pending() {
  let answer: (e: Envelope) => void = () => undefined;
  let signal: AbortSignal | null = null;
  const fetch = (s: AbortSignal): Promise<Envelope> => {
    signal = s;
    return new Promise((resolve) => (answer = resolve));
  };
  return { fetch, answer: (e: Envelope) => answer(e), cancelled: () => signal?.aborted ?? false };
}

describe('SharedReads', () => {
  // Issue 9, item 5: before, the cache was bounded by entries only (297 pages held +140 MB).
  it('holds at most CACHE_MAX_BYTES, counted from the bodies', async () => {
    const shared = new SharedReads({ ttlMs: 60_000, maxEntries: 1_000, maxBytes: 10_000 });
    try {
      for (let i = 0; i < 10; i++) await shared.get('h', `/page/${i}`, async () => envelope(3_000)).envelope;
      expect(shared.size).toBe(3);
      expect(shared.bytes).toBe(3 * (3_000 + 'h /page/0'.length));
      // An answer larger than the whole cache is not kept at all.
      await shared.get('h', '/huge', async () => envelope(20_000)).envelope;
      expect(await shared.get('h', '/huge', async () => envelope(1)).how).toBe('sent');
    } finally {
      shared.close();
    }
  });

  // Issue 9, item 5: before, expired entries stayed in memory until read again or pushed out.
  it('sweeps expired answers without being asked', async () => {
    let now = 1_000;
    const shared = new SharedReads({ ttlMs: 100, maxEntries: 1_000, maxBytes: 1_000_000, clock: { now: () => now } });
    try {
      for (let i = 0; i < 5; i++) await shared.get('h', `/page/${i}`, async () => envelope(1_000)).envelope;
      expect([shared.size, shared.bytes > 5_000]).toEqual([5, true]);
      now = 1_150;
      await delay(300);
      expect([shared.size, shared.bytes]).toEqual([0, 0]);
    } finally {
      shared.close();
    }
  });

  // Issue 9, item 6: before, a read issued after the key's write joined a GET started before it, and
  // that GET's (older) answer was then cached.
  it("after a key's write, neither joins nor remembers a read that started before it", async () => {
    const shared = new SharedReads({ ttlMs: 60_000, maxEntries: 100, maxBytes: 1_000_000 });
    try {
      const before = pending();
      const first = shared.get('h', '/experiments/e1', before.fetch);
      expect(await first.how).toBe('sent');
      expect(await shared.get('h', '/experiments/e1', async () => envelope(1)).how).toBe('coalesced');
      shared.invalidate('h');
      const after = pending();
      const second = shared.get('h', '/experiments/e1', after.fetch);
      expect(await second.how).toBe('sent');
      before.answer(envelope(10, 'old'));
      after.answer(envelope(10, 'new'));
      expect([(await first.envelope).data, (await second.envelope).data]).toEqual(['old', 'new']);
      const third = shared.get('h', '/experiments/e1', async () => envelope(1, 'unexpected'));
      expect([await third.how, (await third.envelope).data]).toEqual(['cached', 'new']);
      // Another key's reads are untouched by the write.
      const other = pending();
      const x = shared.get('other', '/experiments/e1', other.fetch);
      shared.invalidate('h');
      expect(await shared.get('other', '/experiments/e1', async () => envelope(1)).how).toBe('coalesced');
      other.answer(envelope(1));
      await x.envelope;
    } finally {
      shared.close();
    }
  });

  it('cancels a request in flight once every reader waiting for it has given up', async () => {
    const shared = new SharedReads({ ttlMs: 0, maxEntries: 100, maxBytes: 1_000_000 });
    const upstream = pending();
    const a = new AbortController();
    const b = new AbortController();
    const first = shared.get('h', '/x', upstream.fetch, a.signal).envelope;
    const second = shared.get('h', '/x', async () => envelope(1), b.signal).envelope;
    a.abort(new Error('a ended'));
    await expect(first).rejects.toThrow('a ended');
    expect(upstream.cancelled()).toBe(false);
    b.abort(new Error('b ended'));
    await expect(second).rejects.toThrow('b ended');
    expect(upstream.cancelled()).toBe(true);
    // A new reader does not join a cancelled request.
    expect(await shared.get('h', '/x', async () => envelope(1)).how).toBe('sent');
  });

  // Issue 17, item 2: before, each read added its own listener to the operation's signal, and an
  // EventTarget walks every listener to add or remove one: N reads cost N² (seconds for 20,000).
  it("listens to an operation's signal once, however many reads wait on it", async () => {
    const shared = new SharedReads({ ttlMs: 0, maxEntries: 100, maxBytes: 1_000_000 });
    const operation = new AbortController();
    const upstream = Array.from({ length: 300 }, () => pending());
    const reads = upstream.map((u, i) => shared.get('h', `/x/${i}`, u.fetch, operation.signal).envelope);
    expect(getEventListeners(operation.signal, 'abort').length).toBe(1);
    // Reads that got their answer stop listening; the others still leave when the operation ends.
    for (const u of upstream.slice(0, 100)) u.answer(envelope(1));
    expect((await Promise.all(reads.slice(0, 100))).length).toBe(100);
    operation.abort(new Error('operation ended'));
    const ends = await Promise.allSettled(reads.slice(100));
    expect(ends.map((e) => (e.status === 'rejected' ? (e.reason as Error).message : 'answered'))).toEqual(
      Array.from({ length: 200 }, () => 'operation ended'),
    );
    expect(upstream.map((u) => u.cancelled())).toEqual([
      ...Array.from({ length: 100 }, () => false),
      ...Array.from({ length: 200 }, () => true),
    ]);
    expect(getEventListeners(operation.signal, 'abort').length).toBe(0);
  });
});

describe('the shared cache in /metrics', () => {
  it('reports its bytes and entries, and is empty once the TTL has passed', async () => {
    // Two seconds: the gauges are read well within it even on a loaded machine.
    const stack = await startStack({}, { CACHE_TTL_MS: '2000' });
    const gauges = async () => {
      const text = await (await fetch(`${stack.url}/metrics`)).text();
      return [Number(/^hsgql_cache_bytes (\d+)$/m.exec(text)?.[1]), Number(/^hsgql_cache_entries (\d+)$/m.exec(text)?.[1])];
    };
    try {
      await stack.gql('{ experiment(id: "exp_movie01") { name events(first: 5) { totalCount } } }');
      const [bytes, entries] = await gauges();
      expect(entries).toBe(2);
      expect(bytes).toBe(stack.gateway.shared.bytes);
      expect(bytes).toBeGreaterThan(1_000);
      // Emptied once the TTL has passed (by the cache's sweep: read until it has run, up to 10 s).
      let after = await gauges();
      for (let i = 0; i < 50 && (after[0] !== 0 || after[1] !== 0); i++) {
        await delay(200);
        after = await gauges();
      }
      expect(after).toEqual([0, 0]);
    } finally {
      await stack.close();
    }
  });
  // Issue 23: the index of reads in flight (a Map that lives as long as the process) kept every answer
  // read since the last full collection alive for V8's scavenges: a Map's superseded tables keep their
  // entries, and an old one is a root for the young generation's collector.
  it('keeps nothing of the answers it shared once they landed, for the young collector either', async () => {
    const shared = new SharedReads({ ttlMs: 0, maxEntries: 1, maxBytes: 1 });
    const gc = collector();
    // The reads' index is old by now, as in a process that has served for a while.
    gc({ type: 'major' });
    gc({ type: 'major' });
    // Nine reads of one key, a few in flight at once, each answered with ~110 kB of records; nothing
    // of them is referred to once the round has returned.
    const round = async (n: number): Promise<void> => {
      const answers = Array.from({ length: 9 }, () => pending());
      const reads = answers.map((a, i) => shared.get('h', `/round/${n}/page/${i}`, a.fetch).envelope);
      for (const [i, a] of answers.entries()) {
        a.answer(
          envelope(
            1,
            Array.from({ length: 2_000 }, (_, k) => ({ id: `r${n}_${i}_${k}`, k })),
          ),
        );
        if (i % 3 === 2) await Promise.all(reads.slice(0, i + 1));
      }
      await Promise.all(reads);
    };
    const kept: number[] = [];
    for (let n = 0; n < 6; n++) {
      await round(n);
      expect(shared.inFlight).toBe(0);
      kept.push(keptByScavenges());
    }
    // Kept before: 0.7 MB a round, every answer of it; now a few kB (the first round's includes the
    // code's first run).
    const sorted = kept.slice(1).sort((a, b) => a - b);
    expect(sorted[2]).toBeLessThan(100_000);
    shared.close();
  });
});
