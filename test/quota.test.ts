import { describe, expect, it } from 'vitest';
import { UpstreamError } from '../src/upstream/errors.ts';
import { QuotaTracker } from '../src/upstream/shared.ts';

const refusal = (f: () => unknown): UpstreamError | null => {
  try {
    f();
    return null;
  } catch (error) {
    if (error instanceof UpstreamError) return error;
    throw error;
  }
};

describe('QuotaTracker', () => {
  // Issue 9, item 9: before, a 429's `Retry-After: 999999` blocked the key for 11.6 days.
  it('caps what it honours of a Retry-After at an hour', () => {
    let now = 0;
    const quota = new QuotaTracker(null, 0, () => now);
    quota.observe('k', { retryAfter: 999_999 });
    expect(quota.state('k').retryAfter).toBe(3600);
    now = 3_600_000;
    expect(refusal(() => quota.take('k', 'GET /a'))).toBeNull();
  });
});
