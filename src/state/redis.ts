import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { RedisFleet, type LiveRedis } from '../live/fleet.ts';
import { GenerationLru, LOCAL_TICKET, type CacheLookup, type CacheTicket, type ResponseCache } from './cache.ts';
import type { Envelope } from '../upstream/envelope.ts';
import { RETRY_AFTER_MAX_SECONDS } from '../upstream/envelope.ts';
import type { UpstreamError } from '../upstream/errors.ts';
import {
  HOUR_BUCKET_MS,
  HOUR_MS,
  MINUTE_BUCKET_MS,
  countedMinuteOf,
  quotaRefusal,
  QuotaTracker,
  type KnownCount,
  type QuotaLimits,
  type QuotaState,
} from './quota.ts';
import { defineScripts } from './redis-scripts.ts';
import { mirroredRefusal, missingScopes, ScopeMirror } from './shared-reads.ts';
import {
  MemorySharedState,
  splitLimits,
  type QuotaStore,
  type RedisSettings,
  type ScopeStore,
  type SharedState,
  type SharedStateObserver,
  type SharedStateOptions,
  type SharedStateStatus,
} from './state.ts';

/** What a Redis call gave when Redis could not answer: the caller uses local state instead. */
const FALLBACK = Symbol('fallback');
type Fallback = typeof FALLBACK;

type Part = 'cache' | 'quota' | 'scopes' | 'live' | 'exports';

/**
 * The connection and whether the shared state is in Redis right now. Every call has `timeoutMs`; one
 * that fails or times out turns Redis "down": callers use local state (without asking Redis at all) and
 * a probe asks Redis every `probeMs` until it answers, then the parts catch Redis up (what they did
 * meanwhile) and it is "up" again. Each transition is logged once and counted; each call answered
 * locally is counted.
 */
class RedisLink {
  readonly redis: Redis;
  #up = true;
  #probe: NodeJS.Timeout | null = null;
  #closed = false;
  readonly #observers: SharedStateObserver[] = [];
  readonly #catchUps: { task: () => Promise<void>; pending: () => boolean }[] = [];
  readonly #downs: (() => void)[] = [];

  constructor(
    private readonly settings: RedisSettings,
    private readonly logger: Logger,
    private readonly probeMs: number,
  ) {
    this.redis = new Redis(settings.url, {
      // A backstop that clears commands queued while disconnected; `call` applies REDIS_TIMEOUT_MS itself.
      commandTimeout: Math.max(1_000, 10 * settings.timeoutMs),
      connectTimeout: Math.max(1_000, settings.timeoutMs),
      // While (re)connecting, a call waits in the queue at most its timeout.
      enableOfflineQueue: true,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(100 * times, probeMs),
      enableAutoPipelining: true,
      connectionName: 'hyperstudy-graphql',
    });
    defineScripts(this.redis);
    // Connection errors are reported as transitions (once each); the client's own events only at debug.
    this.redis.on('error', (error: Error) => this.logger.debug({ err: error.message }, 'redis connection error'));
    // A lost connection turns the state local at once, rather than after a call's timeout.
    this.redis.on('close', () => this.#down(new Error('The connection to Redis closed')));
  }

  get up(): boolean {
    return this.#up;
  }

  observe(observer: SharedStateObserver): void {
    this.#observers.push(observer);
  }

  /** Runs (synchronously) as the state turns local, before any call is answered locally. */
  onDown(task: () => void): void {
    this.#downs.push(task);
  }

  /** Runs before the state goes back to Redis after an outage (e.g. replaying what was counted locally). */
  onCatchUp(task: () => Promise<void>, pending: () => boolean): void {
    this.#catchUps.push({ task, pending });
  }

  /** Counts a call answered from local state. */
  fellBack(part: Part): void {
    for (const o of this.#observers) o.fallback(part);
  }

  /** `command` against Redis, or FALLBACK (counted) when Redis is down or this call fails. */
  async call<T>(part: Part, command: (redis: Redis) => Promise<T>): Promise<T | Fallback> {
    if (!this.#up) {
      this.fellBack(part);
      return FALLBACK;
    }
    try {
      return await this.#withTimeout(command(this.redis));
    } catch (error) {
      this.#down(error);
      this.fellBack(part);
      return FALLBACK;
    }
  }

  /**
   * Rejects when `pending` has not settled within REDIS_TIMEOUT_MS. When the timer fires, this process
   * first lets pending I/O be read (setImmediate runs after the poll phase): after the event loop was
   * busy (a large answer parsed), Redis's reply may be waiting in the socket, and a busy gateway must
   * not take that for a slow Redis.
   */
  #withTimeout<T>(pending: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(
        () =>
          setImmediate(() => {
            if (settled) return;
            settled = true;
            reject(new Error(`Redis did not answer within ${this.settings.timeoutMs} ms`));
          }),
        this.settings.timeoutMs,
      );
      pending.then(
        (value) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  #down(error: unknown): void {
    if (!this.#up || this.#closed) return;
    this.#up = false;
    this.logger.warn(
      { err: error instanceof Error ? error.message : String(error), timeoutMs: this.settings.timeoutMs },
      'Redis is unavailable: quota, cache and scope state fall back to this process until it answers again',
    );
    for (const task of this.#downs) task();
    for (const o of this.#observers) o.transition('down');
    this.#scheduleProbe();
  }

  #scheduleProbe(): void {
    if (this.#closed) return;
    this.#probe = setTimeout(() => void this.#tryUp(), this.probeMs);
    this.#probe.unref();
  }

  async #tryUp(): Promise<void> {
    try {
      await this.#withTimeout(this.redis.ping());
      // What is sent or written while catching up (the link still down) is caught up too: the link
      // turns up in the same step as the last check that nothing is left.
      for (let round = 0; ; round++) {
        for (const { task } of this.#catchUps) await task();
        if (!this.#catchUps.some(({ pending }) => pending())) break;
        if (round >= 9) throw new Error('Redis is still being caught up');
      }
    } catch {
      return this.#scheduleProbe();
    }
    if (this.#closed) return;
    this.#up = true;
    this.logger.info('Redis answers again: quota, cache and scope state are shared through it again');
    for (const o of this.#observers) o.transition('up');
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#probe) clearTimeout(this.#probe);
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}

/** Where one API key's state lives in Redis: `<prefix>{<key hash>}:…` (one hash slot per key). */
class KeySpace {
  constructor(private readonly prefix: string) {}

  of(hash: string): string {
    return `${this.prefix}{${hash}}:`;
  }
}

const digest = (url: string): string => createHash('sha256').update(url).digest('hex').slice(0, 32);

interface StoredEnvelope {
  d: unknown;
  m: Record<string, unknown>;
  r: Envelope['rateLimit'];
  b: number;
}

function parseStored(body: string): Envelope | null {
  try {
    const stored = JSON.parse(body) as Partial<StoredEnvelope> | null;
    if (stored === null || typeof stored !== 'object' || typeof stored.b !== 'number' || typeof stored.m !== 'object') return null;
    return { data: stored.d, metadata: stored.m ?? {}, rateLimit: stored.r ?? null, bytes: stored.b };
  } catch {
    return null;
  }
}

/**
 * The response cache in Redis, with this process's memory in front (bounded by CACHE_MAX_ENTRIES and
 * CACHE_MAX_BYTES as before). Each key has a generation in Redis; entries are stored under it, and a
 * write by the key gives it a new one, so that every process stops finding the older answers at once.
 * A look-up is one round trip: the current generation, and the body only when this process holds no
 * copy of that generation. While Redis is down, the cache answers nothing and keeps nothing: only
 * Redis can say that another process's write has not superseded an answer, so every read goes
 * upstream (coalesced within the process) until Redis answers again, and then finds in memory only
 * answers of the key's current generation.
 */
class RedisCache implements ResponseCache {
  readonly #lru: GenerationLru | null;
  readonly #process = randomBytes(6).toString('hex');
  #sequence = 0;
  /** Keys that wrote while Redis was away: their generations move on before Redis is used again. */
  readonly #pendingWrites = new Set<string>();
  /**
   * The generation a lookup gave a key the upstream had not confirmed to this process, until the key's
   * request ends: dropped again when it got no answer (`abandon`). Bounded; an entry left behind by a
   * key confirmed since is harmless (abandon is asked only for keys still unconfirmed).
   */
  readonly #given = new LRUCache<string, string>({ max: 10_000 });

  constructor(
    private readonly link: RedisLink,
    private readonly keys: KeySpace,
    private readonly options: SharedStateOptions['cache'],
  ) {
    this.#lru = options.ttlMs > 0 ? new GenerationLru(options) : null;
    link.onCatchUp(
      async () => {
        for (const hash of [...this.#pendingWrites]) {
          // Taken off first, so that a write of the key meanwhile marks it again.
          this.#pendingWrites.delete(hash);
          try {
            await this.#newGeneration(hash);
          } catch (error) {
            this.#pendingWrites.add(hash);
            throw error;
          }
        }
      },
      () => this.#pendingWrites.size > 0,
    );
  }

  get enabled(): boolean {
    return this.#lru !== null;
  }

  /** How long a generation is kept once nothing uses it: longer than any entry stored under it. */
  get #generationTtlMs(): number {
    return this.options.ttlMs + 60_000;
  }

  lookup(hash: string, url: string, confirmed = true): CacheLookup | Promise<CacheLookup> {
    const id = `${hash} ${url}`;
    if (!this.link.up) {
      this.link.fellBack('cache');
      return { miss: LOCAL_TICKET };
    }
    return this.#remote(hash, url, id, confirmed);
  }

  async #remote(hash: string, url: string, id: string, confirmed: boolean): Promise<CacheLookup> {
    const lru = this.#lru;
    if (lru === null) return { miss: LOCAL_TICKET };
    const known = lru.generationOf(id) ?? '';
    const space = this.keys.of(hash);
    const fresh = `${this.#process}.${++this.#sequence}`;
    const reply = await this.link.call('cache', (redis) =>
      redis.hsgqlLookup(`${space}g`, `${space}c:`, digest(url), known, fresh, this.#generationTtlMs),
    );
    // Given to a key the upstream has not confirmed: dropped again if its request gets no answer (abandon).
    if (!confirmed && reply !== FALLBACK && reply[0] === fresh) this.#given.set(hash, fresh);
    if (reply === FALLBACK) return { miss: LOCAL_TICKET };
    const [generation, body, ttl] = reply;
    if (body === undefined || ttl === undefined) {
      const held = generation === known ? lru.get(id, generation) : undefined;
      return held ? { envelope: held } : { miss: { generation } };
    }
    const envelope = parseStored(body);
    if (envelope === null || ttl < 1) return { miss: { generation } };
    lru.set(hash, id, envelope, generation, ttl);
    return { envelope };
  }

  store(hash: string, url: string, envelope: Envelope, ttlMs: number, ticket: CacheTicket): void {
    // An answer fetched while Redis was away is not kept: no generation says when another process's write supersedes it.
    if (ticket.generation === LOCAL_TICKET.generation) return;
    this.#lru?.set(hash, `${hash} ${url}`, envelope, ticket.generation, ttlMs);
    // One larger than the whole cache is not kept in Redis.
    if (envelope.bytes > this.options.maxBytes) return;
    const space = this.keys.of(hash);
    const stored: StoredEnvelope = { d: envelope.data, m: envelope.metadata, r: envelope.rateLimit, b: envelope.bytes };
    void this.link.call('cache', (redis) =>
      redis.hsgqlStore(`${space}g`, `${space}c:`, digest(url), ticket.generation, JSON.stringify(stored), Math.ceil(ttlMs)),
    );
  }

  async abandon(hash: string): Promise<void> {
    const given = this.#given.get(hash);
    if (given === undefined) return;
    this.#given.delete(hash);
    await this.link.call('cache', (redis) => redis.hsgqlDropGeneration(`${this.keys.of(hash)}g`, given));
  }

  async invalidate(hash: string): Promise<void> {
    this.#lru?.dropKey(hash);
    if (this.#lru === null) return;
    if (!this.link.up) {
      this.link.fellBack('cache');
      this.#pendingWrites.add(hash);
      return;
    }
    if ((await this.link.call('cache', () => this.#newGeneration(hash))) === FALLBACK) this.#pendingWrites.add(hash);
  }

  async #newGeneration(hash: string): Promise<void> {
    await this.link.redis.set(`${this.keys.of(hash)}g`, `${this.#process}.${++this.#sequence}`, 'PX', this.#generationTtlMs);
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

/** Requests counted only locally while Redis was away, at most this many (then the newest are not kept). */
const MAX_OUTAGE_RECORDS = 100_000;

/** What this process knows of one key's spend by the whole fleet, as Redis last counted it. */
interface FleetView {
  hour: KnownCount;
  /** Each endpoint's last minute. */
  minutes: Map<string, KnownCount>;
}

/**
 * The quota in Redis: "count and decide" is one script against the key's windows and its Retry-After
 * block, so that every process draws from one budget with the upstream's full limits. Each verdict
 * also says what the whole fleet has spent; this process keeps that per key (at no cost: it comes
 * with the answers it needs anyway).
 *
 * While Redis is down the local tracker decides, starting from that: it holds the fleet's last known
 * spend, and each request this process sends meanwhile counts `processes` times against the full
 * limits, so that the process takes at most its share of what is left (⌊left ÷ processes⌋) and the
 * processes together no more than what was left. Each upstream answer's remaining can only raise the
 * spend it holds (a fresher, higher remaining never lowers it: that would hand this process a second
 * share of what the others still hold). When Redis answers again, what this process sent meanwhile is
 * added to it, and each window is raised to at least what this process knew the fleet had spent: a
 * Redis restarted empty gets back the fleet's hour, not one process's part of it.
 */
class RedisQuota implements QuotaStore {
  readonly #fleet: LRUCache<string, FleetView>;
  /** Requests sent while Redis was away: by key, by endpoint, their local times. */
  #outage = new Map<string, Map<string, number[]>>();
  #outageRecords = 0;
  /** Retry-After blocks learnt while Redis was away: the time they end. */
  readonly #outageBlocks = new Map<string, number>();

  constructor(
    private readonly link: RedisLink,
    private readonly keys: KeySpace,
    /** Decides while Redis is down: the full limits, each request weighing `processes`. */
    private readonly local: QuotaTracker,
    /** The upstream's limits, shared by every process through Redis. */
    private readonly limits: QuotaLimits | null,
    private readonly maxWaitMs: number,
    maxKeys: number,
  ) {
    this.#fleet = new LRUCache({ max: maxKeys });
    link.onDown(() => this.#rebase());
    link.onCatchUp(
      () => this.#catchUp(),
      () => this.#outage.size > 0 || this.#outageBlocks.size > 0,
    );
  }

  get size(): number {
    return this.local.size;
  }

  waitable(retryAfterSeconds: number): boolean {
    return this.local.waitable(retryAfterSeconds);
  }

  async admit(hash: string, endpoint: string): Promise<number> {
    const verdict = await this.#ask(hash, endpoint, '0');
    if (verdict === FALLBACK) return this.local.admit(hash, endpoint);
    const [code, wait] = verdict;
    if (code === 1 && wait <= this.maxWaitMs) return wait;
    if (code !== 0) throw this.#refusal(code, wait, endpoint);
    return 0;
  }

  async take(hash: string, endpoint: string): Promise<void> {
    const verdict = await this.#ask(hash, endpoint, '1');
    if (verdict === FALLBACK) {
      this.local.take(hash, endpoint);
      this.#recordOutage(hash, endpoint);
      return;
    }
    const [code, wait] = verdict;
    if (code !== 0) throw this.#refusal(code, wait, endpoint);
    // Counted by Redis, which went away meanwhile: the local decisions count it too.
    if (!this.link.up) this.local.record(hash, endpoint);
  }

  async record(hash: string, endpoint: string): Promise<void> {
    const space = this.keys.of(hash);
    const done = await this.link.call('quota', (redis) =>
      Promise.all([
        redis.hsgqlCatchUp(`${space}q:h`, HOUR_BUCKET_MS, HOUR_MS, 0, 0, 0),
        redis.hsgqlCatchUp(`${space}q:m:${endpoint}`, MINUTE_BUCKET_MS, countedMinuteOf(this.limits), 0, 0, 0),
      ]),
    );
    if (done === FALLBACK) {
      this.local.record(hash, endpoint);
      this.#recordOutage(hash, endpoint);
      return;
    }
    // Counted by Redis, which went away meanwhile: the local decisions count it too.
    if (!this.link.up) this.local.record(hash, endpoint);
    const now = Date.now();
    const view = this.#fleet.get(hash) ?? { hour: { n: 0, at: now }, minutes: new Map<string, KnownCount>() };
    view.hour = { n: view.hour.n + 1, at: now };
    view.minutes.set(endpoint, { n: (view.minutes.get(endpoint)?.n ?? 0) + 1, at: now });
    this.#fleet.set(hash, view);
  }

  async #ask(hash: string, endpoint: string, charge: '0' | '1'): Promise<[number, number, number, number] | Fallback> {
    const space = this.keys.of(hash);
    const verdict = await this.link.call('quota', (redis) =>
      redis.hsgqlQuota(
        `${space}q:h`,
        `${space}q:m:${endpoint}`,
        `${space}q:b`,
        this.limits?.perHour ?? 0,
        this.limits?.perMinutePerEndpoint ?? 0,
        charge,
        countedMinuteOf(this.limits),
      ),
    );
    if (verdict === FALLBACK) return verdict;
    const [code, wait, hour, minute] = verdict;
    const now = Date.now();
    const view = this.#fleet.get(hash);
    if (view === undefined) {
      // Nothing is held for a key nobody has spent anything with (a key the upstream has not confirmed yet).
      if (charge === '1' || hour > 0)
        this.#fleet.set(hash, { hour: { n: hour, at: now }, minutes: new Map(minute >= 0 ? [[endpoint, { n: minute, at: now }]] : []) });
    } else {
      view.hour = { n: hour, at: now };
      if (minute >= 0) view.minutes.set(endpoint, { n: minute, at: now });
    }
    // Another process was told to wait: this one remembers it too, for its answers and for an outage.
    if (code === 1) this.local.observe(hash, { retryAfter: wait / 1000 });
    return verdict;
  }

  #refusal(code: number, waitMs: number, endpoint: string): UpstreamError {
    return quotaRefusal(code === 1 ? 'retry-after' : code === 2 ? 'hour' : 'minute', waitMs, this.limits, endpoint);
  }

  async observe(hash: string, info: { remaining?: number | null; retryAfter?: number | null }): Promise<void> {
    this.local.observe(hash, info);
    if (!this.link.up && this.limits !== null && info.remaining !== undefined && info.remaining !== null) {
      // The upstream's own count, which holds what every process sent: the local decisions count at least as much.
      const spent = this.limits.perHour - info.remaining;
      this.local.raise(hash, spent);
      // And so does the catch-up: the fleet's spend before this process's own requests of the outage.
      const view = this.#fleet.get(hash) ?? { hour: { n: 0, at: 0 }, minutes: new Map<string, KnownCount>() };
      const before = spent - this.#sentMeanwhile(hash);
      if (before > view.hour.n) view.hour = { n: before, at: Date.now() };
      this.#fleet.set(hash, view);
    }
    if (info.retryAfter === undefined || info.retryAfter === null) return;
    const waitMs = Math.ceil(Math.min(RETRY_AFTER_MAX_SECONDS, Math.max(0, info.retryAfter)) * 1000);
    if (waitMs <= 0) return;
    const blocked = await this.link.call('quota', (redis) => redis.hsgqlBlock(`${this.keys.of(hash)}q:b`, waitMs));
    if (blocked === FALLBACK) this.#outageBlocks.set(hash, Math.max(this.#outageBlocks.get(hash) ?? 0, Date.now() + waitMs));
  }

  async forget(hash: string, endpoint?: string): Promise<void> {
    this.local.forget(hash);
    this.#fleet.delete(hash);
    // Nor is anything of it caught up later (what it sent and was told while Redis was away).
    for (const times of this.#outage.get(hash)?.values() ?? []) this.#outageRecords -= times.length;
    this.#outage.delete(hash);
    this.#outageBlocks.delete(hash);
    const space = this.keys.of(hash);
    // A key the upstream refuses keeps nothing in Redis either: its windows, block and cache generation go.
    const keys = [`${space}q:h`, `${space}q:b`, `${space}g`, ...(endpoint === undefined ? [] : [`${space}q:m:${endpoint}`])];
    await this.link.call('quota', (redis) => redis.del(...keys));
  }

  /** The key's spend by the fleet as far as this process knows it: Redis's last count, and while Redis is down what it sent since. */
  state(hash: string): QuotaState {
    const local = this.local.state(hash);
    const known = this.#fleet.peek(hash)?.hour;
    const used = known !== undefined && Date.now() - known.at < HOUR_MS ? known.n : 0;
    return { ...local, usedLastHour: this.link.up ? used : used + this.#sentMeanwhile(hash) };
  }

  /**
   * Milliseconds until `n` more requests fit the key's hourly limit, from the fleet's hour window in
   * Redis (exact to its minute buckets); while Redis is down, from the local tracker that decides then.
   */
  async untilRoom(hash: string, n: number): Promise<number | null> {
    if (this.limits === null) return 0;
    const perHour = this.limits.perHour;
    const ms = await this.link.call('quota', (redis) => redis.hsgqlUntilRoom(`${this.keys.of(hash)}q:h`, perHour, n));
    if (ms === FALLBACK) return this.local.untilRoom(hash, n);
    return ms < 0 ? null : ms;
  }

  #sentMeanwhile(hash: string): number {
    let sent = 0;
    for (const times of this.#outage.get(hash)?.values() ?? []) sent += times.length;
    return sent;
  }

  #recordOutage(hash: string, endpoint: string, at = Date.now()): void {
    if (this.#outageRecords >= MAX_OUTAGE_RECORDS) return;
    const endpoints = this.#outage.get(hash) ?? new Map<string, number[]>();
    this.#outage.set(hash, endpoints);
    const times = endpoints.get(endpoint) ?? [];
    endpoints.set(endpoint, times);
    times.push(at);
    this.#outageRecords++;
  }

  /** Redis went away: from now on the local tracker decides, from the fleet's spend as Redis last gave it. */
  #rebase(): void {
    for (const [hash, view] of this.#fleet.entries()) this.local.rebase(hash, view.hour, view.minutes);
  }

  /**
   * Redis is back: what this process sent meanwhile is added to it, each window is raised to at least
   * what this process knew the fleet had spent (a no-op unless Redis lost it), and the Retry-After
   * blocks it was told of are set. Should this fail half-way, it is all done again on the next try:
   * requests may then be counted twice, never missed.
   */
  async #catchUp(): Promise<void> {
    const outage = this.#outage;
    this.#outage = new Map();
    this.#outageRecords = 0;
    try {
      await this.#raise(outage);
    } catch (error) {
      for (const [hash, endpoints] of outage)
        for (const [endpoint, times] of endpoints) for (const at of times) this.#recordOutage(hash, endpoint, at);
      throw error;
    }
    const now = Date.now();
    for (const [hash, until] of this.#outageBlocks) {
      if (until > now) await this.link.redis.hsgqlBlock(`${this.keys.of(hash)}q:b`, until - now);
      this.#outageBlocks.delete(hash);
    }
  }

  async #raise(outage: Map<string, Map<string, number[]>>): Promise<void> {
    const now = Date.now();
    const calls: Promise<number>[] = [];
    const catchUp = (key: string, bucket: number, span: number, known: KnownCount | undefined, sent: number[]): void => {
      const live = (at: number): boolean => at + bucket + span > now;
      const recent = sent.filter(live);
      const base = known !== undefined && live(known.at) ? known : null;
      if (base === null && recent.length === 0) return;
      const ago = (at: number): number => Math.max(0, now - at);
      calls.push(this.link.redis.hsgqlCatchUp(key, bucket, span, (base?.n ?? 0) + recent.length, ago(base?.at ?? now), ...recent.map(ago)));
    };
    for (const hash of new Set([...this.#fleet.keys(), ...outage.keys()])) {
      const view = this.#fleet.peek(hash);
      const sent = outage.get(hash) ?? new Map<string, number[]>();
      const space = this.keys.of(hash);
      catchUp(`${space}q:h`, HOUR_BUCKET_MS, HOUR_MS, view?.hour, [...sent.values()].flat());
      for (const endpoint of new Set([...(view?.minutes.keys() ?? []), ...sent.keys()]))
        catchUp(
          `${space}q:m:${endpoint}`,
          MINUTE_BUCKET_MS,
          countedMinuteOf(this.limits),
          view?.minutes.get(endpoint),
          sent.get(endpoint) ?? [],
        );
    }
    await Promise.all(calls);
  }
}

interface StoredRefusal {
  message: string;
  upstreamCode: string | null;
  details: Record<string, unknown>;
}

/**
 * The scope mirror in Redis: one key per key and missing scope, with the mirror's TTL, so that a 403
 * seen by one process answers FORBIDDEN in every other. This process's own mirror is asked first (and
 * alone while Redis is down).
 */
class RedisScopes implements ScopeStore {
  constructor(
    private readonly link: RedisLink,
    private readonly keys: KeySpace,
    private readonly local: ScopeMirror,
    private readonly ttlMs: number,
  ) {}

  get size(): number {
    return this.local.size;
  }

  async learn(hash: string, error: UpstreamError): Promise<void> {
    this.local.learn(hash, error);
    const missing = this.ttlMs > 0 ? missingScopes(error) : [];
    if (missing.length === 0) return;
    const stored: StoredRefusal = { message: error.message, upstreamCode: error.upstreamCode, details: error.details };
    const body = JSON.stringify(stored);
    const space = this.keys.of(hash);
    await this.link.call('scopes', async (redis) => {
      const batch = redis.multi();
      for (const scope of missing) batch.set(`${space}s:${scope}`, body, 'PX', this.ttlMs);
      await batch.exec();
    });
  }

  async check(hash: string, scope: string | null): Promise<void> {
    if (scope === null || this.ttlMs <= 0) return;
    this.local.check(hash, scope);
    const body = await this.link.call('scopes', (redis) => redis.get(`${this.keys.of(hash)}s:${scope}`));
    if (body === FALLBACK || body === null) return;
    const stored = JSON.parse(body) as StoredRefusal;
    throw mirroredRefusal(stored);
  }
}

export interface RedisStateOptions {
  /** How often a probe asks Redis while it is down, in ms (default 1000). */
  probeMs?: number;
}

/**
 * The shared state in Redis (`REDIS_URL`): every process and replica shares each key's quota, its
 * Retry-After blocks, its scope mirror and its response cache; coalescing of identical reads in flight
 * stays per process. Local state stands in while Redis is down or slow: this process's share of what
 * is left of the limits, its own mirror, and no cache.
 */
export class RedisSharedState implements SharedState {
  readonly cache: RedisCache;
  readonly quota: RedisQuota;
  readonly scopes: RedisScopes;
  readonly #link: RedisLink;
  readonly #localLimits: QuotaLimits | null;

  constructor(
    private readonly options: SharedStateOptions,
    private readonly settings: RedisSettings,
    logger: Logger,
    extra: RedisStateOptions = {},
  ) {
    this.#link = new RedisLink(settings, logger, extra.probeMs ?? 1_000);
    const keys = new KeySpace(settings.keyPrefix);
    this.#localLimits = splitLimits(options.quota, options.processes);
    this.cache = new RedisCache(this.#link, keys, options.cache);
    this.quota = new RedisQuota(
      this.#link,
      keys,
      new QuotaTracker(options.quota, options.retryAfterMaxMs, Date.now, options.maxKeys, Math.max(1, options.processes)),
      options.quota,
      options.retryAfterMaxMs,
      options.maxKeys,
    );
    this.scopes = new RedisScopes(
      this.#link,
      keys,
      new ScopeMirror(options.scopeCacheTtlMs, Date.now, options.maxKeys),
      options.scopeCacheTtlMs,
    );
  }

  status(): SharedStateStatus {
    const up = this.#link.up;
    return { backend: 'redis', redisUp: up, limits: up ? this.options.quota : this.#localLimits, processes: this.options.processes };
  }

  observe(observer: SharedStateObserver): void {
    this.#link.observe(observer);
  }

  /** Live polling shared by the fleet: one poller per feed, through this state's link. */
  fleet(options: { leaseMs: number }): RedisFleet {
    return new RedisFleet(this.#live('live'), options);
  }

  /** Redis for the export jobs' table and leases, through this state's link. */
  exportRedis(): LiveRedis {
    return this.#live('exports');
  }

  /** Redis for the live pollers (or the export jobs), through this state's link. */
  #live(part: 'live' | 'exports'): LiveRedis {
    const link = this.#link;
    return {
      prefix: this.settings.keyPrefix,
      get up() {
        return link.up;
      },
      call: async (command) => {
        const answer = await link.call(part, command);
        return answer === FALLBACK ? null : { value: answer };
      },
      duplicate: (name, commandTimeoutMs) => {
        const redis = link.redis.duplicate({ connectionName: name, commandTimeout: commandTimeoutMs, enableAutoPipelining: false });
        redis.on('error', () => undefined);
        return redis;
      },
    };
  }

  async close(): Promise<void> {
    this.cache.close();
    await this.#link.close();
  }
}

/** The shared state the configuration asks for: Redis when `redis` is set, else this process's memory. */
export function createSharedState(
  options: SharedStateOptions,
  redis: RedisSettings | null,
  logger: Logger,
  extra: RedisStateOptions = {},
): SharedState {
  return redis === null ? new MemorySharedState(options) : new RedisSharedState(options, redis, logger, extra);
}
