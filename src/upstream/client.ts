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
import { parseEnvelope, type Envelope, type UpstreamFailureNote } from './envelope.ts';
import { UpstreamError } from './errors.ts';
import { endpointOf } from './routes.ts';

export { parseRetryAfter, RETRY_AFTER_MAX_SECONDS, type Envelope } from './envelope.ts';

export interface UpstreamRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Below the base URL, starting with `/` (built by `routes.ts`). */
  path: string;
  query?: URLSearchParams;
  body?: unknown;
  /** The caller's key, forwarded as X-API-Key; null only for the keyless `/health`. */
  key: string | null;
  requestId?: string;
  /** Aborts the request and its retries (the operation's deadline). */
  signal?: AbortSignal;
  /** Told of each retry, for the operation's cost and the metrics. */
  onRetry?: (reason: UpstreamError) => void;
  /** The operation's trace context: each attempt becomes a child span. */
  trace?: Context;
}

export interface ResilienceOptions {
  /** Attempts after the first for idempotent requests (GET, PUT) on 5xx, network errors and timeouts. */
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
  /** The largest upstream body read, in bytes; a longer one is cut off and fails UPSTREAM_ERROR. */
  maxBodyBytes?: number;
  /** Replaces the keep-alive pool (tests pass undici's MockAgent). */
  dispatcher?: Dispatcher;
  resilience?: ResilienceOptions;
  /** Told of every attempt (route template, status or `network`/`timeout`, seconds) and retry, for metrics. */
  observer?: { request(route: string, status: string, seconds: number): void; retry(route: string): void };
  /** Told what an upstream error answer said (scrubbed), for a debug log; callers never see a 5xx's text. */
  onFailureNote?: (route: string, note: UpstreamFailureNote) => void;
  /** Traces each attempt (no-op unless tracing is configured). */
  tracer?: Tracer;
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;

class BodyTooLarge extends Error {
  constructor(readonly status: number) {
    super('body too large');
  }
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
  readonly #onFailureNote: UpstreamClientOptions['onFailureNote'];
  readonly #maxBodyBytes: number;

  constructor(options: UpstreamClientOptions) {
    this.#observer = options.observer;
    this.#onFailureNote = options.onFailureNote;
    this.#maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
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
   * Sends a request through the circuit breaker; idempotent requests (GET, PUT) are retried on
   * outages with backoff. POST is never retried blindly: a batch that may have been recorded must be
   * reported, not sent twice. Throws UpstreamError for every failure.
   */
  async send(req: UpstreamRequest): Promise<Envelope> {
    const once = (): Promise<Envelope> => this.#breaker.execute(() => this.#sendOnce(req));
    const idempotent = req.method === 'GET' || req.method === 'PUT';
    try {
      if (!idempotent || this.#resilience.retries === 0) return await once();
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
    if (req.requestId) headers['x-request-id'] = req.requestId;
    let body: string | undefined;
    if (req.body !== undefined) {
      body = JSON.stringify(req.body);
      headers['content-type'] = 'application/json';
    }
    let response: Dispatcher.ResponseData;
    let text: string;
    let bytes: number;
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
      ({ text, bytes } = await this.#readBody(response));
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        observe('body_too_large');
        throw new UpstreamError(
          `The HyperStudy API's answer exceeds ${this.#maxBodyBytes} bytes (UPSTREAM_MAX_BODY_BYTES); it was not read`,
          {
            code: 'UPSTREAM_ERROR',
            // The upstream answered (this is no outage, and a retry would read the same).
            status: error.status,
            details: { reason: 'body too large', maxBytes: this.#maxBodyBytes },
          },
        );
      }
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
    return parseEnvelope(response.statusCode, response.headers, text, bytes, (note) => this.#onFailureNote?.(route, note));
  }

  /** Reads a body up to the limit; past it (declared or streamed), stops reading and closes the connection. */
  async #readBody(response: Dispatcher.ResponseData): Promise<{ text: string; bytes: number }> {
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > this.#maxBodyBytes) {
      response.body.destroy();
      throw new BodyTooLarge(response.statusCode);
    }
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > this.#maxBodyBytes) {
        response.body.destroy();
        throw new BodyTooLarge(response.statusCode);
      }
      chunks.push(chunk);
    }
    return { text: Buffer.concat(chunks, bytes).toString('utf8'), bytes };
  }

  /** Closes the pool once its in-flight requests end; `force` aborts them. */
  async close(force = false): Promise<void> {
    if (!this.#ownsDispatcher) return;
    if (force) await this.#dispatcher.destroy();
    else await this.#dispatcher.close();
  }
}
