import { LRUCache } from 'lru-cache';
import { RETRY_AFTER_MAX_SECONDS } from '../upstream/envelope.ts';
import { UpstreamError } from '../upstream/errors.ts';

/**
 * Counts events over a sliding window in fixed buckets: a bucket counts until all of it is older than
 * the window, so the count never falls short of the true one (it may include up to one bucket more).
 * Adding and counting are O(1) amortized; memory is one pair of numbers per non-empty bucket.
 */
export class WindowCounter {
  readonly #starts: number[] = [];
  readonly #counts: number[] = [];
  #total = 0;

  constructor(
    private readonly bucketMs: number,
    private readonly windowMs: number,
  ) {}

  /** Adds `n` events at `now` (never earlier than the last add). */
  add(now: number, n = 1): void {
    if (n <= 0) return;
    const start = now - (now % this.bucketMs);
    const last = this.#starts.length - 1;
    if (last >= 0 && this.#starts[last] === start) this.#counts[last] = (this.#counts[last] ?? 0) + n;
    else {
      this.#starts.push(start);
      this.#counts.push(n);
    }
    this.#total += n;
  }

  count(now: number): number {
    this.#expire(now);
    return this.#total;
  }

  /** Milliseconds until the count drops (its oldest bucket leaves the window); 0 when empty. */
  untilDrop(now: number): number {
    this.#expire(now);
    const oldest = this.#starts[0];
    return oldest === undefined ? 0 : Math.max(0, oldest + this.bucketMs + this.windowMs - now);
  }

  /** Milliseconds until the count is at most `max` (its oldest buckets left the window); 0 when it is already. */
  untilAtMost(now: number, max: number): number {
    this.#expire(now);
    let count = this.#total;
    for (let i = 0; i < this.#starts.length && count > max; i++) {
      count -= this.#counts[i] ?? 0;
      if (count <= max) return Math.max(0, (this.#starts[i] ?? 0) + this.bucketMs + this.windowMs - now);
    }
    return 0;
  }

  #expire(now: number): void {
    while (this.#starts.length > 0 && (this.#starts[0] ?? 0) + this.bucketMs + this.windowMs <= now) {
      this.#starts.shift();
      this.#total -= this.#counts.shift() ?? 0;
    }
  }
}

/**
 * The upstream's limit windows (it documents a limit per key an hour, and per endpoint a minute), and
 * the buckets the quota counts them in: in memory (`WindowCounter`) and in Redis (redis-scripts.ts).
 * Live polling's share of the hour is counted over the same hour (src/live/).
 */
export const HOUR_MS = 3_600_000;
export const MINUTE_MS = 60_000;
export const HOUR_BUCKET_MS = 60_000;
export const MINUTE_BUCKET_MS = 1_000;

export interface QuotaLimits {
  perHour: number;
  perMinutePerEndpoint: number;
  /** How long the per-minute window is (UPSTREAM_MINUTE_WINDOW_MS; MINUTE_MS, as the upstream documents, when not given). */
  minuteMs?: number;
}

/** How long the per-minute window of these limits is. */
export const minuteOf = (limits: QuotaLimits | null): number => limits?.minuteMs ?? MINUTE_MS;

/**
 * How long the gateway counts a request against the per-minute limit: the upstream's minute and one
 * bucket more. The upstream's window starts at a request's arrival, the gateway's buckets at its
 * sending: counted over the minute alone, a request sent late in its bucket (up to a bucket after the
 * bucket's start) that took longer to arrive than the one sent when it left the count could still be
 * in the upstream's window when that one arrives — a 429. One bucket more makes the next request
 * leave at least a bucket after the first one's upstream window could end, so none lands in a window
 * the upstream still counts as full while two requests' latencies differ by less than a bucket (1 s).
 */
export const countedMinuteOf = (limits: QuotaLimits | null): number => minuteOf(limits) + MINUTE_BUCKET_MS;

/** A count learnt at a time (local ms): e.g. what Redis last said the fleet spent. */
export interface KnownCount {
  n: number;
  at: number;
}

export interface QuotaState {
  /** Requests this gateway sent for the key in the last hour. */
  usedLastHour: number;
  limitPerHour: number;
  /** What the upstream last said remains of the key's hourly budget, when it said. */
  upstreamRemaining: number | null;
  /** Seconds until the key may call again, while the upstream has told it to wait. */
  retryAfter: number | null;
}

interface KeyQuota {
  hour: WindowCounter;
  endpoints: Map<string, WindowCounter>;
  blockedUntil: number;
  upstreamRemaining: number | null;
}

/**
 * Tracks each key's spend against the upstream's documented limits and honours a 429's Retry-After
 * for every operation of that key, so that none of them hammers the upstream meanwhile. State is held
 * for the `maxKeys` most recently active keys (least recently used dropped first, never the one in
 * use); keys the upstream refused as invalid are forgotten at once.
 */
export class QuotaTracker {
  readonly #keys: LRUCache<string, KeyQuota>;

  constructor(
    private readonly limits: QuotaLimits | null,
    /** The longest a request waits out a 429's Retry-After instead of failing RATE_LIMITED at once. */
    private readonly maxWaitMs = 0,
    private readonly now: () => number = Date.now,
    maxKeys = 10_000,
    /** What each request this tracker counts weighs against the limits (see RedisQuota's fallback). */
    private readonly weight = 1,
  ) {
    this.#keys = new LRUCache({ max: maxKeys });
  }

  /** Keys whose state is held. */
  get size(): number {
    return this.#keys.size;
  }

  #entry(hash: string): KeyQuota {
    let entry = this.#keys.get(hash);
    if (!entry) {
      entry = { hour: new WindowCounter(HOUR_BUCKET_MS, HOUR_MS), endpoints: new Map(), blockedUntil: 0, upstreamRemaining: null };
      this.#keys.set(hash, entry);
    }
    return entry;
  }

  /**
   * Before a request queues: how long to wait first (while the upstream asked the key to wait, if that
   * is short); throws RATE_LIMITED when the wait is longer or the request would exceed a limit. Charges
   * nothing.
   */
  admit(hash: string, endpoint: string): number {
    const entry = this.#keys.get(hash);
    if (!entry) return 0;
    const now = this.now();
    if (entry.blockedUntil > now) {
      const wait = entry.blockedUntil - now;
      if (wait <= this.maxWaitMs) return wait;
      throw this.#blocked(wait);
    }
    this.#checkLimits(entry, endpoint, now);
    return 0;
  }

  /** At the moment a request is sent: counts it, or throws RATE_LIMITED (nothing counted) if it may not go. */
  take(hash: string, endpoint: string): void {
    const now = this.now();
    const entry = this.#entry(hash);
    if (entry.blockedUntil > now) throw this.#blocked(entry.blockedUntil - now);
    this.#checkLimits(entry, endpoint, now);
    this.#count(entry, endpoint, now);
  }

  /**
   * Counts a request that was sent on another's decision (Redis said it may go), without deciding:
   * should the decisions fall back to this tracker, it knows what this process spent.
   */
  record(hash: string, endpoint: string): void {
    this.#count(this.#entry(hash), endpoint, this.now());
  }

  #count(entry: KeyQuota, endpoint: string, now: number): void {
    entry.hour.add(now, this.weight);
    let minute = entry.endpoints.get(endpoint);
    if (!minute) {
      minute = new WindowCounter(MINUTE_BUCKET_MS, countedMinuteOf(this.limits));
      entry.endpoints.set(endpoint, minute);
    }
    minute.add(now, this.weight);
  }

  /**
   * Replaces the key's windows with counts learnt elsewhere, each as of when it was learnt (so that it
   * leaves the window no sooner than the requests it stands for): the fleet's spend as far as this
   * process knows it, when it starts deciding alone. Its Retry-After block stays.
   */
  rebase(hash: string, hour: KnownCount | null, minutes: Iterable<[string, KnownCount]>): void {
    const entry = this.#entry(hash);
    entry.hour = new WindowCounter(HOUR_BUCKET_MS, HOUR_MS);
    if (hour) entry.hour.add(hour.at, hour.n);
    entry.endpoints = new Map();
    for (const [endpoint, known] of minutes) {
      const minute = new WindowCounter(MINUTE_BUCKET_MS, countedMinuteOf(this.limits));
      minute.add(known.at, known.n);
      entry.endpoints.set(endpoint, minute);
    }
  }

  /** The key's hour window counts at least `count` from now on (e.g. the upstream said so many were spent). */
  raise(hash: string, count: number): void {
    const entry = this.#entry(hash);
    const now = this.now();
    entry.hour.add(now, count - entry.hour.count(now));
  }

  /** Whether a Retry-After of this many seconds is short enough to wait out. */
  waitable(retryAfterSeconds: number): boolean {
    return retryAfterSeconds * 1000 <= this.maxWaitMs;
  }

  /** Learns from an answer: the upstream's remaining budget, or a 429's Retry-After (capped at an hour). */
  observe(hash: string, info: { remaining?: number | null; retryAfter?: number | null }): void {
    const entry = this.#entry(hash);
    if (info.remaining !== undefined && info.remaining !== null) entry.upstreamRemaining = info.remaining;
    if (info.retryAfter !== undefined && info.retryAfter !== null) {
      const seconds = Math.min(RETRY_AFTER_MAX_SECONDS, Math.max(0, info.retryAfter));
      entry.blockedUntil = Math.max(entry.blockedUntil, this.now() + seconds * 1000);
    }
  }

  /** Drops a key's state (the upstream said the key is not valid: it has no quota to track). */
  forget(hash: string): void {
    this.#keys.delete(hash);
  }

  state(hash: string): QuotaState {
    const entry = this.#keys.peek(hash);
    const now = this.now();
    return {
      usedLastHour: entry?.hour.count(now) ?? 0,
      limitPerHour: this.limits?.perHour ?? 1000,
      upstreamRemaining: entry?.upstreamRemaining ?? null,
      retryAfter: entry && entry.blockedUntil > now ? Math.ceil((entry.blockedUntil - now) / 1000) : null,
    };
  }

  /**
   * Milliseconds until `n` more requests fit the key's hourly limit as this tracker counts it (its
   * oldest requests having left the hour); null when they never could (more than the limit).
   */
  untilRoom(hash: string, n: number): number | null {
    const limit = this.limits?.perHour ?? null;
    if (limit === null) return 0;
    if (n * this.weight > limit) return null;
    const entry = this.#keys.peek(hash);
    return entry ? entry.hour.untilAtMost(this.now(), limit - n * this.weight) : 0;
  }

  #checkLimits(entry: KeyQuota, endpoint: string, now: number): void {
    if (!this.limits) return;
    if (entry.hour.count(now) + this.weight > this.limits.perHour)
      throw quotaRefusal('hour', entry.hour.untilDrop(now), this.limits, endpoint);
    const minute = entry.endpoints.get(endpoint);
    if ((minute?.count(now) ?? 0) + this.weight > this.limits.perMinutePerEndpoint)
      throw quotaRefusal('minute', minute?.untilDrop(now) ?? 0, this.limits, endpoint);
  }

  #blocked(waitMs: number): UpstreamError {
    return quotaRefusal('retry-after', waitMs, this.limits, '');
  }
}

/** The gateway's own RATE_LIMITED: the key was told to wait, or a request would exceed one of its limits. */
export function quotaRefusal(
  reason: 'retry-after' | 'hour' | 'minute',
  waitMs: number,
  limits: QuotaLimits | null,
  endpoint: string,
): UpstreamError {
  const message =
    reason === 'retry-after'
      ? 'The HyperStudy API asked this key to wait'
      : reason === 'hour'
        ? `This key has used its ${limits?.perHour ?? 0} upstream requests of the last hour`
        : `This key has used its ${limits?.perMinutePerEndpoint ?? 0} requests of the last minute to ${endpoint}`;
  return new UpstreamError(message, {
    code: 'RATE_LIMITED',
    status: null,
    retryAfter: Math.max(1, Math.ceil(waitMs / 1000)),
    details: { source: 'gateway', reason },
  });
}
