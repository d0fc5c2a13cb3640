import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Envelope } from './envelope.ts';
import { UpstreamError } from './errors.ts';

export { QuotaTracker, type QuotaLimits, type QuotaState } from './quota.ts';

/** A stable, irreversible label for an API key: caches and counters are keyed by it, never by the key. */
export const keyHash = (key: string): string => createHash('sha256').update(key).digest('hex').slice(0, 24);

export interface SharedReadsOptions {
  /** How long an answer is served from memory, in ms, counted from when its request started (0: never). */
  ttlMs: number;
  /** Answers held at most. */
  maxEntries: number;
  /** Bytes held at most, counted as the sizes of the bodies the answers came in. */
  maxBytes: number;
  /** For tests: the clock the TTL runs on. */
  clock?: { now(): number };
}

interface Flight {
  hash: string;
  id: string;
  promise: Promise<Envelope>;
  controller: AbortController;
  /** Readers still waiting for it; when the last one gives up, the request is cancelled. */
  readers: number;
  /** False once the key wrote something after the request started: its answer is not remembered. */
  cacheable: boolean;
}

/** Adds `value` to the set under `key`, creating it. */
function addTo<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (set) set.add(value);
  else index.set(key, new Set([value]));
}

function removeFrom<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) index.delete(key);
}

/**
 * Reads shared by every operation of the process, always per key: identical GETs in flight at once are
 * sent once (coalesced) and answers are remembered for a short TTL, bounded in entries and bytes, with
 * expired entries swept. A write by a key forgets that key's answers and detaches its reads in flight,
 * so that nothing the key reads after its write is older than the write. A request in flight is
 * cancelled once every reader waiting for it has given up.
 */
export class SharedReads {
  readonly #cache: LRUCache<string, Envelope> | null;
  /** Ids of each key's cached answers, so that a write forgets them without a scan. */
  readonly #cachedByKey = new Map<string, Set<string>>();
  readonly #inFlight = new Map<string, Flight>();
  readonly #flightsByKey = new Map<string, Set<Flight>>();
  readonly #sweeper: NodeJS.Timeout | null;
  readonly #now: () => number;

  constructor(private readonly options: SharedReadsOptions) {
    const clock = options.clock ?? performance;
    this.#now = () => clock.now();
    if (options.ttlMs <= 0) {
      this.#cache = null;
      this.#sweeper = null;
      return;
    }
    this.#cache = new LRUCache<string, Envelope>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      sizeCalculation: (envelope, id) => Math.max(1, envelope.bytes + id.length),
      ttl: options.ttlMs,
      perf: clock,
      dispose: (_envelope, id) => removeFrom(this.#cachedByKey, id.slice(0, id.indexOf(' ')), id),
    });
    const cache = this.#cache;
    this.#sweeper = setInterval(() => cache.purgeStale(), Math.min(1_000, Math.max(50, options.ttlMs)));
    this.#sweeper.unref();
  }

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
    const cached = this.#cache?.get(id);
    if (cached) return { envelope: Promise.resolve(cached), how: 'cached' };
    const joined = this.#inFlight.get(id);
    if (joined) return { envelope: this.#read(joined, signal), how: 'coalesced' };
    const started = this.#now();
    const controller = new AbortController();
    const flight: Flight = {
      hash,
      id,
      controller,
      readers: 0,
      cacheable: true,
      promise: fetch(controller.signal).then(
        (envelope) => {
          this.#land(flight);
          const ttl = this.options.ttlMs - (this.#now() - started);
          if (this.#cache && flight.cacheable && ttl >= 1) {
            this.#cache.set(id, envelope, { ttl });
            if (this.#cache.has(id)) addTo(this.#cachedByKey, hash, id);
          }
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
    addTo(this.#flightsByKey, hash, flight);
    return { envelope: this.#read(flight, signal), how: 'sent' };
  }

  /** The key wrote something: its cached answers are dropped and its reads in flight are not joined or remembered. */
  invalidate(hash: string): void {
    for (const id of [...(this.#cachedByKey.get(hash) ?? [])]) this.#cache?.delete(id);
    this.#cachedByKey.delete(hash);
    for (const flight of this.#flightsByKey.get(hash) ?? []) {
      flight.cacheable = false;
      if (this.#inFlight.get(flight.id) === flight) this.#inFlight.delete(flight.id);
    }
    this.#flightsByKey.delete(hash);
  }

  /** Answers held. */
  get size(): number {
    return this.#cache?.size ?? 0;
  }

  /** Bytes held (the bodies' sizes). */
  get bytes(): number {
    return this.#cache?.calculatedSize ?? 0;
  }

  /** Requests in flight that others may join. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Stops the sweeper and drops every answer. */
  close(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#cache?.clear();
  }

  #land(flight: Flight): void {
    if (this.#inFlight.get(flight.id) === flight) this.#inFlight.delete(flight.id);
    removeFrom(this.#flightsByKey, flight.hash, flight);
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
