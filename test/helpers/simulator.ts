import { afterEach } from 'vitest';
import { DEMO_KEY } from '../../src/simulator/keys.ts';
import type { RateLimitOptions } from '../../src/simulator/rate-limit.ts';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator/server.ts';

/** The simulator's demo keys (src/simulator/keys.ts): every scope; `read:*`; events and experiments only; another user's. */
export const FULL: string = DEMO_KEY.full;
export const READONLY: string = DEMO_KEY.readonly;
export const EVENTS_ONLY: string = DEMO_KEY.events;
export const OTHER: string = DEMO_KEY.other;

/**
 * The simulator's own rate limit, off (`startSimulator({ rateLimit: NO_RATE_LIMIT })`): tests count
 * requests, and only the tests of the limit itself turn it on.
 */
export const NO_RATE_LIMIT: RateLimitOptions = { enabled: false, perHour: 1000, perMinute: 100 };

/**
 * For tests that write to the simulator (so that the other tests' seeded data stays as seeded): a
 * `startSimulator` with the rate limit off unless `options` say otherwise, closed after the test.
 */
export function simulatorPerTest(): (options?: Partial<SimulatorOptions>) => Promise<Simulator> {
  const open: Simulator[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((sim) => sim.close()));
  });
  return async (options = {}) => {
    const sim = await startSimulator({ rateLimit: NO_RATE_LIMIT, ...options });
    open.push(sim);
    return sim;
  };
}
