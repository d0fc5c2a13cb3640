import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Envelope } from './client.ts';
import { UpstreamError } from './errors.ts';

export { QuotaTracker, type QuotaLimits, type QuotaState } from './quota.ts';

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
 * Held for the `maxKeys` most recently refused keys.
 */
export class ScopeMirror {
  readonly #missing: LRUCache<string, Map<string, { until: number; error: UpstreamError }>>;

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    maxKeys = 10_000,
  ) {
    this.#missing = new LRUCache({ max: maxKeys });
  }

  get size(): number {
    return this.#missing.size;
  }

  learn(hash: string, error: UpstreamError): void {
    if (this.ttlMs <= 0 || error.status !== 403) return;
    const required = error.details.required;
    const provided = error.details.provided;
    if (!Array.isArray(required) || !Array.isArray(provided)) return;
    const scopes = this.#missing.get(hash) ?? new Map<string, { until: number; error: UpstreamError }>();
    for (const scope of required) if (typeof scope === 'string') scopes.set(scope, { until: this.now() + this.ttlMs, error });
    this.#missing.set(hash, scopes);
  }

  /** Throws the remembered FORBIDDEN when the key is known to lack `scope`. */
  check(hash: string, scope: string | null): void {
    if (scope === null) return;
    const scopes = this.#missing.get(hash, { updateAgeOnGet: false });
    const known = scopes?.get(scope);
    if (!scopes || !known) return;
    if (known.until <= this.now()) {
      scopes.delete(scope);
      if (scopes.size === 0) this.#missing.delete(hash);
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
