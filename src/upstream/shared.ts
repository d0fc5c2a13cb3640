import { createHash } from 'node:crypto';
import type { Envelope } from './client.ts';
import { RETRY_AFTER_MAX_SECONDS } from './envelope.ts';
import { UpstreamError } from './errors.ts';

/** A stable, irreversible label for an API key: caches and counters are keyed by it, never by the key. */
export const keyHash = (key: string): string => createHash('sha256').update(key).digest('hex').slice(0, 24);

/**
 * Reads shared by every operation of the process, always per key: identical GETs in flight at once are
 * sent once (coalesced), and answers are remembered for a short TTL. A write by a key forgets that
 * key's answers.
 */
export class SharedReads {
  readonly #inFlight = new Map<string, Promise<Envelope>>();
  readonly #cache = new Map<string, { at: number; envelope: Envelope }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** `fetch` runs unless an identical request is in flight or fresh in the cache; `how` says which. */
  get(hash: string, url: string, fetch: () => Promise<Envelope>): { envelope: Promise<Envelope>; how: 'sent' | 'coalesced' | 'cached' } {
    const id = `${hash} ${url}`;
    const cached = this.#cache.get(id);
    if (cached && this.now() - cached.at < this.ttlMs) return { envelope: Promise.resolve(cached.envelope), how: 'cached' };
    if (cached) this.#cache.delete(id);
    const pending = this.#inFlight.get(id);
    if (pending) return { envelope: pending, how: 'coalesced' };
    const started = this.now();
    const request = fetch().then(
      (envelope) => {
        this.#inFlight.delete(id);
        if (this.ttlMs > 0) this.#remember(id, started, envelope);
        return envelope;
      },
      (error: unknown) => {
        this.#inFlight.delete(id);
        throw error;
      },
    );
    this.#inFlight.set(id, request);
    return { envelope: request, how: 'sent' };
  }

  /** Forgets every cached answer of one key (after it wrote something). */
  forget(hash: string): void {
    for (const id of this.#cache.keys()) if (id.startsWith(`${hash} `)) this.#cache.delete(id);
  }

  get size(): number {
    return this.#cache.size;
  }

  #remember(id: string, at: number, envelope: Envelope): void {
    this.#cache.set(id, { at, envelope });
    while (this.#cache.size > this.maxEntries) {
      const oldest = this.#cache.keys().next().value;
      if (oldest === undefined) break;
      this.#cache.delete(oldest);
    }
  }
}

/**
 * Remembers, per key, the scopes the upstream said it lacks (403 with `details.required`), so that for
 * a while requests needing them are answered FORBIDDEN at once instead of spending upstream requests.
 */
export class ScopeMirror {
  readonly #missing = new Map<string, Map<string, { until: number; error: UpstreamError }>>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  learn(hash: string, error: UpstreamError): void {
    if (this.ttlMs <= 0 || error.status !== 403) return;
    const required = error.details.required;
    const provided = error.details.provided;
    if (!Array.isArray(required) || !Array.isArray(provided)) return;
    const scopes = this.#missing.get(hash) ?? new Map();
    for (const scope of required) if (typeof scope === 'string') scopes.set(scope, { until: this.now() + this.ttlMs, error });
    this.#missing.set(hash, scopes);
  }

  /** Throws the remembered FORBIDDEN when the key is known to lack `scope`. */
  check(hash: string, scope: string | null): void {
    if (scope === null) return;
    const known = this.#missing.get(hash)?.get(scope);
    if (!known) return;
    if (known.until <= this.now()) {
      this.#missing.get(hash)?.delete(scope);
      return;
    }
    throw new UpstreamError(known.error.message, {
      code: 'FORBIDDEN',
      status: 403,
      upstreamCode: known.error.upstreamCode,
      details: { ...known.error.details, mirrored: true },
    });
  }
}

export interface QuotaLimits {
  perHour: number;
  perMinutePerEndpoint: number;
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

/**
 * Tracks each key's spend against the upstream's documented limits and honours a 429's Retry-After
 * for every operation of that key, so that none of them hammers the upstream meanwhile.
 */
export class QuotaTracker {
  readonly #keys = new Map<
    string,
    { sent: number[]; endpoints: Map<string, number[]>; blockedUntil: number; upstreamRemaining: number | null }
  >();

  constructor(
    private readonly limits: QuotaLimits | null,
    /** The longest a request waits out a 429's Retry-After instead of failing RATE_LIMITED at once. */
    private readonly maxWaitMs = 0,
    private readonly now: () => number = Date.now,
  ) {}

  #entry(hash: string) {
    let entry = this.#keys.get(hash);
    if (!entry) {
      entry = { sent: [], endpoints: new Map(), blockedUntil: 0, upstreamRemaining: null };
      this.#keys.set(hash, entry);
      if (this.#keys.size > 10_000) this.#prune();
    }
    return entry;
  }

  /**
   * Reserves one request for the key and endpoint. Returns how long to wait first (while the upstream
   * asked the key to wait, if that is short), or throws RATE_LIMITED without calling upstream.
   */
  take(hash: string, endpoint: string): number {
    const now = this.now();
    const entry = this.#entry(hash);
    if (entry.blockedUntil > now) {
      const wait = entry.blockedUntil - now;
      if (wait <= this.maxWaitMs) return wait;
      throw this.#limited(Math.ceil(wait / 1000), 'The HyperStudy API asked this key to wait');
    }
    entry.sent = entry.sent.filter((t) => now - t < 3_600_000);
    const minute = (entry.endpoints.get(endpoint) ?? []).filter((t) => now - t < 60_000);
    if (this.limits && entry.sent.length >= this.limits.perHour) {
      throw this.#limited(
        Math.ceil(((entry.sent[0] ?? now) + 3_600_000 - now) / 1000),
        `This key has used its ${this.limits.perHour} upstream requests of the last hour`,
      );
    }
    if (this.limits && minute.length >= this.limits.perMinutePerEndpoint) {
      throw this.#limited(
        Math.ceil(((minute[0] ?? now) + 60_000 - now) / 1000),
        `This key has used its ${this.limits.perMinutePerEndpoint} requests of the last minute to ${endpoint}`,
      );
    }
    entry.sent.push(now);
    minute.push(now);
    entry.endpoints.set(endpoint, minute);
    return 0;
  }

  /** Whether a Retry-After of this many seconds is short enough to wait out. */
  waitable(retryAfterSeconds: number): boolean {
    return retryAfterSeconds * 1000 <= this.maxWaitMs;
  }

  /** Counts a request sent without a reservation (a retry). */
  note(hash: string, endpoint: string): void {
    const now = this.now();
    const entry = this.#entry(hash);
    entry.sent.push(now);
    entry.endpoints.set(endpoint, [...(entry.endpoints.get(endpoint) ?? []), now]);
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

  state(hash: string): QuotaState {
    const entry = this.#entry(hash);
    const now = this.now();
    return {
      usedLastHour: entry.sent.filter((t) => now - t < 3_600_000).length,
      limitPerHour: this.limits?.perHour ?? 1000,
      upstreamRemaining: entry.upstreamRemaining,
      retryAfter: entry.blockedUntil > now ? Math.ceil((entry.blockedUntil - now) / 1000) : null,
    };
  }

  #limited(retryAfter: number, message: string): UpstreamError {
    return new UpstreamError(message, {
      code: 'RATE_LIMITED',
      status: null,
      retryAfter: Math.max(1, retryAfter),
      details: { source: 'gateway' },
    });
  }

  #prune(): void {
    const now = this.now();
    for (const [hash, entry] of this.#keys) {
      if (entry.blockedUntil < now && entry.sent.every((t) => now - t >= 3_600_000)) this.#keys.delete(hash);
    }
  }
}
