import type { Envelope, UpstreamClient, UpstreamRequest } from './client.ts';
import { UpstreamError } from './errors.ts';
import { endpointOf, requiredScope } from './routes.ts';
import { keyHash, type QuotaState, type QuotaTracker, type ScopeMirror, type SharedReads } from './shared.ts';

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
}

/**
 * The upstream as one GraphQL operation sees it: bound to the caller's key (and only theirs), it
 * answers identical GETs once, joins other operations' identical in-flight GETs, honours what the
 * upstream said about the key's scopes and quota, and counts and bounds what the operation costs.
 */
export class UpstreamSession {
  readonly #memo = new Map<string, Promise<Envelope>>();
  readonly #cost = { requests: 0, pages: 0, cacheHits: 0, coalesced: 0, failed: 0 };
  readonly #hash: string | null;

  constructor(
    private readonly deps: SessionDeps,
    private readonly key: string | null,
    readonly requestId: string,
  ) {
    this.#hash = key === null ? null : keyHash(key);
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
      throw new UpstreamError(`This operation has spent its budget of ${this.deps.budget} upstream requests`, {
        code: 'UPSTREAM_BUDGET_EXCEEDED',
        status: null,
        details: { budget: this.deps.budget },
      });
    }
    if (req.method === 'GET') this.deps.scopes.check(hash, requiredScope(req.path));
    this.deps.quota.take(hash, endpointOf(req.method, req.path));
    this.#cost.requests++;
    if (kind === 'page') this.#cost.pages++;
    try {
      const envelope = await this.deps.client.send({ ...req, key: this.key, requestId: this.requestId });
      if (envelope.rateLimit) this.deps.quota.observe(hash, { remaining: envelope.rateLimit.remaining });
      return envelope;
    } catch (error) {
      this.#cost.failed++;
      if (error instanceof UpstreamError) {
        this.deps.scopes.learn(hash, error);
        if (error.code === 'RATE_LIMITED') this.deps.quota.observe(hash, { retryAfter: error.retryAfter ?? 1 });
      }
      throw error;
    }
  }
}
