import { describe, expect, it } from 'vitest';
import { Readiness } from '../src/http/readiness.ts';
import { stackPerTest } from './helpers/stack.ts';

/** A stack of the test's own, closed after it. */
const ownStack = stackPerTest();

describe('Readiness', () => {
  it('shares one probe among concurrent callers and reuses its answer for readyCacheMs', async () => {
    let now = 0;
    let probes = 0;
    let answer: (ready: boolean) => void = () => undefined;
    const readiness = new Readiness({
      probe: () => (probes++, new Promise<boolean>((resolve) => (answer = resolve))),
      readyCacheMs: 1_000,
      timeoutMs: 5_000,
      now: () => now,
    });
    const waiting = Promise.all(Array.from({ length: 100 }, () => readiness.check()));
    answer(true);
    expect(new Set(await waiting)).toEqual(new Set([true]));
    now = 999;
    expect(await readiness.check()).toBe(true);
    expect(probes).toBe(1);
    now = 1_000;
    const again = readiness.check();
    answer(false);
    expect(await again).toBe(false);
    expect(probes).toBe(2);
  });

  it('answers not ready when the probe fails', async () => {
    const readiness = new Readiness({ probe: () => Promise.reject(new Error('down')), readyCacheMs: 0, timeoutMs: 100 });
    expect(await readiness.check()).toBe(false);
  });
});

// Issue 9, item 20: before, 500 /ready calls made 500 upstream /health requests.
describe('/ready', () => {
  it('makes one upstream /health request for 500 calls within READY_CACHE_MS', async () => {
    const stack = await ownStack({ latencyMs: 50 }, { READY_CACHE_MS: '5000' });
    stack.sim.stats.reset();
    const answers = await Promise.all(Array.from({ length: 500 }, () => fetch(`${stack.url}/ready`).then((r) => r.status)));
    expect(new Set(answers)).toEqual(new Set([200]));
    expect((await fetch(`${stack.url}/ready`)).status).toBe(200);
    expect(stack.sim.stats.byPath()).toEqual({ '/api/v3/health': 1 });
  });
});
