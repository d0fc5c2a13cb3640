import { setMaxListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { Context } from '@opentelemetry/api';
import type { Envelope, UpstreamClient, UpstreamRequest } from './client.ts';
import { abortError, UpstreamError } from './errors.ts';
import type { KeyGate, Probe } from './key-gate.ts';
import type { QuotaState } from '../state/quota.ts';
import { endpointOf, requiredScope } from './routes.ts';
import { Limiter } from './scheduler.ts';
import { keyHash, type SharedReads } from '../state/shared-reads.ts';
import type { QuotaStore, ScopeStore } from '../state/state.ts';

/** What one GraphQL operation cost upstream, reported in `extensions.upstream`. */
export interface UpstreamCost {
  /** HTTP requests this operation sent upstream (retries included; nothing that was not sent). */
  requests: number;
  /** Of those, data listing pages (first attempts). */
  pages: number;
  /** GETs answered without a request: repeated within the operation, or fresh in the shared cache. */
  cacheHits: number;
  /** GETs that joined an identical request another operation of the same key had in flight. */
  coalesced: number;
  /** Of the requests, repeats after an outage or a short Retry-After. */
  retries: number;
  /** Requests sent that ended in an error. */
  failed: number;
  /** Requests this operation may still send before UPSTREAM_BUDGET_EXCEEDED. */
  budgetLeft: number;
  /** The key's spend against the upstream limits, as far as this gateway knows it. */
  rateLimit: QuotaState | null;
}

export const MISSING_KEY_MESSAGE = 'An API key is required: send it in the X-API-Key header (or Authorization: Bearer <key>)';

/** The long-lived parts every session shares (all keyed by a hash of the API key). */
export interface SessionDeps {
  client: UpstreamClient;
  shared: SharedReads;
  scopes: ScopeStore;
  quota: QuotaStore;
  /** Which keys the upstream confirmed or refused: an unconfirmed key goes upstream one request at a time. */
  keys: KeyGate;
  /** Upstream requests one operation may send. */
  budget: number;
  /** How long one operation may wait for the upstream in all, in ms. */
  deadlineMs: number;
  /** Upstream requests one operation has in flight at once; the rest wait their turn. */
  operationConcurrency: number;
  observer?: { shared(how: 'cached' | 'coalesced'): void; budgetRefused(stage: 'during'): void };
}

/** The reason a session's requests stop when its operation is over. */
class OperationEnded extends Error {
  override name = 'OperationEnded';
}

/** One reason for every session that ends (an Error's stack costs more than a small operation's whole execution). */
const ENDED = new OperationEnded('The operation ended');

/**
 * The upstream as one GraphQL operation sees it: bound to the caller's key (and only theirs), it
 * answers identical GETs once, joins other operations' identical in-flight GETs, honours what the
 * upstream said about the key's scopes and quota, keeps at most `operationConcurrency` requests in flight, and
 * counts and bounds what the operation costs. When the operation ends (`end()`), its deadline passes,
 * or its caller goes away, its requests still waiting or in flight are cancelled.
 */
export class UpstreamSession {
  readonly #memo = new Map<string, Promise<Envelope>>();
  #keyRefused: UpstreamError | null = null;
  readonly #cost = { requests: 0, pages: 0, cacheHits: 0, coalesced: 0, retries: 0, failed: 0 };
  readonly #hash: string | null;
  /** Made when the operation first goes upstream: most small operations never do (introspection, cached answers). */
  #controller: AbortController | null = null;
  #finalCost: UpstreamCost | null = null;
  #deadline: NodeJS.Timeout | null = null;
  #ended = false;
  readonly #started = Date.now();
  readonly #callerSignal: AbortSignal | undefined;
  #onCallerAbort: (() => void) | null = null;
  readonly #limiter: Limiter;
  /** Requests admitted against the budget but not sent yet. */
  #reserved = 0;
  /** Upstream requests the operation may send, and how long it may wait for the upstream in all (a table's may be more: widen()). */
  #budget: number;
  #deadlineMs: number;
  /** Whether a request the per-minute limit refuses waits its turn rather than failing (a table's pages). */
  #pace = false;
  /** Requests sent, by endpoint (method and route template). */
  readonly #endpoints = new Map<string, number>();
  /** The operation's trace context, set when its span starts. */
  trace: Context | undefined;

  constructor(
    private readonly deps: SessionDeps,
    private readonly key: string | null,
    readonly requestId: string,
    /** The caller's request: when it is aborted (the client went away), so is every upstream request. */
    callerSignal?: AbortSignal,
    /** The caller's X-Organization-Id, forwarded with every request of the operation (like the key). */
    readonly organizationId: string | null = null,
  ) {
    this.#hash = key === null ? null : keyHash(key);
    this.#limiter = new Limiter(deps.operationConcurrency);
    this.#callerSignal = callerSignal;
    this.#budget = deps.budget;
    this.#deadlineMs = deps.deadlineMs;
  }

  /**
   * Lets the operation send more requests and wait longer than an operation's usual budget and
   * deadline: a table reads every page of its rows (src/tables). Only before its first request.
   */
  widen(limits: { budget: number; deadlineMs: number; pace?: boolean }): void {
    if (this.#controller) throw new Error('widen() after the operation went upstream');
    this.#budget = limits.budget;
    this.#deadlineMs = limits.deadlineMs;
    this.#pace = limits.pace ?? false;
  }

  /** Requests this operation sent so far, by endpoint (method and route template). */
  get endpoints(): Record<string, number> {
    return Object.fromEntries(this.#endpoints);
  }

  /**
   * The key's hourly quota as far as this gateway knows it: what is left (the upstream's own count
   * when it said one), the limit, and in how many seconds `n` more requests would fit (null: never
   * within an hour; 0: now).
   */
  async quotaRoom(n: number): Promise<{ left: number; limitPerHour: number; fitsInSeconds: number | null }> {
    const hash = this.#hash;
    if (hash === null) return { left: 0, limitPerHour: 0, fitsInSeconds: null };
    const state = this.deps.quota.state(hash);
    const left = Math.max(0, Math.min(state.limitPerHour - state.usedLastHour, state.upstreamRemaining ?? Number.POSITIVE_INFINITY));
    if (n > state.limitPerHour) return { left, limitPerHour: state.limitPerHour, fitsInSeconds: null };
    if (n <= left) return { left, limitPerHour: state.limitPerHour, fitsInSeconds: 0 };
    const ms = await this.deps.quota.untilRoom(hash, n);
    return { left, limitPerHour: state.limitPerHour, fitsInSeconds: ms === null ? null : Math.ceil(ms / 1000) };
  }

  /** The operation's controller, made on first use; its deadline counts from the operation's start. */
  #control(): AbortController {
    if (this.#controller) return this.#controller;
    const controller = new AbortController();
    this.#controller = controller;
    // Every read of the operation (up to its budget, and each of their waits) listens to this one signal.
    setMaxListeners(Math.max(10, this.#budget * 4), controller.signal);
    if (this.#ended) {
      controller.abort(ENDED);
      return controller;
    }
    const left = this.#msLeft();
    const passed = () => controller.abort(new DOMException('The operation deadline passed', 'TimeoutError'));
    if (left <= 0) {
      passed();
      return controller;
    }
    // The timer holds the controller only: an operation that has ended is not kept until its deadline.
    this.#deadline = setTimeout(passed, left);
    this.#deadline.unref();
    // A plain listener, removed by end(): the `signal` option of addEventListener costs a weak reference per listener.
    const caller = this.#callerSignal;
    if (caller?.aborted) this.end();
    else if (caller) {
      this.#onCallerAbort = () => this.end();
      caller.addEventListener('abort', this.#onCallerAbort, { once: true });
    }
    return controller;
  }

  get cost(): UpstreamCost {
    // Once the operation is over its cost no longer changes: the answer's extension and the report share one.
    if (this.#finalCost) return this.#finalCost;
    const cost: UpstreamCost = {
      ...this.#cost,
      budgetLeft: Math.max(0, this.#budget - this.#cost.requests),
      rateLimit: this.#hash === null ? null : this.deps.quota.state(this.#hash),
    };
    if (this.#ended) this.#finalCost = cost;
    return cost;
  }

  /** Whether the operation is over, found without making its controller when it has none yet. */
  #over(): boolean {
    if (this.#controller) return this.#controller.signal.aborted;
    return this.#ended || this.#callerSignal?.aborted === true || this.#msLeft() <= 0;
  }

  /** What is left of the operation's deadline, which counts from its start. */
  #msLeft(): number {
    return this.#deadlineMs - (Date.now() - this.#started);
  }

  /** Aborts when the operation is over (ended, past its deadline, or abandoned by its caller). */
  get signal(): AbortSignal {
    return this.#control().signal;
  }

  /** The operation is over: whatever it still has waiting or in flight upstream is cancelled. */
  end(): void {
    // A key the upstream never confirmed keeps nothing: once every read of the operation has settled
    // (their cache lookups included), what the shared cache wrote for it goes.
    const hash = this.#hash;
    if (!this.#ended && hash !== null && this.#memo.size > 0 && !this.deps.keys.confirmed(hash)) {
      void Promise.allSettled(this.#memo.values()).then(() => {
        if (!this.deps.keys.confirmed(hash)) return this.deps.shared.abandon(hash);
      });
    }
    this.#ended = true;
    if (this.#deadline) clearTimeout(this.#deadline);
    if (this.#onCallerAbort) this.#callerSignal?.removeEventListener('abort', this.#onCallerAbort);
    this.#onCallerAbort = null;
    if (this.#controller && !this.#controller.signal.aborted) this.#controller.abort(ENDED);
  }

  /**
   * A GET: sent once per operation, shared with identical in-flight GETs of the same key. With
   * `remember` false the operation keeps no hold on the answer once it is read (a table's pages: its
   * memory stays a few pages whatever the table's size), so an identical GET later goes again.
   */
  get(path: string, query?: URLSearchParams, kind: 'page' | 'object' = 'object', remember = true): Promise<Envelope> {
    // The organization is part of what a GET asks, so answers for different ones are never shared.
    const url = `${path}?${query?.toString() ?? ''}${this.organizationId === null ? '' : `#org=${this.organizationId}`}`;
    const known = this.#memo.get(url);
    if (known) {
      this.#cost.cacheHits++;
      return known;
    }
    let pending: Promise<Envelope>;
    if (this.#hash === null) {
      pending = Promise.reject(new UpstreamError(MISSING_KEY_MESSAGE, { code: 'UNAUTHENTICATED', status: null }));
    } else if (this.#refusal(this.#hash)) {
      pending = Promise.reject(this.#keyRefused);
    } else if (this.#over()) {
      pending = Promise.reject(abortError(this.signal));
    } else {
      const shared = this.deps.shared.get(
        this.#hash,
        url,
        (signal) => this.#send({ method: 'GET', path, query }, kind, signal),
        // The signal is made only if the read is not answered from the cache.
        () => this.signal,
        (how) => {
          if (how === 'coalesced') this.#cost.coalesced++;
          if (how === 'cached') this.#cost.cacheHits++;
          if (how !== 'sent') this.deps.observer?.shared(how);
        },
        this.deps.keys.confirmed(this.#hash),
      );
      pending = shared.envelope.catch((error: unknown) => {
        const signal = this.#controller?.signal;
        throw signal?.aborted && !(error instanceof UpstreamError) ? abortError(signal, error) : error;
      });
    }
    if (remember) this.#memo.set(url, pending);
    return pending;
  }

  /**
   * What a live poller needs to act for this caller after the operation is over: the key's hash (to
   * share pollers and quota), the organization, and new sessions with the same key and organization
   * (the key itself stays inside sessions).
   */
  forLive(): { hash: string; organizationId: string | null; session: () => UpstreamSession } | null {
    if (this.#hash === null) return null;
    let polls = 0;
    return {
      hash: this.#hash,
      organizationId: this.organizationId,
      session: () => new UpstreamSession(this.deps, this.key, `${this.requestId}:live-${++polls}`, undefined, this.organizationId),
    };
  }

  /**
   * A GET that must see the upstream as it is now (a live poll): neither answered from the shared cache
   * nor from this operation's memo, nor joined with another operation's request.
   */
  fresh(path: string, query?: URLSearchParams, kind: 'page' | 'object' = 'page'): Promise<Envelope> {
    if (this.#hash === null) return Promise.reject(new UpstreamError(MISSING_KEY_MESSAGE, { code: 'UNAUTHENTICATED', status: null }));
    return this.#send({ method: 'GET', path, query }, kind, this.signal);
  }

  /**
   * A write (or any request that must not be shared). Once it is over, nothing the key reads is older:
   * the key's cached answers are dropped (in every process sharing the cache, before this resolves),
   * its reads in flight are neither joined nor remembered, and this operation forgets the GETs it made.
   */
  async send(req: Omit<UpstreamRequest, 'key' | 'requestId'>): Promise<Envelope> {
    try {
      return await this.#send(req, 'object', this.signal);
    } finally {
      if (this.#hash !== null && req.method !== 'GET') {
        this.#memo.clear();
        await this.deps.shared.invalidate(this.#hash);
      }
    }
  }

  /** The key's refusal: this operation's own 401, or one the gate remembers from the last moments. */
  #refusal(hash: string): UpstreamError | null {
    this.#keyRefused ??= this.deps.keys.refusal(hash);
    return this.#keyRefused;
  }

  #budgetError(): UpstreamError {
    return new UpstreamError(`This operation has spent its budget of ${this.#budget} upstream requests`, {
      code: 'UPSTREAM_BUDGET_EXCEEDED',
      status: null,
      details: { budget: this.#budget },
    });
  }

  async #send(req: Omit<UpstreamRequest, 'key' | 'requestId'>, kind: 'page' | 'object', signal: AbortSignal): Promise<Envelope> {
    const hash = this.#hash;
    if (this.key === null || hash === null) throw new UpstreamError(MISSING_KEY_MESSAGE, { code: 'UNAUTHENTICATED', status: null });
    if (signal.aborted) throw abortError(signal);
    // Once the upstream refused the key, the rest of the operation is refused without asking again.
    const refusal = this.#refusal(hash);
    if (refusal) throw refusal;
    const { quota, client, keys } = this.deps;
    const budget = this.#budget;
    if (req.method === 'GET') await this.deps.scopes.check(hash, requiredScope(req.path));
    // The check and the reservation go together (nothing awaited between them), so that concurrent
    // reads of the operation never overdraw its budget.
    if (this.#cost.requests + this.#reserved >= budget) {
      this.deps.observer?.budgetRefused('during');
      throw this.#budgetError();
    }
    const endpoint = endpointOf(req.method, req.path);
    this.#reserved++;
    let reserved = true;
    let sent = false;
    let waitedOut = false;
    let last: UpstreamError | null = null;
    /** Set while this request is its key's probe: the key is not confirmed, and nothing is recorded for it until it is. */
    const gate: { probe: Probe | null } = { probe: null };
    /** Attempts the probe sent, recorded against the key's quota once the upstream confirmed the key. */
    let unrecorded = 0;
    // Counts an attempt at the moment it goes out: the first uses the reservation, a repeat needs room
    // in the budget and the quota, or the failure it would repeat stands. A key refused meanwhile (by
    // another operation's 401) sends nothing more, wherever its requests waited.
    const beforeAttempt = async (_attempt: number, previous: UpstreamError | null): Promise<void> => {
      const refused = this.#refusal(hash);
      if (refused) throw refused;
      if (sent) {
        if (this.#cost.requests + this.#reserved >= budget) throw previous ?? last ?? this.#budgetError();
        // Room in the budget is held while the quota is asked.
        this.#reserved++;
        try {
          if (gate.probe) unrecorded++;
          else await quota.take(hash, endpoint);
        } catch (refusal) {
          throw previous ?? last ?? refusal;
        } finally {
          this.#reserved--;
        }
        this.#cost.retries++;
      } else {
        if (gate.probe) unrecorded++;
        else await quota.take(hash, endpoint);
        this.#reserved--;
        reserved = false;
        if (kind === 'page') this.#cost.pages++;
      }
      this.#cost.requests++;
      this.#endpoints.set(endpoint, (this.#endpoints.get(endpoint) ?? 0) + 1);
      sent = true;
    };
    try {
      try {
        gate.probe = await keys.enter(hash, signal);
      } catch (error) {
        if (error instanceof UpstreamError) {
          this.#keyRefused ??= error;
          throw error;
        }
        throw abortError(signal, error);
      }
      for (;;) {
        try {
          const wait = await quota.admit(hash, endpoint);
          if (wait > 0)
            await delay(wait, undefined, { signal }).catch((error: unknown) => {
              throw abortError(signal, error);
            });
          let release: () => void;
          try {
            release = await this.#limiter.acquire(signal);
          } catch (error) {
            throw abortError(signal, error);
          }
          try {
            const envelope = await client.send({
              organizationId: this.organizationId,
              ...req,
              key: this.key,
              requestId: this.requestId,
              signal,
              partition: hash,
              beforeAttempt,
              trace: this.trace,
            });
            if (gate.probe) await this.#confirm(gate.probe, hash, endpoint, unrecorded, envelope.rateLimit?.remaining ?? null);
            else if (envelope.rateLimit) await quota.observe(hash, { remaining: envelope.rateLimit.remaining });
            gate.probe = null;
            return envelope;
          } finally {
            release();
          }
        } catch (error) {
          if (!(error instanceof UpstreamError)) throw error;
          if (error.status === 401) {
            this.#refuse(hash, error, gate.probe);
            gate.probe = null;
            await quota.forget(hash, endpoint);
            if (sent) this.#cost.failed++;
            throw error;
          }
          await this.deps.scopes.learn(hash, error);
          // A 429 makes every operation of the key wait (in every process sharing the quota).
          if (error.status === 429) await quota.observe(hash, { retryAfter: error.retryAfter ?? 1 });
          // Any other answer of the upstream (a 403, a 404, a 429 …) says the key is real; no answer says
          // nothing. Confirmed after what it taught (a Retry-After), so that the waiting requests heed it.
          if (gate.probe && error.status !== null && error.status < 500) {
            await this.#confirm(gate.probe, hash, endpoint, unrecorded, null);
            gate.probe = null;
          }
          // A table's page the per-minute limit refuses before it is sent waits for room instead (paced).
          if (this.#pace && !sent && error.details.source === 'gateway' && error.details.reason === 'minute') {
            await delay((error.retryAfter ?? 1) * 1000, undefined, { signal }).catch((cause: unknown) => {
              throw abortError(signal, cause);
            });
            continue;
          }
          if (error.code === 'RATE_LIMITED') {
            // A short wait is waited out once, then retried.
            const told = error.status === 429 || error.details.reason === 'retry-after';
            if (told && !waitedOut && req.method === 'GET' && quota.waitable(error.retryAfter ?? 1)) {
              waitedOut = true;
              last = error;
              continue;
            }
          }
          if (sent) this.#cost.failed++;
          throw error;
        }
      }
    } finally {
      if (reserved) this.#reserved--;
      // Ended without a verdict (the caller went away, the deadline, an outage): the next waiting request probes.
      gate.probe?.release(unrecorded);
    }
  }

  /**
   * The upstream answered the probe: what the probe sent is recorded against the key's quota, with what
   * the upstream said remains, before the key's other requests are let go (so that they are decided on it).
   */
  async #confirm(probe: Probe, hash: string, endpoint: string, attempts: number, remaining: number | null): Promise<void> {
    try {
      // With what earlier probes of the key sent and got no answer to: the upstream counted those too.
      const sent = attempts + probe.takeCarried();
      for (let i = 0; i < sent; i++) await this.deps.quota.record(hash, endpoint);
      if (remaining !== null) await this.deps.quota.observe(hash, { remaining });
    } finally {
      probe.confirm();
    }
  }

  /**
   * The upstream refused the key (401): every request of the key waiting at the gate is refused, the
   * rest of this operation's requests end wherever they wait (queue, limiter, admission), and the key's
   * later requests are refused for a while without asking.
   */
  #refuse(hash: string, error: UpstreamError, probe: Probe | null): void {
    this.#keyRefused ??= error;
    if (probe) probe.refuse(error);
    else this.deps.keys.refuse(hash, error);
    if (this.#controller && !this.#controller.signal.aborted) this.#controller.abort(error);
  }
}
