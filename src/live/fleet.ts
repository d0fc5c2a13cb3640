/**
 * Live pollers shared by every process and replica (with REDIS_URL): one poller per feed in the fleet.
 *
 * Roles. A feed — (key hash, organization, feed id) — is polled by the one process holding its lease
 * in Redis (`SET lease token NX PX leaseMs`): the leader. Every other process with subscribers to the
 * feed is a follower: it does not poll, it reads the leader's batches. A process polls for itself alone
 * (local) without Redis, while Redis is down or slow, or before it could ask.
 *
 * Lease. The leader renews it every leaseMs/3 (a script that renews only the caller's own lease) and
 * releases it with a compare-and-delete when its last local subscriber leaves or at shutdown. A leader
 * that dies loses it leaseMs later; followers try to claim it every leaseMs/3.
 *
 * Stream. The leader appends each batch of new items, with the feed's state after it, to a Redis stream
 * per feed (XADD MAXLEN ~ a bound; PEXPIRE on every write, so nothing stays once no leader writes), by a
 * script that appends only while the lease is the caller's: a leader that lost its lease unknowingly
 * learns it there and delivers nothing of that poll. It delivers a batch to its own subscribers once
 * appended. Followers read with XREAD BLOCK on one connection of their own per process, from the last
 * entry they delivered, so they miss nothing and see nothing twice (while the stream holds what they
 * have not read: MAXLEN bounds it).
 *
 * Takeover. A follower that gets the lease first delivers the entries it has not delivered yet, stands
 * where the last one left the feed, and appends its state before it polls; with no entry at all it reads
 * a baseline. A process that polled for itself while Redis was away and finds another leading when Redis
 * is back notes where the stream stands, polls once more for itself and then follows from there,
 * admitting only items its own feed has not delivered (`Feed.admit`): it merges. A leader whose state
 * did not come from the stream (it polled for itself, or merged) marks its first entry `rebase`, and
 * followers with a state of their own merge from there too, rather than take a state that may be ahead
 * of theirs by items they never got.
 *
 * Pacing. The key's live requests of the last hour (a sorted set, counted and decided at once by a
 * script) and the feeds the fleet polls for it (a sorted set of "cost:feed" scored by expiry, refreshed
 * by their leaders) are in Redis, so that the fleet's live polling of a key stays within LIVE_QUOTA_SHARE
 * of its limits and each poller's interval counts every replica's pollers of the key.
 *
 * Redis keys: REDIS_KEY_PREFIX + `live:{<digest of the key hash>}:…` + a digest of (key hash,
 * organization, feed id): the API key never reaches Redis, nor the hash of it the rest of the state uses.
 */
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Redis } from 'ioredis';

/** What a Redis call gave when Redis could not answer: the poller polls for itself. */
/**
 * Redis as the live pollers use it: the shared state's connection (RedisSharedState.fleet), with its call
 * timeout and its notion of up and down (one log line per transition), and a connection of their own
 * for blocking reads.
 */
export interface LiveRedis {
  readonly prefix: string;
  /** Whether Redis is in use right now. */
  readonly up: boolean;
  /** `command`'s answer in a box, or null when Redis is down or this call failed or timed out (it is down then). */
  call<T>(command: (redis: Redis) => Promise<T>): Promise<{ value: T } | null>;
  /** A new connection to the same Redis (for blocking reads: they must not hold up the shared one). */
  duplicate(name: string, commandTimeoutMs: number): Redis;
}

export const OFFLINE = Symbol('offline');
export type Offline = typeof OFFLINE;

/** One appended batch: its stream id, the items, and the feed's state after them. */
export interface FleetEntry {
  id: string;
  items: unknown[];
  state: unknown;
  /**
   * The leader's feed does not stand where the entry before left it (it polled for itself, or merged):
   * a follower with a state of its own merges from here (`Feed.admit`, and one poll of its own).
   */
  rebase: boolean;
}

/** One process's part in one feed. */
export interface FeedLink {
  /** Tries to take the lease: true (this process leads now), false (another process does). */
  claim(): Promise<boolean | Offline>;
  /** The stream's last entry (null: none). */
  last(): Promise<FleetEntry | null | Offline>;
  /** The entries after `id`, oldest first. */
  after(id: string): Promise<FleetEntry[] | Offline>;
  /** Appends a batch and the state after it while the lease is this process's: the entry's id, or false (lease lost). */
  append(items: readonly unknown[], state: unknown, rebase?: boolean): Promise<string | false | Offline>;
  /** Renews the lease and the feed's place among the key's polled feeds: false when the lease was lost. */
  renew(): Promise<boolean | Offline>;
  /** Gives the lease up if this process holds it (compare-and-delete). */
  release(): Promise<void>;
  /** Reads entries after `from()` as they come (the process's reader), until `unfollow`. */
  follow(from: () => string, deliver: (entries: FleetEntry[]) => void): void;
  unfollow(): void;
}

/** What the live hub asks of the fleet. In memory (`LocalFleet`) nothing is shared: every answer is OFFLINE. */
export interface LiveFleet {
  /** Whether feeds are coordinated across processes right now. */
  readonly shared: boolean;
  /** How often a lease is renewed and claimed, in ms. */
  readonly beatMs: number;
  /** The link of a feed (null: nothing is shared). */
  link(hash: string, organizationId: string | null, feedId: string, cost: number): FeedLink | null;
  /** The key's polled feeds in the whole fleet, as last seen: their summed cost and count (null: unknown). */
  feedsOf(hash: string): { cost: number; count: number } | null;
  /** Counts `requests` live requests of the key when they fit in `allowed` an hour (-1: always): 0, else the wait in ms. */
  take(hash: string, requests: number, allowed: number): Promise<number | Offline>;
  close(): Promise<void>;
}

/** Today's behaviour without Redis: every process polls for its own subscribers. */
export class LocalFleet implements LiveFleet {
  readonly shared = false;
  readonly beatMs = 0;
  link(): null {
    return null;
  }
  feedsOf(): null {
    return null;
  }
  take(): Promise<Offline> {
    return Promise.resolve(OFFLINE);
  }
  async close(): Promise<void> {}
}

export interface RedisFleetOptions {
  /** How long a lease lasts unless renewed, in ms (LIVE_LEASE_MS). */
  leaseMs: number;
  /** Entries a stream keeps at most (about). */
  maxEntries?: number;
}

const digest = (parts: unknown[]): string => createHash('sha256').update(JSON.stringify(parts)).digest('hex');

/** Stream ids ("ms-seq") in order. */
export function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am !== bm ? am - bm : as - bs;
}

type RawEntry = [string, string[]];

function parseEntry([id, fields]: RawEntry): FleetEntry {
  const field = (name: string): string | undefined => fields[fields.indexOf(name) + 1];
  try {
    const items = JSON.parse(field('i') ?? '[]') as unknown;
    return { id, items: Array.isArray(items) ? items : [], state: JSON.parse(field('s') ?? 'null') as unknown, rebase: field('r') === '1' };
  } catch {
    return { id, items: [], state: null, rebase: true };
  }
}

interface Following {
  from: () => string;
  deliver: (entries: FleetEntry[]) => void;
}

/** Feeds shared through Redis (see the header). */
export class RedisFleet implements LiveFleet {
  readonly beatMs: number;
  readonly #process = randomBytes(8).toString('hex');
  #nonce = 0;
  readonly #feeds = new Map<string, { cost: number; count: number; at: number }>();
  readonly #following = new Map<string, Following>();
  #reader: Redis | null = null;
  #reading = false;
  #closed = false;
  #sweptAt = 0;

  constructor(
    private readonly redis: LiveRedis,
    private readonly options: RedisFleetOptions,
  ) {
    this.beatMs = Math.max(50, Math.floor(options.leaseMs / 3));
  }

  get shared(): boolean {
    return this.redis.up && !this.#closed;
  }

  get #streamTtlMs(): number {
    return 3 * this.options.leaseMs;
  }

  get #blockMs(): number {
    return Math.min(500, this.beatMs);
  }

  #space(hash: string): string {
    return `${this.redis.prefix}live:{${digest(['key', hash]).slice(0, 32)}}:`;
  }

  feedsOf(hash: string): { cost: number; count: number } | null {
    const seen = this.#feeds.get(hash);
    // A view older than two leases is not the fleet's any more.
    if (!seen || Date.now() - seen.at > 2 * this.options.leaseMs) return null;
    return { cost: seen.cost, count: seen.count };
  }

  #noteFeeds(hash: string, members: string[]): void {
    const now = Date.now();
    const cost = members.reduce((sum, m) => sum + (Number(m.slice(0, m.indexOf(':'))) || 0), 0);
    if (members.length === 0) this.#feeds.delete(hash);
    else this.#feeds.set(hash, { cost, count: members.length, at: now });
    // Keys no poller here asks about any more are forgotten.
    if (now - this.#sweptAt < this.options.leaseMs) return;
    this.#sweptAt = now;
    for (const [key, seen] of this.#feeds) if (now - seen.at > 2 * this.options.leaseMs) this.#feeds.delete(key);
  }

  async take(hash: string, requests: number, allowed: number): Promise<number | Offline> {
    const nonce = `${this.#process}:${++this.#nonce}`;
    const answer = await this.redis.call((r) => r.hsgqlLiveSpend(`${this.#space(hash)}spend`, requests, allowed, nonce));
    return answer === null ? OFFLINE : answer.value[0];
  }

  link(hash: string, organizationId: string | null, feedId: string, cost: number): FeedLink {
    const space = this.#space(hash);
    const feed = digest([hash, organizationId, feedId]);
    const lease = `${space}lease:${feed}`;
    const stream = `${space}stream:${feed}`;
    const feeds = `${space}feeds`;
    const member = `${cost}:${feed}`;
    const token = `${this.#process}:${randomBytes(6).toString('hex')}`;
    const call = async <T>(command: (r: Redis) => Promise<T>): Promise<T | Offline> => {
      const answer = await this.redis.call(command);
      return answer === null ? OFFLINE : answer.value;
    };
    const renew = async (mode: '0' | '1'): Promise<boolean | Offline> => {
      const answer = await call((r) =>
        r.hsgqlLiveRenew(lease, stream, feeds, token, this.options.leaseMs, this.#streamTtlMs, member, mode),
      );
      if (answer === OFFLINE) return OFFLINE;
      const [held, ...members] = answer;
      this.#noteFeeds(hash, members);
      return held === 1;
    };
    // This link's entry among the streams the process reads: only it is removed by this link (another
    // poller of the same feed in this process may follow the stream by then).
    let mine: Following | null = null;
    const unfollow = (): void => {
      if (mine !== null && this.#following.get(stream) === mine) this.#following.delete(stream);
      mine = null;
    };
    return {
      claim: async () => {
        const set = await call((r) => r.set(lease, token, 'PX', this.options.leaseMs, 'NX'));
        if (set === OFFLINE) return OFFLINE;
        // Taken, or still this poller's (it polled for itself through a short outage): renewed. Held by
        // another process: this one still learns how many feeds the key has polled.
        return renew('1');
      },
      last: async () => {
        const raw = await call((r) => r.xrevrange(stream, '+', '-', 'COUNT', 1) as Promise<RawEntry[]>);
        if (raw === OFFLINE) return OFFLINE;
        const [entry] = raw;
        return entry === undefined ? null : parseEntry(entry);
      },
      after: async (id) => {
        const raw = await call((r) => r.xrange(stream, `(${id}`, '+') as Promise<RawEntry[]>);
        return raw === OFFLINE ? OFFLINE : raw.map(parseEntry);
      },
      append: async (items, state, rebase = false) => {
        const id = await call((r) =>
          r.hsgqlLiveAppend(
            lease,
            stream,
            token,
            this.options.maxEntries ?? 1_000,
            this.#streamTtlMs,
            JSON.stringify(items),
            JSON.stringify(state),
            rebase ? '1' : '0',
          ),
        );
        return id === OFFLINE ? OFFLINE : (id ?? false);
      },
      renew: () => renew('1'),
      release: async () => {
        unfollow();
        await call((r) => r.hsgqlLiveRelease(lease, stream, feeds, token, member, this.options.leaseMs));
      },
      follow: (from, deliver) => {
        mine = { from, deliver };
        this.#following.set(stream, mine);
        void this.#read();
      },
      unfollow,
    };
  }

  /** The process's reader: one blocking XREAD over every followed stream at a time, while any is followed. */
  async #read(): Promise<void> {
    if (this.#reading) return;
    this.#reading = true;
    try {
      while (this.#following.size > 0 && !this.#closed) {
        if (!this.redis.up) {
          await pause(this.#blockMs);
          continue;
        }
        this.#reader ??= this.redis.duplicate('hyperstudy-graphql-live', this.#blockMs + 5_000);
        const streams = [...this.#following.keys()];
        const from = streams.map((s) => this.#following.get(s)?.from() ?? '$');
        let answer: [string, RawEntry[]][] | null;
        try {
          answer = (await this.#reader.xread('COUNT', 500, 'BLOCK', this.#blockMs, 'STREAMS', ...streams, ...from)) as
            [string, RawEntry[]][] | null;
        } catch {
          await pause(this.#blockMs);
          continue;
        }
        for (const [stream, entries] of answer ?? []) {
          try {
            this.#following.get(stream)?.deliver(entries.map(parseEntry));
          } catch {
            // Entries this process cannot read (written by another version of the gateway): it stops
            // following that stream rather than read them again and again; its poller takes the feed
            // over when the lease is free.
            this.#following.delete(stream);
          }
        }
      }
    } finally {
      this.#reading = false;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#following.clear();
    this.#reader?.disconnect();
    this.#reader = null;
  }
}

/** A wait that does not keep the process alive. */
const pause = (ms: number): Promise<void> => delay(ms, undefined, { ref: false });
