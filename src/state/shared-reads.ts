import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { addTo, LOCAL_TICKET, MemoryCache, removeFrom, type CacheLookup, type MemoryCacheOptions, type ResponseCache } from './cache.ts';
import type { Envelope } from '../upstream/envelope.ts';
import { UpstreamError } from '../upstream/errors.ts';

export { QuotaTracker, type QuotaLimits, type QuotaState } from './quota.ts';

/** A stable, irreversible label for an API key: caches and counters are keyed by it, never by the key. */
/**
 * Recent keys' labels, so that a key's requests do not each hash it again. The keys are in this
 * process's memory while their requests run anyway; this holds at most HASHES_MAX of them.
 */
const hashes = new Map<string, string>();
const HASHES_MAX = 1_000;

export function keyHash(key: string): string {
  let hash = hashes.get(key);
  if (hash === undefined) {
    hash = createHash('sha256').update(key).digest('hex').slice(0, 24);
    // Bounded: past the bound the labels are worked out again (a key is hashed on each of its requests otherwise).
    if (hashes.size >= HASHES_MAX) hashes.clear();
    hashes.set(key, hash);
  }
  return hash;
}

export interface SharedReadsOptions extends MemoryCacheOptions {
  /** Where answers are remembered (default: this process's memory, bounded by the options above). */
  cache?: ResponseCache;
}

/** How a read was answered: sent upstream, joined an identical read in flight, or found in the cache. */
export type SharedHow = 'sent' | 'coalesced' | 'cached';

interface Flight {
  hash: string;
  /** The key, the URL and the generation of the cache it missed in: only readers that saw the same generation join it. */
  id: string;
  /** Its answer, until it lands (see #land). */
  promise: Promise<Envelope> | null;
  controller: AbortController;
  /** Readers still waiting for it; when the last one gives up, the request is cancelled. */
  readers: number;
  /** False once the key wrote something after the request started: its answer is not remembered. */
  cacheable: boolean;
}

/**
 * Reads shared by every operation of the process, always per key: identical GETs in flight at once are
 * sent once (coalesced, within this process) and answers are remembered for a short TTL in the cache
 * (this process's memory, bounded in entries and bytes, or Redis shared by every process with the
 * memory in front). A write by a key forgets that key's answers (in every process sharing the cache)
 * and detaches its reads in flight, so that nothing the key reads after its write is older than the
 * write. A request in flight is cancelled once every reader waiting for it has given up.
 *
 * A read asks the cache first, then joins an identical read in flight that missed in the same
 * generation of the key's cache: a reader that comes after another process's write sees a newer
 * generation, and so never joins a request sent before that write.
 */
export class SharedReads {
  readonly #cache: ResponseCache;
  readonly #inFlight = new Map<string, Flight>();
  readonly #flightsByKey = new Map<string, Set<Flight>>();
  readonly #leaving = new AbortFanOut();
  readonly #now: () => number;

  constructor(private readonly options: SharedReadsOptions) {
    const clock = options.clock ?? performance;
    this.#now = () => clock.now();
    this.#cache = options.cache ?? new MemoryCache(options);
  }

  /**
   * `fetch` runs (with a signal that aborts once no reader waits any more) unless an identical request
   * of the key is in flight or fresh in the cache; `how` (and `onHow`, called as soon as it is known,
   * before the answer settles) says which. `signal` is this reader's: when it aborts, this reader
   * stops waiting.
   */
  get(
    hash: string,
    url: string,
    fetch: (signal: AbortSignal) => Promise<Envelope>,
    signal?: AbortSignal | (() => AbortSignal),
    onHow?: (how: SharedHow) => void,
    /** Whether the upstream has confirmed the key to this process (see `abandon`). */
    confirmed = true,
  ): { envelope: Promise<Envelope>; how: Promise<SharedHow> } {
    let tell: (how: SharedHow) => void = () => undefined;
    const how = new Promise<SharedHow>((resolve) => {
      tell = (h) => {
        onHow?.(h);
        resolve(h);
      };
    });
    const found = this.#cache.enabled ? this.#cache.lookup(hash, url, confirmed) : { miss: LOCAL_TICKET };
    const envelope =
      found instanceof Promise
        ? found.then((looked) => this.#answer(hash, url, looked, fetch, signal, tell))
        : this.#answer(hash, url, found, fetch, signal, tell);
    return { envelope, how };
  }

  #answer(
    hash: string,
    url: string,
    looked: CacheLookup,
    fetch: (signal: AbortSignal) => Promise<Envelope>,
    lazySignal: AbortSignal | (() => AbortSignal) | undefined,
    tell: (how: SharedHow) => void,
  ): Promise<Envelope> {
    if ('envelope' in looked) {
      tell('cached');
      return Promise.resolve(looked.envelope);
    }
    // Asked for only now: an answer from the cache needs no signal (a session makes its own on first use).
    const signal = typeof lazySignal === 'function' ? lazySignal() : lazySignal;
    const id = `${hash} ${url} ${looked.miss.generation}`;
    const joined = this.#inFlight.get(id);
    if (joined?.promise) {
      tell('coalesced');
      return this.#read(joined, joined.promise, signal);
    }
    // This reader gave up while the cache was asked: nothing to send.
    if (signal?.aborted) return Promise.reject(signal.reason);
    tell('sent');
    const started = this.#now();
    const controller = new AbortController();
    const flight: Flight = { hash, id, controller, readers: 0, cacheable: true, promise: null };
    const promise = fetch(controller.signal).then(
      (envelope) => {
        this.#land(flight);
        const ttl = this.options.ttlMs - (this.#now() - started);
        if (this.#cache.enabled && flight.cacheable && ttl >= 1) this.#cache.store(hash, url, envelope, ttl, looked.miss);
        return envelope;
      },
      (error: unknown) => {
        this.#land(flight);
        throw error;
      },
    );
    flight.promise = promise;
    // Readers handle its outcome; once all have left, nobody does.
    promise.catch(() => undefined);
    this.#inFlight.set(id, flight);
    addTo(this.#flightsByKey, hash, flight);
    return this.#read(flight, promise, signal);
  }

  /**
   * The key wrote something: its cached answers are dropped (in every process sharing the cache, once
   * this resolves) and its reads in flight are not joined or remembered.
   */
  /** The key's request got no answer, and the upstream never confirmed the key: the shared cache drops what it wrote for it. */
  async abandon(hash: string): Promise<void> {
    await this.#cache.abandon?.(hash);
  }

  invalidate(hash: string): void | Promise<void> {
    for (const flight of this.#flightsByKey.get(hash) ?? []) {
      flight.cacheable = false;
      if (this.#inFlight.get(flight.id) === flight) this.#inFlight.delete(flight.id);
    }
    this.#flightsByKey.delete(hash);
    return this.#cache.invalidate(hash);
  }

  /** Answers held in this process's memory. */
  get size(): number {
    return this.#cache.size;
  }

  /** Bytes held in this process's memory (the bodies' sizes). */
  get bytes(): number {
    return this.#cache.bytes;
  }

  /** Requests in flight that others may join. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Stops the sweeper and drops every answer held in memory. */
  close(): void {
    this.#cache.close();
  }

  /**
   * Out of the indexes, the flight lets go of its answer (its readers hold theirs). V8 keeps a Map's or
   * Set's superseded tables, entries and all, linked to the new one for its iterators, and its
   * young-generation collector keeps alive whatever such a table in the old generation refers to, until
   * a full collection: through the long-lived index, every flight since the last one, and every answer
   * they read, survived the scavenges to the old generation (with the session's own fix,
   * `npm run bench:profile -- --retained` finds 0.06 MB of a 20×4 dashboard's 11 MB alive after it, not
   * 2.9; test/shared-reads.test.ts, test/retention.test.ts).
   */
  #land(flight: Flight): void {
    if (this.#inFlight.get(flight.id) === flight) this.#inFlight.delete(flight.id);
    removeFrom(this.#flightsByKey, flight.hash, flight);
    flight.promise = null;
  }

  #read(flight: Flight, promise: Promise<Envelope>, signal: AbortSignal | undefined): Promise<Envelope> {
    flight.readers++;
    if (!signal) return promise;
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
      const stay = this.#leaving.on(signal, leave);
      promise.then(
        (envelope) => {
          stay();
          resolve(envelope);
        },
        (error: unknown) => {
          stay();
          reject(error);
        },
      );
    });
  }
}

/**
 * Calls back the readers waiting on a signal when it aborts, through one 'abort' listener per signal:
 * an EventTarget walks all of a signal's listeners to add or remove one, so one listener per read made
 * the N reads of an operation (all on its one signal) cost N² — seconds for a few tens of thousands.
 */
class AbortFanOut {
  readonly #waiting = new WeakMap<AbortSignal, Set<() => void>>();

  /** Calls `leave` when `signal` aborts; the function returned stops that (in constant time). */
  on(signal: AbortSignal, leave: () => void): () => void {
    let waiting = this.#waiting.get(signal);
    if (!waiting) {
      const fresh = new Set<() => void>();
      waiting = fresh;
      this.#waiting.set(signal, fresh);
      signal.addEventListener(
        'abort',
        () => {
          this.#waiting.delete(signal);
          for (const call of fresh) call();
        },
        { once: true },
      );
    }
    waiting.add(leave);
    return () => void waiting.delete(leave);
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
    const missing = this.ttlMs > 0 ? missingScopes(error) : [];
    if (missing.length === 0) return;
    const scopes = this.#missing.get(hash) ?? new Map<string, { until: number; error: UpstreamError }>();
    for (const scope of missing) scopes.set(scope, { until: this.now() + this.ttlMs, error });
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
    throw mirroredRefusal(known.error);
  }
}

/** The scopes a 403 says the key lacks (`details.required`, when `details.provided` is there too). */
export function missingScopes(error: UpstreamError): string[] {
  if (error.status !== 403) return [];
  const { required, provided } = error.details;
  if (!Array.isArray(required) || !Array.isArray(provided)) return [];
  return required.filter((scope): scope is string => typeof scope === 'string');
}

/** The FORBIDDEN a remembered refusal answers with, without asking the upstream. */
export function mirroredRefusal(error: Pick<UpstreamError, 'message' | 'upstreamCode' | 'details'>): UpstreamError {
  return new UpstreamError(error.message, {
    code: 'FORBIDDEN',
    status: 403,
    upstreamCode: error.upstreamCode,
    details: { ...error.details, mirrored: true },
  });
}
