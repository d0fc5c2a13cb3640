import { LRUCache } from 'lru-cache';

/** What one attempt told about the upstream's health. */
export type Verdict =
  /** An answer arrived (any 2xx–4xx): the upstream is up. */
  | 'answered'
  /** No usable answer: 5xx, network error, the request's own timeout. */
  | 'outage'
  /** Nothing learnt (the caller gave up first). */
  | 'neutral';

export type CircuitState = 'closed' | 'open' | 'half-open';

/**
 * One circuit: opens after `breakerThreshold` consecutive outages, fails fast for `breakerHalfOpenMs`, then lets a
 * single trial through; the trial's answer closes it, its outage opens it again.
 */
class Circuit {
  failures = 0;
  openedAt: number | null = null;
  trial = false;

  state(now: number, halfOpenMs: number): CircuitState {
    if (this.openedAt === null) return 'closed';
    return now - this.openedAt >= halfOpenMs ? 'half-open' : 'open';
  }

  /** Whether a request may go now; `trial` when it is the half-open trial. */
  admit(now: number, halfOpenMs: number): 'go' | 'trial' | 'refuse' {
    const state = this.state(now, halfOpenMs);
    if (state === 'closed') return 'go';
    if (state === 'open' || this.trial) return 'refuse';
    this.trial = true;
    return 'trial';
  }

  answered(): void {
    this.failures = 0;
    this.openedAt = null;
    this.trial = false;
  }

  open(now: number): void {
    this.openedAt = now;
    this.trial = false;
  }
}

export interface BreakerOptions {
  /** Consecutive outages that open a circuit. */
  breakerThreshold: number;
  /** How long an open circuit fails fast before a trial, in ms. */
  breakerHalfOpenMs: number;
  /** Distinct keys (the health probe counts as one) among the consecutive outages that open the shared circuit. */
  breakerMinKeys: number;
  /** Per-key circuits held at most (least recently used dropped first; a dropped one is closed). */
  maxKeys: number;
  now?: () => number;
}

/** Which circuit refused a request. */
export type Refusal = 'upstream' | 'key';

/** A pass for one attempt: hand it back with what the attempt told. */
export interface Ticket {
  partition: string;
  upstreamTrial: boolean;
  keyTrial: boolean;
}

/**
 * Circuit breakers that tell the upstream's trouble from one key's: each key (partition) has its own
 * circuit, opened by its own consecutive outages, and the shared circuit opens only when consecutive
 * outages come from at least `breakerMinKeys` distinct keys. One key's failing requests (its timeouts, its
 * expensive listings) stop that key alone; an answer from anyone shows the upstream is up.
 */
export class Breakers {
  readonly #shared = new Circuit();
  /** The keys among the shared circuit's consecutive outages (at most `breakerMinKeys` are needed). */
  readonly #failingKeys = new Set<string>();
  readonly #keys: LRUCache<string, Circuit>;
  readonly #now: () => number;

  constructor(private readonly options: BreakerOptions) {
    this.#now = options.now ?? Date.now;
    this.#keys = new LRUCache({ max: options.maxKeys });
  }

  /** The shared circuit (what `/ready` and the metrics report). */
  get state(): CircuitState {
    return this.#shared.state(this.#now(), this.options.breakerHalfOpenMs);
  }

  /** Keys whose own circuit is open now. */
  get openKeys(): number {
    let open = 0;
    const now = this.#now();
    for (const circuit of this.#keys.values()) if (circuit.state(now, this.options.breakerHalfOpenMs) !== 'closed') open++;
    return open;
  }

  /** Lets an attempt of `partition` through, or says which circuit refuses it. */
  admit(partition: string): Ticket | Refusal {
    const now = this.#now();
    const sharedPass = this.#shared.admit(now, this.options.breakerHalfOpenMs);
    if (sharedPass === 'refuse') return 'upstream';
    const key = this.#keys.get(partition);
    const keyPass = key ? key.admit(now, this.options.breakerHalfOpenMs) : 'go';
    if (keyPass === 'refuse') {
      if (sharedPass === 'trial') this.#shared.trial = false;
      return 'key';
    }
    return { partition, upstreamTrial: sharedPass === 'trial', keyTrial: keyPass === 'trial' };
  }

  /** Records what an admitted attempt told. */
  record(ticket: Ticket, verdict: Verdict): void {
    const now = this.#now();
    const key = this.#keys.get(ticket.partition, { updateAgeOnGet: false });
    if (verdict === 'neutral') {
      if (ticket.upstreamTrial) this.#shared.trial = false;
      if (ticket.keyTrial && key) key.trial = false;
      return;
    }
    if (verdict === 'answered') {
      this.#closeShared();
      // A key whose requests are answered needs no state at all.
      if (key) this.#keys.delete(ticket.partition);
      return;
    }
    this.#keyOutage(ticket.partition, key, ticket.keyTrial, now);
    this.#sharedOutage(ticket.partition, ticket.upstreamTrial, now);
  }

  /**
   * What the upstream's own health endpoint said (the readiness probe, sent whatever the circuit's
   * state): an answer closes the shared circuit; an outage counts as one more failing key.
   */
  probed(healthy: boolean): void {
    if (healthy) return this.#closeShared();
    const now = this.#now();
    const state = this.#shared.state(now, this.options.breakerHalfOpenMs);
    if (state === 'closed') this.#sharedOutage('(health probe)', false, now);
    // A failed probe is a failed trial once the open period is over; within it, nothing changes.
    else if (state === 'half-open' && !this.#shared.trial) this.#shared.open(now);
  }

  #closeShared(): void {
    // The upstream as a whole recovered: keys whose circuits its outage opened may try again.
    if (this.#shared.openedAt !== null) this.#keys.clear();
    this.#shared.answered();
    this.#failingKeys.clear();
  }

  #keyOutage(partition: string, known: Circuit | undefined, trial: boolean, now: number): void {
    const circuit = known ?? new Circuit();
    if (!known) this.#keys.set(partition, circuit);
    circuit.failures++;
    if (trial || circuit.failures >= this.options.breakerThreshold) circuit.open(now);
  }

  #sharedOutage(partition: string, reopen: boolean, now: number): void {
    const shared = this.#shared;
    shared.failures++;
    if (this.#failingKeys.size < this.options.breakerMinKeys) this.#failingKeys.add(partition);
    if (reopen || (shared.failures >= this.options.breakerThreshold && this.#failingKeys.size >= this.options.breakerMinKeys))
      shared.open(now);
  }
}
