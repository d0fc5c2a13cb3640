import { setTimeout as delay } from 'node:timers/promises';
import { SpanKind, SpanStatusCode, type Context, type Tracer } from '@opentelemetry/api';
import { Pool, type Dispatcher } from 'undici';
import { Breakers, type CircuitState, type Refusal, type Ticket, type Verdict } from './breaker.ts';
import { parseEnvelope, type Envelope, type UpstreamFailureNote } from './envelope.ts';
import { abortError, UpstreamError } from './errors.ts';
import { BodyTooLarge, exchange, withBody, type Exchange } from './exchange.ts';
import { endpointOf } from './routes.ts';
import { FairQueue } from './scheduler.ts';
import { keyHash } from '../state/shared-reads.ts';

export { parseRetryAfter, RETRY_AFTER_MAX_SECONDS, type Envelope } from './envelope.ts';

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
  /** Aborts the request and its retries (the operation's deadline, or its end). */
  signal?: AbortSignal;
  /** Told of each retry as it is sent, for the operation's cost and the metrics. */
  onRetry?: (reason: UpstreamError) => void;
  /**
   * Runs right before each attempt is sent (after the queue and the circuit let it through), with the
   * attempt number from 0 and the previous attempt's failure. It may throw to stop: nothing is sent.
   */
  beforeAttempt?: (attempt: number, previous: UpstreamError | null) => void | Promise<void>;
  /** Whose request it is, for fairness and the per-key circuit (default: a hash of `key`). */
  partition?: string;
  /** The operation's trace context: each attempt becomes a child span. */
  trace?: Context;
}

export interface ResilienceOptions {
  /** Attempts after the first for reads (GET) on 5xx, network errors and timeouts; writes are never retried. */
  retries: number;
  /** Exponential backoff with full jitter: the first delay's ceiling and the largest delay, in ms. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Consecutive outage failures (5xx, network, timeout) that open a key's circuit. */
  breakerThreshold: number;
  /** How long an open circuit fails fast before letting a request try again, in ms. */
  breakerHalfOpenMs: number;
  /** Distinct keys among consecutive outages that open the shared circuit (the upstream as a whole). */
  breakerMinKeys: number;
}

/** An outage of the upstream (not an answer about the request): what retries and the breakers act on. */
export const isOutage = (error: unknown): boolean =>
  error instanceof UpstreamError &&
  (error.code === 'UPSTREAM_TIMEOUT' || (error.code === 'UPSTREAM_ERROR' && (error.status === null || error.status >= 500)));

export interface UpstreamClientOptions {
  /** The upstream base including `/api/v3`. */
  apiUrl: string;
  timeoutMs: number;
  /** Keep-alive connections, and so requests in flight at once. */
  connections: number;
  /** Requests of one key in flight at once (default: all connections). */
  keyConcurrency?: number;
  /** The largest upstream body read, in bytes; a longer one is cut off and fails UPSTREAM_ERROR. */
  maxBodyBytes: number;
  /** Keys whose circuit state is held at most. */
  maxKeys: number;
  /** Replaces the keep-alive pool (tests pass undici's MockAgent). */
  dispatcher?: Dispatcher;
  resilience: ResilienceOptions;
  /** Told of every attempt (route template, status or `network`/`timeout`, seconds) and retry, for metrics. */
  observer?: { request(route: string, status: string, seconds: number): void; retry(route: string): void };
  /** Told what an upstream error answer said (scrubbed), for a debug log; callers never see a 5xx's text. */
  onFailureNote?: (route: string, note: UpstreamFailureNote) => void;
  /** Traces each attempt (no-op unless tracing is configured). */
  tracer?: Tracer;
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * The REST client: one keep-alive undici pool for every upstream call behind a fair queue, envelope
 * parsing, bounded bodies, retries, per-key and shared circuit breakers, and errors with stable codes.
 * It knows HTTP and the envelope; it knows nothing of GraphQL.
 */
export class UpstreamClient {
  readonly #dispatcher: Dispatcher;
  readonly #origin: string;
  readonly #host: string;
  readonly #basePath: string;
  readonly #ownsDispatcher: boolean;
  readonly #breakers: Breakers;
  readonly #queue: FairQueue;
  readonly #resilience: ResilienceOptions;
  readonly #maxBodyBytes: number;
  readonly #options: UpstreamClientOptions;

  constructor(options: UpstreamClientOptions) {
    this.#options = options;
    this.#resilience = options.resilience;
    this.#maxBodyBytes = options.maxBodyBytes;
    const { breakerThreshold, breakerHalfOpenMs, breakerMinKeys } = options.resilience;
    this.#breakers = new Breakers({ breakerThreshold, breakerHalfOpenMs, breakerMinKeys, maxKeys: options.maxKeys });
    this.#queue = new FairQueue({ capacity: options.connections, perPartition: options.keyConcurrency ?? options.connections });
    const url = new URL(options.apiUrl);
    this.#origin = url.origin;
    this.#host = url.hostname;
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

  /** The shared circuit: `open` while the upstream as a whole is down and requests fail fast. */
  get circuit(): CircuitState {
    return this.#breakers.state;
  }

  /** Keys whose own circuit is open (their requests keep failing). */
  get openKeyCircuits(): number {
    return this.#breakers.openKeys;
  }

  /** Requests in flight and waiting in the fair queue. */
  get load(): { active: number; waiting: number } {
    return this.#queue.load;
  }

  /**
   * Sends a request; reads (GET) are retried on outages with backoff. Writes are never retried: one that
   * may have been applied (a batch of events, a deployment that starts paid agent rooms) must be
   * reported, not sent twice. Each attempt
   * waits its turn in the fair queue and passes the circuits; one refused there is not sent. Throws
   * UpstreamError for every failure.
   */
  async send(req: UpstreamRequest): Promise<Envelope> {
    const partition = req.partition ?? (req.key === null ? '(keyless)' : keyHash(req.key));
    const attempts = req.method === 'GET' ? 1 + this.#resilience.retries : 1;
    const route = endpointOf(req.method, req.path);
    let previous: UpstreamError | null = null;
    for (let attempt = 0; ; attempt++) {
      try {
        if (attempt > 0) await delay(this.#backoff(attempt), undefined, { signal: req.signal });
      } catch (error) {
        throw req.signal ? abortError(req.signal, error) : error;
      }
      let release: () => void;
      try {
        release = await this.#queue.acquire(partition, req.signal);
      } catch (error) {
        throw req.signal ? abortError(req.signal, error) : error;
      }
      let ticket: Ticket;
      try {
        const pass = this.#breakers.admit(partition);
        if (typeof pass === 'string') throw previous ?? this.#refused(pass);
        ticket = pass;
        try {
          await req.beforeAttempt?.(attempt, previous);
        } catch (error) {
          this.#breakers.record(ticket, 'neutral');
          throw error;
        }
      } catch (error) {
        release();
        throw error;
      }
      if (previous) {
        this.#options.observer?.retry(route);
        req.onRetry?.(previous);
      }
      try {
        const envelope = await this.#sendOnce(req, route);
        this.#breakers.record(ticket, 'answered');
        return envelope;
      } catch (caught) {
        const error =
          caught instanceof UpstreamError
            ? caught
            : new UpstreamError('The HyperStudy API request failed', { code: 'UPSTREAM_ERROR', status: null, cause: caught });
        const aborted = req.signal?.aborted === true;
        const verdict: Verdict = aborted ? 'neutral' : isOutage(error) ? 'outage' : 'answered';
        this.#breakers.record(ticket, verdict);
        if (verdict !== 'outage' || attempt + 1 >= attempts) throw error;
        previous = error;
      } finally {
        release();
      }
    }
  }

  /**
   * Asks the upstream's `/health`, whatever the circuits say (the probe is the shared circuit's trial):
   * an answer closes the shared circuit, an outage counts against it. Resolves whether it is healthy.
   */
  async probe(path: string, signal?: AbortSignal): Promise<boolean> {
    let release: () => void;
    try {
      release = await this.#queue.acquire('(health probe)', signal);
    } catch {
      return false;
    }
    try {
      await this.#sendOnce({ method: 'GET', path, key: null, signal }, endpointOf('GET', path));
      this.#breakers.probed(true);
      return true;
    } catch (error) {
      if (isOutage(error) && !signal?.aborted) this.#breakers.probed(false);
      return false;
    } finally {
      release();
    }
  }

  #backoff(attempt: number): number {
    const { retryBaseMs, retryMaxMs } = this.#resilience;
    return Math.random() * Math.min(retryMaxMs, retryBaseMs * 2 ** Math.max(0, attempt - 1));
  }

  #refused(which: Refusal): UpstreamError {
    return new UpstreamError(
      which === 'upstream'
        ? 'The HyperStudy API is unavailable; requests fail fast until it recovers'
        : "This key's requests to the HyperStudy API keep failing; they fail fast for a while",
      { code: 'UPSTREAM_ERROR', status: null, details: { circuit: 'open', scope: which } },
    );
  }

  async #sendOnce(req: UpstreamRequest, route: string): Promise<Envelope> {
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
    const started = performance.now();
    const span = this.#options.tracer?.startSpan(
      `HTTP ${route}`,
      { kind: SpanKind.CLIENT, attributes: { 'http.request.method': req.method, 'url.template': route, 'server.address': this.#host } },
      req.trace,
    );
    const observe = (status: string): void => {
      this.#options.observer?.request(route, status, (performance.now() - started) / 1000);
      span?.setAttribute('http.response.status_code', status);
      if (!/^2/.test(status)) span?.setStatus({ code: SpanStatusCode.ERROR, message: status });
      span?.end();
    };
    let response: Exchange;
    try {
      response = await exchange(
        this.#dispatcher,
        { origin: this.#origin, path: `${this.#basePath}${req.path}${query}`, method: req.method, headers, body },
        this.#maxBodyBytes,
        req.signal,
      );
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
      if (req.signal?.aborted) {
        observe('cancelled');
        throw abortError(req.signal, error);
      }
      const code = (error as { code?: string }).code ?? '';
      const timedOut = TIMEOUT_CODES.has(code);
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
    const { statusCode, headers: answered } = response;
    return withBody(response, (body) => parseEnvelope(statusCode, answered, body, (note) => this.#options.onFailureNote?.(route, note)));
  }

  /** Closes the pool once its in-flight requests end; `force` aborts them. */
  async close(force = false): Promise<void> {
    if (!this.#ownsDispatcher) return;
    if (force) await this.#dispatcher.destroy();
    else await this.#dispatcher.close();
  }
}
