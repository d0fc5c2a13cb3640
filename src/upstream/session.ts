import { setMaxListeners } from 'node:events';
import type { Context } from '@opentelemetry/api';
import type { Envelope, UpstreamClient, UpstreamRequest } from './client.ts';
import { UpstreamError } from './errors.ts';
import { endpointOf, requiredScope } from './routes.ts';
import type { QuotaState, QuotaTracker } from './quota.ts';
import { keyHash, type ScopeMirror, type SharedReads } from './shared.ts';

/** What one GraphQL operation cost upstream, reported in `extensions.upstream`. */
export interface UpstreamCost {
  /** HTTP requests this operation sent upstream. */
  requests: number;
  /** Of those, data listing pages. */
  pages: number;
  /** GETs answered without a request: repeated within the operation, or fresh in the shared cache. */
  cacheHits: number;
  /** GETs that joined an identical request another operation of the same key had in flight. */
  coalesced: number;
  /** Of the requests, repeats after an outage or a short Retry-After. */
  retries: number;
  /** Requests that ended in an error. */
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
  scopes: ScopeMirror;
  quota: QuotaTracker;
  /** Upstream requests one operation may send. */
  budget: number;
  /** How long one operation may wait for the upstream in all, in ms. */
  deadlineMs: number;
  observer?: { shared(how: 'cached' | 'coalesced'): void; budgetRefused(stage: 'during'): void };
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * The upstream as one GraphQL operation sees it: bound to the caller's key (and only theirs), it
 * answers identical GETs once, joins other operations' identical in-flight GETs, honours what the
 * upstream said about the key's scopes and quota, and counts and bounds what the operation costs.
 */
export class UpstreamSession {
  readonly #memo = new Map<string, Promise<Envelope>>();
  readonly #cost = { requests: 0, pages: 0, cacheHits: 0, coalesced: 0, retries: 0, failed: 0 };
  readonly #hash: string | null;
  readonly #deadline: AbortSignal;
  /** The operation's trace context, set when its span starts. */
  trace: Context | undefined;

  constructor(
    private readonly deps: SessionDeps,
    private readonly key: string | null,
    readonly requestId: string,
  ) {
    this.#hash = key === null ? null : keyHash(key);
    this.#deadline = AbortSignal.timeout(deps.deadlineMs);
    // Every request of the operation (up to its budget, several at once) listens to this one signal.
    setMaxListeners(Math.max(10, deps.budget * 2), this.#deadline);
  }

  get cost(): UpstreamCost {
    return {
      ...this.#cost,
      budgetLeft: Math.max(0, this.deps.budget - this.#cost.requests),
      rateLimit: this.#hash === null ? null : this.deps.quota.state(this.#hash),
    };
  }

  /** A GET: sent once per operation, shared with identical in-flight GETs of the same key. */
  get(path: string, query?: URLSearchParams, kind: 'page' | 'object' = 'object'): Promise<Envelope> {
    const url = `${path}?${query?.toString() ?? ''}`;
    const known = this.#memo.get(url);
    if (known) {
      this.#cost.cacheHits++;
      return known;
    }
    let pending: Promise<Envelope>;
    if (this.#hash === null) {
      pending = Promise.reject(new UpstreamError(MISSING_KEY_MESSAGE, { code: 'UNAUTHENTICATED', status: null }));
    } else {
      const shared = this.deps.shared.get(this.#hash, url, () => this.#send({ method: 'GET', path, query }, kind));
      if (shared.how === 'coalesced') this.#cost.coalesced++;
      if (shared.how === 'cached') this.#cost.cacheHits++;
      if (shared.how !== 'sent') this.deps.observer?.shared(shared.how);
      pending = shared.envelope;
    }
    this.#memo.set(url, pending);
    return pending;
  }

  /** A write (or any request that must not be shared); it makes the key's cached answers stale. */
  async send(req: Omit<UpstreamRequest, 'key' | 'requestId'>): Promise<Envelope> {
    try {
      return await this.#send(req, 'object');
    } finally {
      if (this.#hash !== null && req.method !== 'GET') this.deps.shared.forget(this.#hash);
    }
  }

  async #send(req: Omit<UpstreamRequest, 'key' | 'requestId'>, kind: 'page' | 'object'): Promise<Envelope> {
    const hash = this.#hash;
    if (this.key === null || hash === null) throw new UpstreamError(MISSING_KEY_MESSAGE, { code: 'UNAUTHENTICATED', status: null });
    if (this.#cost.requests >= this.deps.budget) {
      this.deps.observer?.budgetRefused('during');
      throw new UpstreamError(`This operation has spent its budget of ${this.deps.budget} upstream requests`, {
        code: 'UPSTREAM_BUDGET_EXCEEDED',
        status: null,
        details: { budget: this.deps.budget },
      });
    }
    if (req.method === 'GET') this.deps.scopes.check(hash, requiredScope(req.path));
    const endpoint = endpointOf(req.method, req.path);
    const onRetry = (): void => {
      this.#cost.requests++;
      this.#cost.retries++;
      this.deps.quota.note(hash, endpoint);
    };
    for (let attempt = 0; ; attempt++) {
      const wait = this.deps.quota.admit(hash, endpoint);
      if (wait > 0) await sleep(wait, this.#deadline);
      this.deps.quota.take(hash, endpoint);
      if (attempt === 0) {
        this.#cost.requests++;
        if (kind === 'page') this.#cost.pages++;
      } else onRetry();
      try {
        const envelope = await this.deps.client.send({
          ...req,
          key: this.key,
          requestId: this.requestId,
          signal: this.#deadline,
          onRetry,
          trace: this.trace,
        });
        if (envelope.rateLimit) this.deps.quota.observe(hash, { remaining: envelope.rateLimit.remaining });
        return envelope;
      } catch (error) {
        if (error instanceof UpstreamError) {
          // A key the upstream refuses has no quota to track: random keys leave no state behind.
          if (error.status === 401) this.deps.quota.forget(hash);
          this.deps.scopes.learn(hash, error);
          // A 429 makes every operation of the key wait; a short wait is waited out once, then retried.
          if (error.code === 'RATE_LIMITED' && error.status === 429) {
            this.deps.quota.observe(hash, { retryAfter: error.retryAfter ?? 1 });
            if (attempt === 0 && req.method === 'GET' && this.deps.quota.waitable(error.retryAfter ?? 1)) continue;
          }
        }
        this.#cost.failed++;
        throw error;
      }
    }
  }
}
