/**
 * Live data for subscriptions: one shared, quota-aware poller per (key, organization, feed) — a feed
 * being a data type at a scope with filters — started with its first subscriber and stopped with its
 * last. Every subscriber of a poller gets each new item once, in order.
 *
 * Quota: the upstream allows a key `UPSTREAM_HOURLY_LIMIT` requests an hour. Live polling of a key may
 * use at most `LIVE_QUOTA_SHARE` of it, leaving the rest for queries: the key's pollers together poll at
 * most share × limit times an hour (each poller's interval is the sum of their costs divided by that
 * rate, at least `LIVE_MIN_INTERVAL_MS`), and a poll that would take the key's live requests of the last
 * hour past the share waits. Upstream faults and 429s back a poller off without ending subscriptions;
 * an answer that will not change by waiting (FORBIDDEN, NOT_FOUND, a refused key) ends them with it.
 * The limits are those this process enforces: its share of them (1/(WORKERS × REPLICAS)) unless the
 * fleet shares live polling through Redis (src/live/fleet.ts), where one poller per feed serves every
 * replica and the key's live spend and feeds are counted fleet-wide.
 */
import { HOUR_MS, minuteOf, type QuotaLimits } from '../state/quota.ts';
import { UpstreamError } from '../upstream/errors.ts';
import type { UpstreamSession } from '../upstream/session.ts';
import { Channel } from './channel.ts';
import { LocalFleet, OFFLINE, type LiveFleet } from './fleet.ts';
import { KeyLedger, Poller, type Feed, type LiveStatus, type PollerHost, type Role, type Subscriber } from './poller.ts';

export interface LiveOptions {
  /** The share (0–1) of a key's hourly limit live polling may use. */
  quotaShare: number;
  /**
   * The key's upstream limits as this process paces by them now: the whole limits while the fleet
   * shares its live spend through Redis, else this process's share of them (as its quota guard has it).
   * Live polls are held to the share of both (the per-minute one per endpoint).
   */
  limits(): QuotaLimits;
  /** The shortest interval between two polls of one poller, in ms. */
  minIntervalMs: number;
  /** The longest a poller backs off after faults, in ms. */
  maxBackoffMs: number;
  /** Feeds one key may have polled at once (each further one shares a quota that is already thin). */
  maxFeedsPerKey: number;
  /** Subscriptions one key may have open at once, over all its feeds. */
  maxSubscriptionsPerKey: number;
  /** Subscriptions the process holds at most, over all keys. */
  maxSubscriptions: number;
  /** Items one subscriber may leave unread before it is ended as too slow. */
  maxBacklog: number;
}

/**
 * The gateway's live pollers: one per feed in this process, and with Redis (`RedisFleet`) one per feed
 * in the fleet, the other processes following its stream.
 */
export class LiveHub implements PollerHost {
  readonly #pollers = new Map<string, Poller<unknown>>();
  readonly #keys = new Map<string, KeyLedger>();
  #subscribers = 0;
  #prunedAt = 0;

  constructor(
    readonly options: LiveOptions,
    readonly fleet: LiveFleet = new LocalFleet(),
  ) {}

  get shared(): boolean {
    return this.fleet.shared;
  }

  get beatMs(): number {
    return this.fleet.beatMs;
  }

  get maxBackoffMs(): number {
    return this.options.maxBackoffMs;
  }

  /**
   * The steady interval of each of a key's pollers: their polls together stay within the key's live
   * share. Shared through Redis, the key's pollers are those of the whole fleet.
   */
  intervalFor(ledger: KeyLedger): number {
    const fleet = this.fleet.shared ? this.fleet.feedsOf(ledger.hash) : null;
    const costs = fleet?.cost ?? [...ledger.pollers].reduce((sum, p) => sum + p.cost, 0);
    const limits = this.options.limits();
    const perHour = Math.max(1e-9, this.options.quotaShare * limits.perHour);
    // Counted as if every poll went to one endpoint: the per-minute limit is per endpoint.
    const perMinute = Math.max(1e-9, this.options.quotaShare * limits.perMinutePerEndpoint);
    const needed = Math.max(1, costs);
    return Math.max(
      this.options.minIntervalMs,
      Math.ceil((needed * HOUR_MS) / perHour),
      Math.ceil((needed * minuteOf(limits)) / perMinute),
    );
  }

  /** The key's pollers (in the fleet, when shared). */
  pollersOf(ledger: KeyLedger): number {
    return (this.fleet.shared ? this.fleet.feedsOf(ledger.hash)?.count : undefined) ?? ledger.pollers.size;
  }

  /** How long to wait before `cost` more live requests of the key fit in this process's share of the last hour (0: now). */
  roomFor(ledger: KeyLedger, cost: number): number {
    const now = Date.now();
    const allowed = Math.floor(this.options.quotaShare * this.options.limits().perHour);
    const used = ledger.usedLastHour(now);
    if (used + cost <= allowed) return 0;
    const freeing = ledger.sent[Math.max(0, used + cost - allowed - 1)] ?? now;
    return Math.max(1, freeing + HOUR_MS - now);
  }

  /**
   * Before a poll of `cost` requests: how long to wait first (0: go). Shared through Redis, the fleet's
   * live spend of the key decides and counts the requests at once (`charged`); else this process's.
   */
  async admit(ledger: KeyLedger, cost: number): Promise<{ wait: number; charged: number }> {
    if (this.fleet.shared) {
      const wait = await this.fleet.take(ledger.hash, cost, Math.floor(this.options.quotaShare * this.options.limits().perHour));
      if (wait !== OFFLINE) return { wait, charged: wait === 0 ? cost : 0 };
    }
    return { wait: this.roomFor(ledger, cost), charged: 0 };
  }

  /** After a poll: what it sent, beyond what `admit` counted in the fleet already. */
  spent(ledger: KeyLedger, requests: number, charged: number): void {
    const now = Date.now();
    for (let i = 0; i < requests; i++) ledger.sent.push(now);
    if (requests > charged && this.fleet.shared) void this.fleet.take(ledger.hash, requests - charged, -1);
  }

  /** Pollers running now (for tests and /metrics). */
  get size(): number {
    return this.#pollers.size;
  }

  /** Every poller: its feed, subscribers and status (for /metrics and tests; no keys, only feeds). */
  pollers(): { feed: string; role: Role; subscribers: number; status: LiveStatus }[] {
    return [...this.#pollers.values()].map((p) => ({ feed: p.feedId, role: p.role, subscribers: p.subscribers.size, status: p.status() }));
  }

  /**
   * Subscribes to a feed of a key: shares the key's poller of that feed or starts one. The returned
   * iterator first waits for the baseline — a refusal (FORBIDDEN, …) is thrown at once — then yields
   * each batch of new items; returning it unsubscribes, and the last one stops the poller.
   */
  async subscribe<T>(
    owner: { hash: string; organizationId: string | null; session: () => UpstreamSession },
    feed: Feed<T>,
    signal?: AbortSignal,
  ): Promise<{ items: AsyncIterableIterator<T>; status: () => LiveStatus }> {
    this.#prune();
    if (this.#subscribers >= this.options.maxSubscriptions) {
      throw limited(`The gateway holds ${this.#subscribers} subscriptions, the most it takes; try again later`, {
        maxSubscriptions: this.options.maxSubscriptions,
      });
    }
    const id = `${owner.hash}\u0000${owner.organizationId ?? ''}\u0000${feed.id}`;
    let ledger = this.#keys.get(owner.hash);
    if (!ledger) this.#keys.set(owner.hash, (ledger = new KeyLedger(owner.hash)));
    const keyLedger = ledger;
    if (keyLedger.subscribers >= this.options.maxSubscriptionsPerKey) {
      throw limited(`This key has ${keyLedger.subscribers} subscriptions open, the most one key may; end one first`, {
        maxSubscriptionsPerKey: this.options.maxSubscriptionsPerKey,
      });
    }
    let poller = this.#pollers.get(id) as Poller<T> | undefined;
    if (!poller && keyLedger.pollers.size >= this.options.maxFeedsPerKey) {
      throw limited(`This key follows ${keyLedger.pollers.size} live feeds already, the most one key may; end one first`, {
        maxFeedsPerKey: this.options.maxFeedsPerKey,
      });
    }
    if (!poller) {
      const link = this.fleet.link(owner.hash, owner.organizationId, feed.id, feed.cost);
      const created: Poller<T> = new Poller<T>(this, keyLedger, feed, owner.session, link, () => {
        this.#pollers.delete(id);
        keyLedger.pollers.delete(created as Poller<unknown>);
        if (keyLedger.pollers.size === 0 && keyLedger.usedLastHour(Date.now()) === 0 && this.#keys.get(owner.hash) === keyLedger) {
          this.#keys.delete(owner.hash);
        }
      });
      poller = created;
      this.#pollers.set(id, poller as Poller<unknown>);
      keyLedger.pollers.add(poller as Poller<unknown>);
    }
    const shared = poller;
    const channel = new Channel<T>(this.options.maxBacklog, () => {
      shared.subscribers.delete(subscriber);
      keyLedger.subscribers--;
      this.#subscribers--;
      if (shared.subscribers.size === 0) void shared.stop();
    });
    const subscriber: Subscriber<T> = {
      push: (batch) => channel.push(batch),
      fail: (error) => channel.fail(error),
      status: shared.status(),
    };
    shared.subscribers.add(subscriber);
    keyLedger.subscribers++;
    this.#subscribers++;
    // A caller that leaves while the baseline is read (a page reload) leaves no subscriber behind.
    const leave = (): void => void channel.return();
    signal?.addEventListener('abort', leave, { once: true });
    try {
      await shared.ready;
    } catch (error) {
      await channel.return();
      throw error;
    } finally {
      signal?.removeEventListener('abort', leave);
    }
    if (signal?.aborted) await channel.return();
    return { items: channel, status: () => subscriber.status };
  }

  /**
   * Forgets the ledgers of keys with nothing live and nothing spent in the last hour (at most once a
   * second), so that keys which only passed by hold no memory.
   */
  #prune(): void {
    const now = Date.now();
    if (now - this.#prunedAt < 1_000) return;
    this.#prunedAt = now;
    for (const [hash, ledger] of this.#keys) if (ledger.pollers.size === 0 && ledger.usedLastHour(now) === 0) this.#keys.delete(hash);
  }

  /** Keys whose live spend the process remembers (for tests and /metrics). */
  get keys(): number {
    return this.#keys.size;
  }

  /** Stops every poller (the gateway is shutting down): their subscriptions end, their leases are given up. */
  async close(): Promise<void> {
    const stopped: Promise<void>[] = [];
    for (const poller of [...this.#pollers.values()]) {
      // Not an upstream fault: a client alerting on UPSTREAM_ERROR is not paged on every deploy.
      for (const s of poller.subscribers)
        s.fail(new UpstreamError('The gateway is shutting down', { code: 'SHUTTING_DOWN', status: null, details: { source: 'gateway' } }));
      stopped.push(poller.stop());
    }
    await Promise.all(stopped);
    await this.fleet.close();
  }
}

/** Refusals of the gateway's own live limits. */
const limited = (message: string, details: Record<string, unknown>): UpstreamError =>
  new UpstreamError(message, { code: 'RATE_LIMITED', status: null, details: { source: 'gateway', ...details } });
