import type { Envelope, UpstreamClient, UpstreamRequest } from './client.ts';
import { UpstreamError } from './errors.ts';

/** What one GraphQL operation cost upstream, reported in `extensions.upstream`. */
export interface UpstreamCost {
  /** HTTP requests sent upstream. */
  requests: number;
  /** Of those, data listing pages. */
  pages: number;
  /** Identical GETs answered from this operation's memo instead of the upstream. */
  cacheHits: number;
  /** Requests that ended in an error. */
  failed: number;
  /** The upstream's last reported hourly budget for this key, when it sent one. */
  rateLimit: { limit: number; remaining: number; reset: number } | null;
}

export const MISSING_KEY_MESSAGE = 'An API key is required: send it in the X-API-Key header (or Authorization: Bearer <key>)';

/**
 * The upstream as one GraphQL operation sees it: bound to the caller's key (and only theirs), it
 * answers identical GETs once and counts what the operation cost.
 */
export class UpstreamSession {
  readonly #memo = new Map<string, Promise<Envelope>>();
  readonly #cost: UpstreamCost = { requests: 0, pages: 0, cacheHits: 0, failed: 0, rateLimit: null };

  constructor(
    private readonly client: UpstreamClient,
    private readonly key: string | null,
    readonly requestId: string,
  ) {}

  get cost(): UpstreamCost {
    return { ...this.#cost };
  }

  /** A GET, sent once per operation for the same path and query. */
  get(path: string, query?: URLSearchParams, kind: 'page' | 'object' = 'object'): Promise<Envelope> {
    const id = `${path}?${query?.toString() ?? ''}`;
    const known = this.#memo.get(id);
    if (known) {
      this.#cost.cacheHits++;
      return known;
    }
    const pending = this.send({ method: 'GET', path, query }, kind);
    this.#memo.set(id, pending);
    return pending;
  }

  /** Any request, never memoised (writes). */
  async send(req: Omit<UpstreamRequest, 'key' | 'requestId'>, kind: 'page' | 'object' = 'object'): Promise<Envelope> {
    if (this.key === null) throw new UpstreamError(MISSING_KEY_MESSAGE, { code: 'UNAUTHENTICATED', status: null });
    this.#cost.requests++;
    if (kind === 'page') this.#cost.pages++;
    try {
      const envelope = await this.client.send({ ...req, key: this.key, requestId: this.requestId });
      if (envelope.rateLimit) this.#cost.rateLimit = envelope.rateLimit;
      return envelope;
    } catch (error) {
      this.#cost.failed++;
      throw error;
    }
  }
}
