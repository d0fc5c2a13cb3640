import { LRUCache } from 'lru-cache';
import type { Envelope } from '../upstream/envelope.ts';

/**
 * What a look-up found: a fresh answer, or a miss with the ticket an answer fetched now is stored
 * under. The ticket holds the key's generation at the look-up: a write by the key moves it on, so that
 * an answer fetched before a write is never found after it (in any process sharing the cache).
 */
export type CacheLookup = { envelope: Envelope } | { miss: CacheTicket };

export interface CacheTicket {
  /** The key's generation when it was looked up (opaque; `local` for this process's memory alone). */
  readonly generation: string;
}

/**
 * The response cache behind the shared reads, always per key (a hash of it): the in-memory one of one
 * process (`MemoryCache`), or Redis shared by every process with this process's memory in front
 * (`RedisCache`). Coalescing of identical reads in flight is not its business (`SharedReads` does it,
 * per process).
 */
export interface ResponseCache {
  /** Whether answers are kept at all (CACHE_TTL_MS > 0). */
  readonly enabled: boolean;
  /** The key's fresh answer to `url`; synchronous when nothing else needs asking. Never rejects. */
  /**
   * `confirmed`: whether the upstream has confirmed the key to this process; what a shared cache writes
   * for a key that is not (its generation) is dropped again by `abandon` if its request gets no answer.
   */
  lookup(hash: string, url: string, confirmed?: boolean): CacheLookup | Promise<CacheLookup>;
  /** The key's request got no answer from the upstream, which never confirmed the key: drop what its lookups wrote. */
  abandon?(hash: string): void | Promise<void>;
  /** Remembers an answer fetched after `ticket`'s look-up for `ttlMs`, unless the key has written since. */
  store(hash: string, url: string, envelope: Envelope, ttlMs: number, ticket: CacheTicket): void;
  /** The key wrote: none of its answers cached before is found again. Resolves once that holds for every process it can reach. */
  invalidate(hash: string): void | Promise<void>;
  /** Answers held in this process's memory. */
  readonly size: number;
  /** Bytes held in this process's memory (the bodies' sizes). */
  readonly bytes: number;
  close(): void;
}

export interface MemoryCacheOptions {
  /** How long an answer is served, in ms (0: never). */
  ttlMs: number;
  /** Answers held at most. */
  maxEntries: number;
  /** Bytes held at most, counted as the sizes of the bodies the answers came in. */
  maxBytes: number;
  /** For tests: the clock the TTL runs on. */
  clock?: { now(): number };
}

/** The generation of answers kept in one process's memory only. */
export const LOCAL_TICKET: CacheTicket = { generation: 'local' };

/** Adds `value` to the set under `key`, creating it. */
export function addTo<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (set) set.add(value);
  else index.set(key, new Set([value]));
}

export function removeFrom<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) index.delete(key);
}

/**
 * An LRU of answers bounded in entries and bytes, with TTLs and expired entries swept every second,
 * indexed by key so that a key's write drops its answers without a scan. Each entry carries the
 * generation it was stored under; `get` finds only entries of the generation asked for.
 */
export class GenerationLru {
  readonly #lru: LRUCache<string, { envelope: Envelope; generation: string }>;
  /** Ids of each key's answers, so that a write forgets them without a scan. */
  readonly #byKey = new Map<string, Set<string>>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: Omit<MemoryCacheOptions, 'ttlMs'> & { ttlMs: number }) {
    const clock = options.clock ?? performance;
    this.#lru = new LRUCache({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      sizeCalculation: (entry, id) => Math.max(1, entry.envelope.bytes + id.length),
      ttl: options.ttlMs,
      perf: clock,
      dispose: (_entry, id) => removeFrom(this.#byKey, id.slice(0, id.indexOf(' ')), id),
    });
    const lru = this.#lru;
    this.#sweeper = setInterval(() => lru.purgeStale(), Math.min(1_000, Math.max(50, options.ttlMs)));
    this.#sweeper.unref();
  }

  /** The entry of `id` when it was stored under `generation` (any generation when null). */
  get(id: string, generation: string | null): Envelope | undefined {
    const entry = this.#lru.get(id);
    return entry && (generation === null || entry.generation === generation) ? entry.envelope : undefined;
  }

  /** The generation the entry of `id` was stored under, without touching its recency. */
  generationOf(id: string): string | undefined {
    return this.#lru.peek(id)?.generation;
  }

  set(hash: string, id: string, envelope: Envelope, generation: string, ttlMs: number): void {
    this.#lru.set(id, { envelope, generation }, { ttl: ttlMs });
    if (this.#lru.has(id)) addTo(this.#byKey, hash, id);
  }

  dropKey(hash: string): void {
    for (const id of [...(this.#byKey.get(hash) ?? [])]) this.#lru.delete(id);
    this.#byKey.delete(hash);
  }

  get size(): number {
    return this.#lru.size;
  }

  get bytes(): number {
    return this.#lru.calculatedSize;
  }

  close(): void {
    clearInterval(this.#sweeper);
    this.#lru.clear();
  }
}

/** One process's cache: what the gateway had before Redis, and what it falls back to without it. */
export class MemoryCache implements ResponseCache {
  readonly #lru: GenerationLru | null;

  constructor(options: MemoryCacheOptions) {
    this.#lru = options.ttlMs > 0 ? new GenerationLru(options) : null;
  }

  get enabled(): boolean {
    return this.#lru !== null;
  }

  lookup(hash: string, url: string): CacheLookup {
    const envelope = this.#lru?.get(`${hash} ${url}`, null);
    return envelope ? { envelope } : { miss: LOCAL_TICKET };
  }

  store(hash: string, url: string, envelope: Envelope, ttlMs: number): void {
    this.#lru?.set(hash, `${hash} ${url}`, envelope, LOCAL_TICKET.generation, ttlMs);
  }

  invalidate(hash: string): void {
    this.#lru?.dropKey(hash);
  }

  get size(): number {
    return this.#lru?.size ?? 0;
  }

  get bytes(): number {
    return this.#lru?.bytes ?? 0;
  }

  close(): void {
    this.#lru?.close();
  }
}
