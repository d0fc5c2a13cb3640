import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Envelope } from './client.ts';
import { UpstreamError } from './errors.ts';

export { QuotaTracker, type QuotaLimits, type QuotaState } from './quota.ts';

/** A stable, irreversible label for an API key: caches and counters are keyed by it, never by the key. */
export const keyHash = (key: string): string => createHash('sha256').update(key).digest('hex').slice(0, 24);

interface Flight {
  id: string;
  promise: Promise<Envelope>;
  controller: AbortController;
  /** Readers still waiting for it; when the last one gives up, the request is cancelled. */
  readers: number;
  /** False once nobody waits for it: its answer (if any) is not remembered. */
  cacheable: boolean;
}

/**
 * Reads shared by every operation of the process, always per key: identical GETs in flight at once are
 * sent once (coalesced), and answers are remembered for a short TTL. A write by a key forgets that
 * key's answers. A request in flight is cancelled once every reader waiting for it has given up.
 */
export class SharedReads {
  readonly #inFlight = new Map<string, Flight>();
  readonly #cache = new Map<string, { at: number; envelope: Envelope }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * `fetch` runs (with a signal that aborts once no reader waits any more) unless an identical request
   * of the key is in flight or fresh in the cache; `how` says which. `signal` is this reader's: when it
   * aborts, this reader stops waiting.
   */
  get(
    hash: string,
    url: string,
    fetch: (signal: AbortSignal) => Promise<Envelope>,
    signal?: AbortSignal,
  ): { envelope: Promise<Envelope>; how: 'sent' | 'coalesced' | 'cached' } {
    const id = `${hash} ${url}`;
    const cached = this.#cache.get(id);
    if (cached && this.now() - cached.at < this.ttlMs) return { envelope: Promise.resolve(cached.envelope), how: 'cached' };
    if (cached) this.#cache.delete(id);
    const joined = this.#inFlight.get(id);
    if (joined) return { envelope: this.#read(joined, signal), how: 'coalesced' };
    const started = this.now();
    const controller = new AbortController();
    const flight: Flight = {
      id,
      controller,
      readers: 0,
      cacheable: true,
      promise: fetch(controller.signal).then(
        (envelope) => {
          this.#land(flight);
          if (this.ttlMs > 0 && flight.cacheable) this.#remember(id, started, envelope);
          return envelope;
        },
        (error: unknown) => {
          this.#land(flight);
          throw error;
        },
      ),
    };
    // Readers handle its outcome; once all have left, nobody does.
    flight.promise.catch(() => undefined);
    this.#inFlight.set(id, flight);
    return { envelope: this.#read(flight, signal), how: 'sent' };
  }

  /** Forgets every cached answer of one key (after it wrote something). */
  forget(hash: string): void {
    for (const id of this.#cache.keys()) if (id.startsWith(`${hash} `)) this.#cache.delete(id);
  }

  get size(): number {
    return this.#cache.size;
  }

  /** Requests in flight that others may join. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  #land(flight: Flight): void {
    if (this.#inFlight.get(flight.id) === flight) this.#inFlight.delete(flight.id);
  }

  #read(flight: Flight, signal: AbortSignal | undefined): Promise<Envelope> {
    flight.readers++;
    if (!signal) return flight.promise;
    return new Promise<Envelope>((resolve, reject) => {
      const leave = (): void => {
        reject(signal.reason);
        if (--flight.readers > 0) return;
        // Nobody waits any more: nobody may join a request about to be cancelled, nor cache its end.
        flight.cacheable = false;
        this.#land(flight);
        flight.controller.abort(signal.reason);
      };
      if (signal.aborted) return leave();
      signal.addEventListener('abort', leave, { once: true });
      flight.promise.then(
        (envelope) => {
          signal.removeEventListener('abort', leave);
          resolve(envelope);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', leave);
          reject(error);
        },
      );
    });
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
