/**
 * One feed's poller in this process, with its subscribers. Without a fleet link (no Redis) it polls
 * for them (local). With one it leads (polls and appends to the feed's stream), follows another
 * process's stream, or polls for itself while Redis is away, moving between these roles as
 * src/live/fleet.ts describes. Every step (a poll, a claim, a takeover) runs one at a time.
 */
import type { ErrorCode } from '../errors.ts';
import { HOUR_MS } from '../state/quota.ts';
import { UpstreamError } from '../upstream/errors.ts';
import type { UpstreamSession } from '../upstream/session.ts';
import { compareIds, OFFLINE, type FeedLink, type FleetEntry } from './fleet.ts';

/** Errors a wait will not cure: they end the subscriptions of the poller. */
const PERMANENT: ReadonlySet<ErrorCode> = new Set(['FORBIDDEN', 'NOT_FOUND', 'UNAUTHENTICATED', 'BAD_USER_INPUT']);

/** What a poller polls: set up once (the baseline), then asked for what is new. */
export interface Feed<T> {
  /** Identifies the feed among a key's feeds (type, scope, filters): equal feeds share a poller. */
  readonly id: string;
  /** Upstream requests one poll costs, as planned (pages beyond the first are counted when they happen). */
  readonly cost: number;
  /** Reads where the data stands now; nothing before it is new. Throws what the upstream said. */
  baseline(session: UpstreamSession): Promise<void>;
  /** What arrived since the last poll, in order, each item once. */
  poll(session: UpstreamSession): Promise<T[]>;
  /**
   * Of items another process's poll of the same feed delivered, those this feed has not delivered yet,
   * taken as delivered (what `poll` applies to what it read).
   */
  admit(items: readonly T[]): T[];
  /** Where the feed stands (JSON): another process restores it to poll on from there. */
  snapshot(): unknown;
  /** Sets the feed to where a `snapshot` stood; throws on a state that is not this feed's. */
  restore(state: unknown): void;
}

/** What a subscriber is told besides the items, in `extensions.live` of each payload. */
export interface LiveStatus {
  /** The poller's interval now, in ms (it adapts to the key's quota and to faults). */
  intervalMs: number;
  /** Pollers the key has running, which share its live quota. */
  pollers: number;
  /** Whether the last poll failed and the poller is backing off. */
  retrying: boolean;
}

/**
 * What a poller asks of the hub that runs it (`LiveHub`): the pace of the key's live share, and
 * whether the fleet shares polling through Redis.
 */
export interface PollerHost {
  /** Whether the fleet shares live polling through Redis now (pollers claim, lead and follow). */
  readonly shared: boolean;
  /** How often a poller beats (renews, claims or rejoins), in ms. */
  readonly beatMs: number;
  /** The longest a poller backs off after faults, in ms. */
  readonly maxBackoffMs: number;
  /** The steady interval of each of the key's pollers. */
  intervalFor(ledger: KeyLedger): number;
  /** The key's pollers (in the fleet, when shared). */
  pollersOf(ledger: KeyLedger): number;
  /** Before a poll of `cost` requests: how long to wait first (0: go), and what was counted already. */
  admit(ledger: KeyLedger, cost: number): Promise<{ wait: number; charged: number }>;
  /** After a poll: what it sent, beyond what `admit` counted. */
  spent(ledger: KeyLedger, requests: number, charged: number): void;
}

export interface Subscriber<T> {
  push(items: T[]): void;
  fail(error: unknown): void;
  status: LiveStatus;
}

/** A key's pollers and live spend in this process. */
export class KeyLedger {
  readonly pollers = new Set<Poller<unknown>>();
  subscribers = 0;
  /** When this key's live requests were sent from this process, oldest first. */
  readonly sent: number[] = [];

  constructor(readonly hash: string) {}

  usedLastHour(now: number): number {
    while (this.sent.length > 0 && (this.sent[0] ?? 0) <= now - HOUR_MS) this.sent.shift();
    return this.sent.length;
  }
}

export type Role = 'local' | 'leader' | 'follower';

export class Poller<T> {
  readonly subscribers = new Set<Subscriber<T>>();
  #role: Role = 'local';
  #timer: NodeJS.Timeout | null = null;
  #beat: NodeJS.Timeout | null = null;
  #session: UpstreamSession | null = null;
  #stopped = false;
  #backoffMs = 0;
  /** The last stream entry delivered here (or where this process's feed stands in the stream). */
  #lastId: string | null = null;
  /** Whether the feed holds a state (its baseline was read, or it was restored). */
  #hasState = false;
  /** A follower whose own feed state counts (it polled for itself before): entries pass `Feed.admit`. */
  #merging = false;
  /** A merging follower still owes its subscribers one poll of its own (what the leader's state skipped). */
  #gap = false;
  #chain: Promise<unknown> = Promise.resolve();
  #released: Promise<void> = Promise.resolve();
  /** Settles when the poller stands somewhere (baseline read, or following): a refusal reaches subscribers at once. */
  readonly ready: Promise<void>;

  constructor(
    private readonly hub: PollerHost,
    readonly ledger: KeyLedger,
    private readonly feed: Feed<T>,
    private readonly session: () => UpstreamSession,
    private readonly link: FeedLink | null,
    private readonly onStop: () => void,
  ) {
    this.ready = this.#serial(() => this.#start());
    this.ready.catch((error: unknown) => {
      // A key the upstream refused leaves nothing behind.
      if (error instanceof UpstreamError && error.code === 'UNAUTHENTICATED') this.ledger.sent.length = 0;
      void this.stop();
    });
    if (link) {
      this.#beat = setInterval(() => void this.#beatNow(link).catch((error: unknown) => this.#failed(error)), hub.beatMs);
      this.#beat.unref();
    }
  }

  get cost(): number {
    return this.feed.cost;
  }

  get feedId(): string {
    return this.feed.id;
  }

  get role(): Role {
    return this.#role;
  }

  status(): LiveStatus {
    return {
      intervalMs: this.#backoffMs > 0 ? this.#backoffMs : this.hub.intervalFor(this.ledger),
      pollers: this.hub.pollersOf(this.ledger),
      retrying: this.#backoffMs > 0,
    };
  }

  /** Runs `step` after the steps before it. */
  #serial<R>(step: () => Promise<R>): Promise<R> {
    const run = this.#chain.then(() => (this.#stopped ? (undefined as R) : step()));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #start(): Promise<void> {
    if (this.link && this.hub.shared) {
      const won = await this.link.claim();
      if (this.#stopped) return;
      if (won === true) return this.#lead(this.link);
      if (won === false) {
        // Another process leads: stand where its stream stands (nothing before is new), and follow.
        const last = await this.link.last();
        if (last !== OFFLINE) {
          this.#lastId = last?.id ?? '0-0';
          if (last !== null) this.#restore(last.state);
          return this.#follow(this.link);
        }
      }
    }
    await this.#baseline();
    this.#local();
  }

  /** Reads the baseline within the key's live share (a refusal is thrown). */
  async #baseline(): Promise<void> {
    const { wait, charged } = await this.hub.admit(this.ledger, this.feed.cost);
    if (wait > 0) {
      throw new UpstreamError("This key's live polling has used its share of the hourly limit; the rest is kept for queries", {
        code: 'RATE_LIMITED',
        status: null,
        retryAfter: Math.ceil(wait / 1000),
        details: { source: 'gateway' },
      });
    }
    await this.#run((s) => this.feed.baseline(s), charged);
    this.#hasState = true;
  }

  #restore(state: unknown): boolean {
    try {
      this.feed.restore(state);
      this.#hasState = true;
      return true;
    } catch {
      return false;
    }
  }

  /** Runs one step with a fresh session, counting what it sent against the key's live share. */
  async #run<R>(step: (session: UpstreamSession) => Promise<R>, charged: number): Promise<R> {
    const session = this.session();
    this.#session = session;
    try {
      return await step(session);
    } finally {
      this.hub.spent(this.ledger, session.cost.requests, charged);
      session.end();
      this.#session = null;
    }
  }

  /** Polls for this process's subscribers alone. */
  #local(): void {
    // A stopped poller touches nothing: a newer poller of the same feed in this process may follow it now.
    if (this.#stopped) return;
    this.link?.unfollow();
    this.#role = 'local';
    this.#merging = false;
    if (this.#timer === null) this.#schedule();
  }

  /** This process holds the lease: it carries on from where the stream (or its own feed) stands, then polls. */
  async #lead(link: FeedLink): Promise<void> {
    link.unfollow();
    // Whether the feed stands where the stream's last entry left it; if not, followers merge.
    let fromStream = false;
    if (this.#role === 'follower') {
      const entries = await link.after(this.#lastId ?? '0-0');
      if (entries === OFFLINE) return this.#local();
      this.#deliver(entries);
      fromStream = this.#hasState && !this.#merging;
    } else if (!this.#hasState) {
      const last = await link.last();
      if (last === OFFLINE) return this.#local();
      if (last !== null && this.#restore(last.state)) {
        this.#lastId = last.id;
        fromStream = true;
      }
    }
    if (!this.#hasState) await this.#baseline();
    // The stream stands where this feed does from now on.
    const id = await link.append([], this.feed.snapshot(), !fromStream);
    if (id === OFFLINE) return this.#local();
    if (id === false) return this.#follow(link);
    this.#lastId = id;
    this.#role = 'leader';
    this.#merging = false;
    this.#gap = false;
    if (this.#timer === null) this.#schedule();
    this.#tell();
  }

  #follow(link: FeedLink): void {
    if (this.#stopped) return;
    this.#role = 'follower';
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    link.follow(
      () => this.#lastId ?? '0-0',
      (entries) => this.#deliver(entries),
    );
    this.#tell();
  }

  /** A follower's new stream entries, each delivered once, in order. */
  #deliver(entries: readonly FleetEntry[]): void {
    if (this.#stopped || this.#role !== 'follower') return;
    for (const entry of entries) {
      if (this.#lastId !== null && compareIds(entry.id, this.#lastId) <= 0) continue;
      if (entry.rebase && this.#hasState) {
        // The new leader's feed did not come from this stream: this one's own state counts from here,
        // and one poll of its own delivers what lies between the two.
        this.#merging = true;
        this.#gap = true;
        void this.#serial(() => this.#catchUp()).catch(() => undefined);
      }
      let items = entry.items as T[];
      if (this.#merging) items = this.feed.admit(items);
      else this.#restore(entry.state);
      this.#lastId = entry.id;
      if (items.length > 0) for (const s of this.subscribers) s.push(items);
    }
    this.#tell();
  }

  /** Every leaseMs/3: the leader renews its lease, a follower tries to take it, a local poller to rejoin. */
  /**
   * A leader renews its lease at once, not behind a poll in progress (a poll may take longer than the
   * lease: slow pages, retries); only what losing it changes waits for the poll. Other roles' beats
   * (claims, rejoining) take their turn after the steps before them.
   */
  async #beatNow(link: FeedLink): Promise<void> {
    if (this.#role !== 'leader') return this.#serial(() => this.#onBeat(link));
    const held = await link.renew();
    if (held === true) return;
    return this.#serial(async () => {
      if (this.#role !== 'leader') return;
      if (held === OFFLINE) this.#local();
      // Another process took the feed over: its entries carry on from the last one this process appended.
      else this.#follow(link);
    });
  }

  async #onBeat(link: FeedLink): Promise<void> {
    if (this.#role === 'leader') {
      const held = await link.renew();
      if (held === OFFLINE) this.#local();
      // Another process took the feed over: its entries carry on from the last one this process appended.
      else if (!held) this.#follow(link);
    } else if (this.#role === 'follower') {
      if (this.#gap) await this.#catchUp();
      const won = await link.claim();
      if (won === OFFLINE) this.#local();
      else if (won) await this.#lead(link);
    } else if (this.hub.shared) {
      await this.#rejoin(link);
    }
    this.#tell();
  }

  /**
   * Redis is back after this process polled for itself: it leads if it can (the stream takes its state);
   * else it notes where the stream stands, polls once more for itself, and follows from there, its own
   * state filtering what the leader's batches hold that it delivered already.
   */
  async #rejoin(link: FeedLink): Promise<void> {
    const won = await link.claim();
    if (won === OFFLINE || this.#stopped) return;
    if (won) return this.#lead(link);
    const last = await link.last();
    if (last === OFFLINE) return;
    this.#lastId = last?.id ?? '0-0';
    this.#merging = this.#hasState;
    this.#gap = this.#hasState;
    this.#follow(link);
    await this.#catchUp();
  }

  /** A merging follower's one poll of its own, after it noted where the stream stands (retried each beat until it succeeds). */
  async #catchUp(): Promise<void> {
    if (!this.#gap || this.#role !== 'follower') return;
    try {
      const items = await this.#run((s) => this.feed.poll(s), 0);
      this.#gap = false;
      if (items.length > 0) for (const s of this.subscribers) s.push(items);
    } catch {
      // The next beat tries again.
    }
  }

  /** A step other than a poll failed (a takeover's baseline): an answer a wait will not change ends the subscriptions; else the next beat tries again. */
  #failed(error: unknown): void {
    if (this.#stopped || !(error instanceof UpstreamError) || !PERMANENT.has(error.code)) return;
    for (const s of this.subscribers) s.fail(error);
    void this.stop();
  }

  #tell(): void {
    for (const s of this.subscribers) s.status = this.status();
  }

  #schedule(wait?: number): void {
    if (this.#stopped || this.#role === 'follower') return;
    const ms = wait ?? (this.#backoffMs > 0 ? this.#backoffMs : this.hub.intervalFor(this.ledger));
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#serial(() => this.#tick());
    }, ms);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    if (this.#role === 'follower') return;
    // Never past the key's live share: if the last hour's live requests leave no room, wait for it.
    const { wait, charged } = await this.hub.admit(this.ledger, this.feed.cost);
    // A takeover or a lost lease may have made it a follower meanwhile.
    if (this.#stopped || (this.#role as Role) === 'follower') return;
    if (wait > 0) return this.#schedule(wait);
    const before = this.#role === 'leader' ? this.feed.snapshot() : null;
    try {
      let items: T[] = [];
      if (!this.#hasState) {
        await this.#run((s) => this.feed.baseline(s), charged);
        this.#hasState = true;
      } else items = await this.#run((s) => this.feed.poll(s), charged);
      this.#backoffMs = 0;
      if (items.length > 0 && this.#role === 'leader' && this.link) {
        const id = await this.link.append(items, this.feed.snapshot());
        if (id === false) {
          // Another process leads now: this poll's items reach subscribers through its stream.
          this.feed.restore(before);
          return this.#follow(this.link);
        }
        if (id === OFFLINE) this.#local();
        else this.#lastId = id;
      }
      if (items.length > 0) for (const s of this.subscribers) s.push(items);
    } catch (error) {
      if (this.#stopped) return;
      if (error instanceof UpstreamError && PERMANENT.has(error.code)) {
        for (const s of this.subscribers) s.fail(error);
        void this.stop();
        return;
      }
      // A fault or a 429: wait (at least what the upstream asked), doubling up to the ceiling.
      const told = error instanceof UpstreamError && error.retryAfter !== null ? error.retryAfter * 1000 : 0;
      const base = Math.max(this.hub.intervalFor(this.ledger), this.#backoffMs * 2);
      this.#backoffMs = Math.min(this.hub.maxBackoffMs, Math.max(told, base));
    }
    this.#tell();
    this.#schedule();
  }

  /** Stops polling and following; gives the lease up if this process holds it (resolves once it did). */
  stop(): Promise<void> {
    if (this.#stopped) return this.#released;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#beat) clearInterval(this.#beat);
    this.#session?.end();
    this.onStop();
    this.link?.unfollow();
    this.#released = this.link ? this.link.release() : Promise.resolve();
    return this.#released;
  }
}
