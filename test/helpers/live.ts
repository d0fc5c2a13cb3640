/** Fast live polling for tests: a big hourly limit (so the quota asks for little) and a short floor. */
export const FAST_LIVE = {
  UPSTREAM_QUOTA_GUARD: 'on',
  UPSTREAM_HOURLY_LIMIT: '1000000',
  UPSTREAM_MINUTE_LIMIT: '1000000',
  LIVE_MIN_INTERVAL_MS: '100',
  LIVE_LATE_MS: '600000',
};

/** The simulator's live mode, paused: tests append records with `tick()`. */
export const PAUSED_LIVE = { rate: 40, tickMs: 250, roomEveryMs: 0, paused: true } as const;
