import { LocalFleet, type LiveFleet, type LiveRedis } from '../live/fleet.ts';
import { MemoryCache, type ResponseCache } from './cache.ts';
import type { UpstreamError } from '../upstream/errors.ts';
import { QuotaTracker, type QuotaLimits, type QuotaState } from './quota.ts';
import { ScopeMirror } from './shared-reads.ts';

/**
 * Each key's spend against the upstream's limits and the Retry-After it was told to wait, as the
 * session asks about it. Methods answer synchronously where nothing else needs asking (in memory);
 * with Redis they resolve once Redis answered or the local state stood in for it.
 */
export interface QuotaStore {
  /**
   * Before a request queues: how long to wait first (while the upstream asked the key to wait, if that
   * is short); throws RATE_LIMITED when the wait is longer or the request would exceed a limit.
   * Charges nothing.
   */
  admit(hash: string, endpoint: string): number | Promise<number>;
  /** At the moment a request is sent: counts it, or throws RATE_LIMITED (nothing counted) if it may not go. Atomic. */
  take(hash: string, endpoint: string): void | Promise<void>;
  /**
   * Counts a request that was sent without `take` (its key's probe, before the upstream confirmed the
   * key: nothing is held for a key until then), without deciding.
   */
  record(hash: string, endpoint: string): void | Promise<void>;
  /** Learns from an answer: the upstream's remaining budget, or a 429's Retry-After (every process then waits). */
  observe(hash: string, info: { remaining?: number | null; retryAfter?: number | null }): void | Promise<void>;
  /** Drops a key's state (the upstream said the key is not valid). */
  forget(hash: string, endpoint?: string): void | Promise<void>;
  /** Whether a Retry-After of this many seconds is short enough to wait out. */
  waitable(retryAfterSeconds: number): boolean;
  /** The key's spend as far as this process knows it (synchronous: it is reported with every answer). */
  state(hash: string): QuotaState;
  /**
   * Milliseconds until `n` more requests fit the key's hourly limit (0: now; null: never, they are
   * more than the limit): a table's refusal and dry run say when it would fit.
   */
  untilRoom(hash: string, n: number): number | null | Promise<number | null>;
  /** Keys whose state this process holds. */
  readonly size: number;
}

/** The scopes the upstream said a key lacks, remembered for a while. */
export interface ScopeStore {
  learn(hash: string, error: UpstreamError): void | Promise<void>;
  /** Throws (or rejects with) the remembered FORBIDDEN when the key is known to lack `scope`. */
  check(hash: string, scope: string | null): void | Promise<void>;
  /** Keys whose scopes this process holds. */
  readonly size: number;
}

/** What the metrics say about the shared state. */
export interface SharedStateStatus {
  /** `memory`: this process alone; `redis`: shared through Redis (which may be down right now). */
  backend: 'memory' | 'redis';
  /** With Redis: whether it is in use right now (false while the gateway falls back to local state). */
  redisUp: boolean | null;
  /** The per-key limits this process enforces right now (null: the quota guard is off). */
  limits: QuotaLimits | null;
  /** How many processes the limits are split between while the state is local (WORKERS × REPLICAS). */
  processes: number;
}

/**
 * The per-key state every operation shares: the response cache, the quota (usage per hour and per
 * endpoint-minute, Retry-After blocks) and the scope mirror. In memory it is this process's
 * (`MemorySharedState`); with `REDIS_URL` it is shared by every process and replica through Redis, with
 * local state standing in while Redis is down or slow (`RedisSharedState`).
 */
export interface SharedState {
  readonly cache: ResponseCache;
  readonly quota: QuotaStore;
  readonly scopes: ScopeStore;
  status(): SharedStateStatus;
  /**
   * Told of Redis transitions (down, up) and of each call answered locally instead, for metrics.
   * No-op in memory.
   */
  observe(observer: SharedStateObserver): void;
  /**
   * How live polling is shared: in memory each process polls its own feeds (`LocalFleet`); through
   * Redis one process polls each feed for the whole fleet (`RedisFleet`, its lease `leaseMs`).
   */
  fleet(options: { leaseMs: number }): LiveFleet;
  /** Redis for the export jobs' table and leases (null in memory: each process keeps its own jobs). */
  exportRedis(): LiveRedis | null;
  close(): Promise<void>;
}

export interface SharedStateObserver {
  transition(to: 'up' | 'down'): void;
  fallback(part: 'cache' | 'quota' | 'scopes' | 'live' | 'exports'): void;
}

export interface SharedStateOptions {
  cache: { ttlMs: number; maxEntries: number; maxBytes: number };
  /** The upstream's per-key limits (null: the quota guard is off). */
  quota: QuotaLimits | null;
  /** The longest Retry-After a request waits out, in ms. */
  retryAfterMaxMs: number;
  scopeCacheTtlMs: number;
  /** Keys whose quota and scope state is held in memory at most. */
  maxKeys: number;
  /**
   * Processes that serve the same keys (WORKERS × REPLICAS): while the state is local, each process
   * enforces this share of every limit, so that together they never exceed it.
   */
  processes: number;
}

/** A limit split between `processes`: each gets its floor share, at least one request. */
export const shareOf = (limit: number, processes: number): number => Math.max(1, Math.floor(limit / Math.max(1, processes)));

export function splitLimits(limits: QuotaLimits | null, processes: number): QuotaLimits | null {
  return limits === null
    ? null
    : { ...limits, perHour: shareOf(limits.perHour, processes), perMinutePerEndpoint: shareOf(limits.perMinutePerEndpoint, processes) };
}

/** This process's state alone: what the gateway does without REDIS_URL. */
export class MemorySharedState implements SharedState {
  readonly cache: MemoryCache;
  readonly quota: QuotaTracker;
  readonly scopes: ScopeMirror;
  readonly #limits: QuotaLimits | null;

  constructor(
    private readonly options: SharedStateOptions,
    now: () => number = Date.now,
  ) {
    this.#limits = splitLimits(options.quota, options.processes);
    this.cache = new MemoryCache(options.cache);
    this.quota = new QuotaTracker(this.#limits, options.retryAfterMaxMs, now, options.maxKeys);
    this.scopes = new ScopeMirror(options.scopeCacheTtlMs, now, options.maxKeys);
  }

  status(): SharedStateStatus {
    return { backend: 'memory', redisUp: null, limits: this.#limits, processes: this.options.processes };
  }

  observe(): void {}

  fleet(): LiveFleet {
    return new LocalFleet();
  }

  exportRedis(): null {
    return null;
  }

  async close(): Promise<void> {
    this.cache.close();
  }
}

export interface RedisSettings {
  url: string;
  /** Prefix of every Redis key the gateway writes. */
  keyPrefix: string;
  /** How long one Redis call may take before the gateway answers from local state, in ms. */
  timeoutMs: number;
}
