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

/**
 * Paces an operation's requests within a share of its key's limits (an export job's: src/exports/pacer.ts).
 * The session asks it once per request, before admission, so that a request waiting for its turn holds
 * no slot anywhere.
 */
export interface RequestPacer {
  /** Resolves when the request may go (it counts from then on); rejects when the signal aborts. */
  turn(endpoint: string, signal: AbortSignal): Promise<void>;
  /** A repeat of a request went out (a retry after a fault): it counts too. */
  repeated(endpoint: string): void;
}

/** A request that is its key's probe, and the attempts it sent (recorded against the key's quota once the upstream confirmed the key). */
interface Probing {
  readonly probe: Probe;
  attempts: number;
}

/** One request of the operation on its way upstream, as the steps of `#send` see it. */
interface Outgoing {
  readonly req: Omit<UpstreamRequest, 'key' | 'requestId'>;
  readonly kind: 'page' | 'object';
  readonly key: string;
  readonly hash: string;
  readonly endpoint: string;
  /** Whether an attempt went out (counted in the operation's requests); until then it holds room in the budget. */
  sent: boolean;
  /** Set while the request is its key's probe: the key is not confirmed, and nothing is recorded for it until it is. */
  probing: Probing | null;
  /** The rate limit waited out (once): the failure that stands if the repeat may not go. */
  waitedOut: UpstreamError | null;
  /** Whether the operation's pacer gave it its turn. */
  paced: boolean;
}

/** The reason a session's requests stop when its operation is over. */
class OperationEnded extends Error {
  override name = 'OperationEnded';
}

/** One reason for every session that ends (an Error's stack costs more than a small operation's whole execution). */
const ENDED = new OperationEnded('The operation ended');

const deadlinePassed = (): DOMException => new DOMException('The operation deadline passed', 'TimeoutError');

/**
 * Aborts `controller` after `ms`, on a timer that does not keep the process alive. Made apart from the
 * session so that the timer's callback holds the controller only.
 */
function abortAfter(controller: AbortController, ms: number): NodeJS.Timeout {
  const timer = setTimeout(() => controller.abort(deadlinePassed()), ms);
  timer.unref();
  return timer;
}

/** The listener a session puts on its caller's signal, and how it lets go of the session. */
interface CallerListener {
  listener: () => void;
  release(): void;
}

/**
 * Ends `session` when its caller's signal aborts; once released, the listener holds nothing. With the
 * listener and the deadline timer's callback closures over the session (made in one method, they share
 * what they capture), V8's young-generation collector kept an ended operation's session, and every
 * answer it remembered, alive until a full collection (`npm run bench:profile -- --retained`; either
 * change alone frees it): the listener refers to the session through a holder end() empties, and the
 * timer's callback (abortAfter) to the controller only.
 */
function endOnAbort(session: UpstreamSession): CallerListener {
  let held: UpstreamSession | null = session;
  return {
    listener: () => held?.end(),
    release: () => {
      held = null;
    },
  };
}

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
  #onCallerAbort: CallerListener | null = null;
  readonly #limiter: Limiter;
  /** Requests admitted against the budget but not sent yet. */
  #reserved = 0;
  /** Upstream requests the operation may send, and how long it may wait for the upstream in all (a table's may be more: widen()). */
  #budget: number;
  #deadlineMs: number;
  /** Whether a request the per-minute limit refuses waits its turn rather than failing (a table's pages). */
  #pace = false;
  #pacer: RequestPacer | null = null;
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
  widen(limits: { budget: number; deadlineMs: number; pace?: boolean; pacer?: RequestPacer }): void {
    if (this.#controller) throw new Error('widen() after the operation went upstream');
    this.#budget = limits.budget;
    this.#deadlineMs = limits.deadlineMs;
    this.#pace = limits.pace ?? false;
    this.#pacer = limits.pacer ?? null;
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
    if (left <= 0) {
      controller.abort(deadlinePassed());
      return controller;
    }
    // The timer holds the controller only: an operation that has ended is not kept until its deadline.
    this.#deadline = abortAfter(controller, left);
    // A plain listener, removed by end(): the `signal` option of addEventListener costs a weak reference per listener.
    const caller = this.#callerSignal;
    if (caller?.aborted) this.end();
    else if (caller) {
      this.#onCallerAbort = endOnAbort(this);
      caller.addEventListener('abort', this.#onCallerAbort.listener, { once: true });
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
    if (this.#onCallerAbort) {
      this.#callerSignal?.removeEventListener('abort', this.#onCallerAbort.listener);
      this.#onCallerAbort.release();
    }
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
      let joined = false;
      const shared = this.deps.shared.get(
        this.#hash,
        url,
        (signal) => this.#send({ method: 'GET', path, query }, kind, signal),
        // The signal is made only if the read is not answered from the cache.
        () => this.signal,
        (how) => {
          joined = how === 'coalesced';
          if (how === 'coalesced') this.#cost.coalesced++;
          if (how === 'cached') this.#cost.cacheHits++;
          if (how !== 'sent') this.deps.observer?.shared(how);
        },
        this.deps.keys.confirmed(this.#hash),
      );
      // An operation that joined another's read resumes a macrotask after it, each in the order it
      // joined: otherwise every operation sharing the read resumes in the same microtasks, their
      // executions interleave and all end together, and none of their clients asks again until the
      // last has its answer — the next reads then wait with the gateway idle (docs/measured.md).
      pending = shared.envelope
        .then((envelope) => (joined ? new Promise<Envelope>((resolve) => setImmediate(resolve, envelope)) : envelope))
        .catch((error: unknown) => {
          const signal = this.#controller?.signal;
          throw signal?.aborted && !(error instanceof UpstreamError) ? abortError(signal, error) : error;
        });
    }
    if (remember) this.#memo.set(url, pending);
    return pending;
  }

  /** Whether the upstream has accepted this caller's key (in this process or, with Redis, the fleet). */
  keyConfirmed(): boolean {
    return this.#hash !== null && this.deps.keys.confirmed(this.#hash);
  }

  /**
   * The GETs this operation remembers, as far as they were answered (an export job keeps those of the
   * answer above its rows, so that a resume reads none of them again).
   */
  async answered(): Promise<[string, Envelope][]> {
    const entries = [...this.#memo.entries()];
    const settled = await Promise.allSettled(entries.map(([, pending]) => pending));
    return entries.flatMap(([url], i) => {
      const answer = settled[i];
      return answer?.status === 'fulfilled' ? [[url, answer.value] as [string, Envelope]] : [];
    });
  }

  /** Answers known already (an export job's, from its checkpoint): this operation does not send these GETs. */
  replay(answers: Iterable<readonly [string, Envelope]>): void {
    for (const [url, envelope] of answers) if (!this.#memo.has(url)) this.#memo.set(url, Promise.resolve(envelope));
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

  /**
   * One request of the operation, step by step: whether it may go at all, the scope mirror, room in
   * the budget, the key gate, then admission and the attempt until the upstream's answer decides
   * (confirming or refusing the key, teaching its scopes and Retry-After; a short rate limit is waited
   * out once). Each attempt is counted as it goes out (`#beforeAttempt`).
   */
  async #send(req: Omit<UpstreamRequest, 'key' | 'requestId'>, kind: 'page' | 'object', signal: AbortSignal): Promise<Envelope> {
    const { key, hash } = this.#mayGo(signal);
    if (req.method === 'GET') await this.deps.scopes.check(hash, requiredScope(req.path));
    // The check and the reservation go together (nothing awaited between them), so that concurrent
    // reads of the operation never overdraw its budget.
    if (!this.#reserve()) {
      this.deps.observer?.budgetRefused('during');
      throw this.#budgetError();
    }
    const out: Outgoing = {
      req,
      kind,
      key,
      hash,
      endpoint: endpointOf(req.method, req.path),
      sent: false,
      probing: null,
      waitedOut: null,
      paced: false,
    };
    try {
      out.probing = await this.#enterGate(hash, signal);
      for (;;) {
        try {
          return await this.#attempt(out, signal);
        } catch (error) {
          if (!(error instanceof UpstreamError)) throw error;
          if (error.status === 401) await this.#refused(out, error);
          else {
            await this.#learn(out, error);
            // A table's page the per-minute limit refuses before it is sent waits for room instead (paced).
            if (this.#pace && !out.sent && error.details.source === 'gateway' && error.details.reason === 'minute') {
              await delay((error.retryAfter ?? 1) * 1000, undefined, { signal }).catch((cause: unknown) => {
                throw abortError(signal, cause);
              });
              continue;
            }
            if (this.#mayWaitOut(out, error)) {
              out.waitedOut = error;
              continue;
            }
          }
          if (out.sent) this.#cost.failed++;
          throw error;
        }
      }
    } finally {
      // Never sent: its room in the budget is given back.
      if (!out.sent) this.#reserved--;
      // Ended without a verdict (the caller went away, the deadline, an outage): the next waiting request probes.
      out.probing?.probe.release(out.probing.attempts);
    }
  }

  /** The key, if a request of the operation may go: there is one, the operation is not over, and the key is not refused. */
  #mayGo(signal: AbortSignal): { key: string; hash: string } {
    const { key } = this;
    const hash = this.#hash;
    if (key === null || hash === null) throw new UpstreamError(MISSING_KEY_MESSAGE, { code: 'UNAUTHENTICATED', status: null });
    if (signal.aborted) throw abortError(signal);
    // Once the upstream refused the key, the rest of the operation is refused without asking again.
    const refusal = this.#refusal(hash);
    if (refusal) throw refusal;
    return { key, hash };
  }

  /** Holds room in the budget for one request, if there is any. */
  #reserve(): boolean {
    if (this.#cost.requests + this.#reserved >= this.#budget) return false;
    this.#reserved++;
    return true;
  }

  /**
   * The key gate: `null` when the key is confirmed (go at once), else this request is the key's probe
   * (after another probe's request ended without a verdict, if one was in flight).
   */
  async #enterGate(hash: string, signal: AbortSignal): Promise<Probing | null> {
    try {
      const probe = await this.deps.keys.enter(hash, signal);
      return probe && { probe, attempts: 0 };
    } catch (error) {
      if (error instanceof UpstreamError) {
        this.#keyRefused ??= error;
        throw error;
      }
      throw abortError(signal, error);
    }
  }

  /**
   * Admission (the key's quota may ask to wait a moment; the operation's concurrency), then the client's
   * attempts; an answer confirms the key its probe found out, or tells the quota what remains.
   */
  async #attempt(out: Outgoing, signal: AbortSignal): Promise<Envelope> {
    const { quota } = this.deps;
    if (this.#pacer && !out.paced) {
      await this.#pacer.turn(out.endpoint, signal).catch((error: unknown) => {
        throw abortError(signal, error);
      });
      out.paced = true;
    }
    const wait = await quota.admit(out.hash, out.endpoint);
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
      const envelope = await this.deps.client.send({
        organizationId: this.organizationId,
        ...out.req,
        key: out.key,
        requestId: this.requestId,
        signal,
        partition: out.hash,
        beforeAttempt: (_attempt, previous) => this.#beforeAttempt(out, previous),
        trace: this.trace,
      });
      if (out.probing) await this.#confirm(out, out.probing, envelope.rateLimit?.remaining ?? null);
      else if (envelope.rateLimit) await quota.observe(out.hash, { remaining: envelope.rateLimit.remaining });
      out.probing = null;
      return envelope;
    } finally {
      release();
    }
  }

  /**
   * Right before each attempt goes out: it is counted, or it does not go. The first uses the request's
   * reservation; a repeat needs room in the budget and the quota, or the failure it would repeat
   * stands. A key refused meanwhile (by another operation's 401) sends nothing more, wherever its
   * requests waited.
   */
  async #beforeAttempt(out: Outgoing, previous: UpstreamError | null): Promise<void> {
    const refused = this.#refusal(out.hash);
    if (refused) throw refused;
    if (out.sent) {
      const standing = previous ?? out.waitedOut;
      // Room in the budget is held while the quota is asked.
      if (!this.#reserve()) throw standing ?? this.#budgetError();
      try {
        await this.#take(out);
      } catch (refusal) {
        throw standing ?? refusal;
      } finally {
        this.#reserved--;
      }
      this.#cost.retries++;
      this.#pacer?.repeated(out.endpoint);
    } else {
      await this.#take(out);
      // The reservation becomes the request.
      this.#reserved--;
      if (out.kind === 'page') this.#cost.pages++;
    }
    this.#cost.requests++;
    this.#endpoints.set(out.endpoint, (this.#endpoints.get(out.endpoint) ?? 0) + 1);
    out.sent = true;
  }

  /** An attempt from the key's quota; a probe's attempts are counted apart, and recorded once the key is confirmed. */
  async #take(out: Outgoing): Promise<void> {
    if (out.probing) out.probing.attempts++;
    else await this.deps.quota.take(out.hash, out.endpoint);
  }

  /**
   * What a failed request's answer teaches, a refusal aside: the scopes the key lacks; a 429's
   * Retry-After (every operation of the key waits, in every process sharing the quota); and that the
   * key is real — any answer of the upstream (a 403, a 404, a 429 …) says so, no answer says nothing.
   * The key is confirmed after what it taught, so that its waiting requests heed it.
   */
  async #learn(out: Outgoing, error: UpstreamError): Promise<void> {
    await this.deps.scopes.learn(out.hash, error);
    if (error.status === 429) await this.deps.quota.observe(out.hash, { retryAfter: error.retryAfter ?? 1 });
    if (out.probing && error.status !== null && error.status < 500) {
      await this.#confirm(out, out.probing, null);
      out.probing = null;
    }
  }

  /** Whether a read's rate limit is short enough to wait out (once; the wait is admission's), then try again. */
  #mayWaitOut(out: Outgoing, error: UpstreamError): boolean {
    if (error.code !== 'RATE_LIMITED' || out.waitedOut !== null || out.req.method !== 'GET') return false;
    const told = error.status === 429 || error.details.reason === 'retry-after';
    return told && this.deps.quota.waitable(error.retryAfter ?? 1);
  }

  /**
   * The upstream answered the probe: what the probe sent is recorded against the key's quota, with what
   * the upstream said remains, before the key's other requests are let go (so that they are decided on it).
   */
  async #confirm(out: Outgoing, probing: Probing, remaining: number | null): Promise<void> {
    try {
      // With what earlier probes of the key sent and got no answer to: the upstream counted those too.
      const sent = probing.attempts + probing.probe.takeCarried();
      for (let i = 0; i < sent; i++) await this.deps.quota.record(out.hash, out.endpoint);
      if (remaining !== null) await this.deps.quota.observe(out.hash, { remaining });
    } finally {
      probing.probe.confirm();
    }
  }

  /**
   * The upstream refused the key (401): every request of the key waiting at the gate is refused, the
   * rest of this operation's requests end wherever they wait (queue, limiter, admission), the key's
   * later requests are refused for a while without asking, and what the quota holds for it goes.
   */
  async #refused(out: Outgoing, error: UpstreamError): Promise<void> {
    this.#keyRefused ??= error;
    if (out.probing) out.probing.probe.refuse(error);
    else this.deps.keys.refuse(out.hash, error);
    if (this.#controller && !this.#controller.signal.aborted) this.#controller.abort(error);
    out.probing = null;
    await this.deps.quota.forget(out.hash, out.endpoint);
  }
}
