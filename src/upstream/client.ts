import {
  BrokenCircuitError,
  circuitBreaker,
  CircuitState,
  ConsecutiveBreaker,
  handleWhen,
  retry,
  TaskCancelledError,
  type IBackoff,
  type IBackoffFactory,
  type IRetryBackoffContext,
} from 'cockatiel';
import { SpanKind, SpanStatusCode, type Context, type Tracer } from '@opentelemetry/api';
import { Pool, type Dispatcher } from 'undici';
import { codeForStatus, UpstreamError } from './errors.ts';
import { endpointOf } from './routes.ts';

/** A parsed success envelope. `data` is the records (or a single object); `metadata` may be absent. */
export interface Envelope {
  data: unknown;
  metadata: Record<string, unknown>;
  /** Rate-limit headers, when the upstream sent them. */
  rateLimit: { limit: number; remaining: number; reset: number } | null;
}

export interface UpstreamRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Below the base URL, starting with `/` (built by `routes.ts`). */
  path: string;
  query?: URLSearchParams;
  body?: unknown;
  /** The caller's key, forwarded as X-API-Key; null only for the keyless `/health`. */
  key: string | null;
  /** The caller's organization, forwarded as X-Organization-Id (shared experiments), when it sent one. */
  organizationId?: string | null;
  requestId?: string;
  /** Aborts the request and its retries (the operation's deadline). */
  signal?: AbortSignal;
  /** Told of each retry, for the operation's cost and the metrics. */
  onRetry?: (reason: UpstreamError) => void;
  /** The operation's trace context: each attempt becomes a child span. */
  trace?: Context;
}

export interface ResilienceOptions {
  /** Attempts after the first for reads (GET) on 5xx, network errors and timeouts; writes are never retried. */
  retries: number;
  /** Exponential backoff with full jitter: the first delay's ceiling and the largest delay, in ms. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Consecutive outage failures (5xx, network, timeout) that open the circuit. */
  breakerThreshold: number;
  /** How long the open circuit fails fast before letting a request try again, in ms. */
  breakerHalfOpenMs: number;
}

export const DEFAULT_RESILIENCE: ResilienceOptions = {
  retries: 3,
  retryBaseMs: 100,
  retryMaxMs: 2_000,
  breakerThreshold: 10,
  breakerHalfOpenMs: 10_000,
};

/** An outage of the upstream (not an answer about the request): what retries and the breaker act on. */
export const isOutage = (error: unknown): boolean =>
  error instanceof UpstreamError &&
  (error.code === 'UPSTREAM_TIMEOUT' || (error.code === 'UPSTREAM_ERROR' && (error.status === null || error.status >= 500)));

/** Exponential backoff with full jitter. */
class JitterBackoff implements IBackoffFactory<IRetryBackoffContext<unknown>> {
  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
  ) {}

  next(context: IRetryBackoffContext<unknown>): IBackoff<IRetryBackoffContext<unknown>> {
    return {
      duration: Math.random() * Math.min(this.maxMs, this.baseMs * 2 ** Math.max(0, context.attempt - 1)),
      next: (c) => this.next(c),
    };
  }
}

export interface UpstreamClientOptions {
  /** The upstream base including `/api/v3`. */
  baseUrl: string;
  timeoutMs: number;
  connections: number;
  /** Replaces the keep-alive pool (tests pass undici's MockAgent). */
  dispatcher?: Dispatcher;
  resilience?: ResilienceOptions;
  /** Told of every attempt (route template, status or `network`/`timeout`, seconds) and retry, for metrics. */
  observer?: { request(route: string, status: string, seconds: number): void; retry(route: string): void };
  /** Traces each attempt (no-op unless tracing is configured). */
  tracer?: Tracer;
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Reads `Retry-After` as seconds (either a number or an HTTP date). */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | null {
  if (value === undefined) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

/**
 * The REST client: one keep-alive undici pool for every upstream call, envelope parsing, and errors
 * with stable codes. It knows HTTP and the envelope; it knows nothing of GraphQL.
 */
export class UpstreamClient {
  readonly #dispatcher: Dispatcher;
  readonly #origin: string;
  readonly #basePath: string;
  readonly #ownsDispatcher: boolean;
  readonly #breaker;
  readonly #resilience: ResilienceOptions;
  readonly #observer: UpstreamClientOptions['observer'];
  readonly #tracer: Tracer | undefined;

  constructor(options: UpstreamClientOptions) {
    this.#observer = options.observer;
    this.#tracer = options.tracer;
    this.#resilience = options.resilience ?? DEFAULT_RESILIENCE;
    this.#breaker = circuitBreaker(handleWhen(isOutage), {
      halfOpenAfter: this.#resilience.breakerHalfOpenMs,
      breaker: new ConsecutiveBreaker(this.#resilience.breakerThreshold),
    });
    const url = new URL(options.baseUrl);
    this.#origin = url.origin;
    this.#basePath = url.pathname.replace(/\/+$/, '');
    this.#ownsDispatcher = options.dispatcher === undefined;
    this.#dispatcher =
      options.dispatcher ??
      new Pool(this.#origin, {
        connections: options.connections,
        connectTimeout: options.timeoutMs,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
        keepAliveTimeout: 4_000,
      });
  }

  /** The shared circuit: `open` while the upstream is down and requests fail fast. */
  get circuit(): 'closed' | 'open' | 'half-open' {
    const state = this.#breaker.state;
    return state === CircuitState.Closed ? 'closed' : state === CircuitState.HalfOpen ? 'half-open' : 'open';
  }

  /**
   * Sends a request through the circuit breaker; reads (GET) are retried on outages with backoff.
   * Writes are never retried: one that may have been applied (a batch of events, a deployment that
   * starts paid agent rooms) must be reported, not sent twice. Throws UpstreamError for every failure.
   */
  async send(req: UpstreamRequest): Promise<Envelope> {
    const once = (): Promise<Envelope> => this.#breaker.execute(() => this.#sendOnce(req));
    try {
      if (req.method !== 'GET' || this.#resilience.retries === 0) return await once();
      const policy = retry(handleWhen(isOutage), {
        maxAttempts: this.#resilience.retries,
        backoff: new JitterBackoff(this.#resilience.retryBaseMs, this.#resilience.retryMaxMs),
      });
      const listener = policy.onRetry((reason) => {
        this.#observer?.retry(endpointOf(req.method, req.path));
        if ('error' in reason && reason.error instanceof UpstreamError) req.onRetry?.(reason.error);
      });
      try {
        return await policy.execute(once, req.signal);
      } finally {
        listener.dispose();
      }
    } catch (error) {
      if (error instanceof BrokenCircuitError) {
        throw new UpstreamError('The HyperStudy API is unavailable; requests fail fast until it recovers', {
          code: 'UPSTREAM_ERROR',
          status: null,
          details: { circuit: 'open' },
          cause: error,
        });
      }
      if (error instanceof TaskCancelledError || req.signal?.aborted) {
        throw new UpstreamError("The operation's deadline passed before the HyperStudy API answered", {
          code: 'UPSTREAM_TIMEOUT',
          status: null,
          cause: error,
        });
      }
      throw error;
    }
  }

  async #sendOnce(req: UpstreamRequest): Promise<Envelope> {
    const query = req.query && [...req.query.keys()].length > 0 ? `?${req.query.toString()}` : '';
    const headers: Record<string, string> = { accept: 'application/json' };
    if (req.key !== null) headers['x-api-key'] = req.key;
    if (req.organizationId) headers['x-organization-id'] = req.organizationId;
    if (req.requestId) headers['x-request-id'] = req.requestId;
    let body: string | undefined;
    if (req.body !== undefined) {
      body = JSON.stringify(req.body);
      headers['content-type'] = 'application/json';
    }
    let response: Dispatcher.ResponseData;
    let text: string;
    const started = performance.now();
    const route = endpointOf(req.method, req.path);
    const span = this.#tracer?.startSpan(
      `HTTP ${route}`,
      {
        kind: SpanKind.CLIENT,
        attributes: { 'http.request.method': req.method, 'url.template': route, 'server.address': new URL(this.#origin).hostname },
      },
      req.trace,
    );
    const observe = (status: string): void => {
      this.#observer?.request(route, status, (performance.now() - started) / 1000);
      span?.setAttribute('http.response.status_code', status);
      if (!/^2/.test(status)) span?.setStatus({ code: SpanStatusCode.ERROR, message: status });
      span?.end();
    };
    try {
      response = await this.#dispatcher.request({
        origin: this.#origin,
        path: `${this.#basePath}${req.path}${query}`,
        method: req.method,
        headers,
        body,
        signal: req.signal,
      });
      text = await response.body.text();
    } catch (error) {
      const code = (error as { code?: string }).code ?? '';
      const timedOut = TIMEOUT_CODES.has(code) || req.signal?.aborted === true;
      observe(timedOut ? 'timeout' : 'network');
      if (timedOut) {
        throw new UpstreamError('The HyperStudy API did not answer in time', { code: 'UPSTREAM_TIMEOUT', status: null, cause: error });
      }
      throw new UpstreamError('The HyperStudy API could not be reached', {
        code: 'UPSTREAM_ERROR',
        status: null,
        details: { reason: code || 'network error' },
        cause: error,
      });
    }
    observe(String(response.statusCode));
    return this.#parse(response.statusCode, response.headers, text);
  }

  #parse(status: number, headers: Record<string, string | string[] | undefined>, text: string): Envelope {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (status >= 200 && status < 300) {
      if (!isRecord(json) || (!('data' in json) && json.status !== 'healthy')) {
        throw new UpstreamError('The HyperStudy API answered with a body that is not a success envelope', {
          code: 'UPSTREAM_ERROR',
          status,
        });
      }
      const limit = Number(header(headers, 'x-ratelimit-limit'));
      const remaining = Number(header(headers, 'x-ratelimit-remaining'));
      const reset = Number(header(headers, 'x-ratelimit-reset'));
      return {
        data: json.data,
        metadata: isRecord(json.metadata) ? json.metadata : {},
        rateLimit: Number.isFinite(limit) && Number.isFinite(remaining) ? { limit, remaining, reset } : null,
      };
    }
    const error = isRecord(json) && isRecord(json.error) ? json.error : null;
    const details = isRecord(error?.details) ? error.details : {};
    // Retry-After from the header; a 429 without one may still say it in its details.
    const fromDetails = typeof details.retryAfter === 'number' && details.retryAfter > 0 ? details.retryAfter : null;
    const retryAfter = parseRetryAfter(header(headers, 'retry-after')) ?? (status === 429 ? fromDetails : null);
    const message =
      typeof error?.message === 'string' && error.message !== '' ? error.message : `The HyperStudy API answered HTTP ${status}`;
    throw new UpstreamError(message, {
      code: codeForStatus(status),
      status,
      upstreamCode: typeof error?.code === 'string' ? error.code : null,
      details,
      retryAfter,
    });
  }

  /** Closes the pool once its in-flight requests end; `force` aborts them. */
  async close(force = false): Promise<void> {
    if (!this.#ownsDispatcher) return;
    if (force) await this.#dispatcher.destroy();
    else await this.#dispatcher.close();
  }
}
