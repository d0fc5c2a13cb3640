import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { endpointOf, routeApi, type ApiContext, type ApiResult } from './api.ts';
import { ApiFailure } from './errors.ts';
import { DEFAULT_GENERATE, generate, type GenerateOptions } from './generate.ts';
import { DEMO_KEYS } from './keys.ts';
import { LiveMode, type LiveOptions } from './live.ts';
import { openApiYaml } from './openapi.ts';
import type { ApiKey, JsonObject } from './model.ts';
import { Random } from './random.ts';
import { DEFAULT_RATE_LIMIT, RateLimiter, type RateLimitOptions } from './rate-limit.ts';
import { RequestStats } from './stats.ts';
import type { DataStore } from './store.ts';

export const FAULT_MODES = ['http500', 'http502', 'http503', 'html502', 'drop', 'stall'] as const;
export type FaultMode = (typeof FAULT_MODES)[number];

export interface FaultOptions {
  /** The fraction of `/api/v3` requests (0–1) answered with a fault instead. */
  rate: number;
  /** Which faults to draw from, equally likely. */
  modes: readonly FaultMode[];
  /** How long a stalled request is held before its connection is dropped. */
  stallMs: number;
}

export interface SimulatorOptions extends GenerateOptions {
  port: number;
  host: string;
  /** Added to every `/api/v3` response. */
  latencyMs: number;
  faults: FaultOptions;
  rateLimit: RateLimitOptions;
  /** Keys besides the demo keys. */
  extraKeys: readonly ApiKey[];
  /** The largest request body accepted, in bytes. */
  maxBodyBytes: number;
  /** Live mode (data appended and rooms started and ended over time); null for off. Unset options take `DEFAULT_LIVE`. */
  live: Partial<LiveOptions> | null;
}

export const DEFAULT_SIMULATOR: SimulatorOptions = {
  ...DEFAULT_GENERATE,
  port: 0,
  host: '127.0.0.1',
  latencyMs: 0,
  faults: { rate: 0, modes: FAULT_MODES, stallMs: 30_000 },
  rateLimit: DEFAULT_RATE_LIMIT,
  extraKeys: [],
  maxBodyBytes: 1_048_576,
  live: null,
};

export interface Simulator {
  /** The API base, ending in `/api/v3`. */
  url: string;
  /** The server's origin, where the `/_admin` routes live. */
  origin: string;
  port: number;
  stats: RequestStats;
  store: DataStore;
  rateLimiter: RateLimiter;
  /** The live mode's controls (tick, pause, resume, stop, counts, onChange), or null when it is off. */
  live: LiveMode | null;
  /** Changes latency and faults while running (tests flip them on and off). */
  configure(change: { latencyMs?: number; faults?: Partial<FaultOptions> }): void;
  close(): Promise<void>;
}

const HTML_502 =
  '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n';

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function errorEnvelope(code: string, message: string, details: JsonObject = {}): JsonObject {
  return { status: 'error', error: { code, message, details } };
}

function readBody(req: IncomingMessage, max: number, seen: (body: unknown) => void): () => Promise<unknown> {
  let parsed: Promise<unknown> | null = null;
  return () => {
    parsed ??= new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > max) {
          reject(new ApiFailure(413, 'PAYLOAD_TOO_LARGE', `The request body exceeds ${max} bytes`, { maxBytes: max }));
          req.resume();
          return;
        }
        chunks.push(chunk);
      });
      req.on('error', reject);
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (text.trim() === '')
          return reject(new ApiFailure(400, 'VALIDATION_ERROR', 'The request body is empty; a JSON object is required'));
        try {
          const body: unknown = JSON.parse(text);
          seen(body);
          resolve(body);
        } catch {
          reject(new ApiFailure(400, 'VALIDATION_ERROR', 'The request body is not valid JSON'));
        }
      });
    });
    return parsed;
  };
}

/** The `X-Organization-Id` header of a request (not a secret: tests assert that it was forwarded). */
function organizationOf(req: IncomingMessage): string | null {
  const value = req.headers['x-organization-id'];
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

/** Starts the HyperStudy API simulator. Port 0 picks a free port. */
export async function startSimulator(overrides: Partial<SimulatorOptions> = {}): Promise<Simulator> {
  const options: SimulatorOptions = {
    ...DEFAULT_SIMULATOR,
    ...overrides,
    faults: { ...DEFAULT_SIMULATOR.faults, ...overrides.faults },
    rateLimit: { ...DEFAULT_SIMULATOR.rateLimit, ...overrides.rateLimit },
  };
  const store = generate(options);
  const keys = new Map<string, ApiKey>([...DEMO_KEYS, ...options.extraKeys].map((k) => [k.key, k]));
  const stats = new RequestStats();
  const rateLimiter = new RateLimiter(options.rateLimit);
  const faultRng = new Random(options.seed ^ 0x5eed);
  const ctx: ApiContext = { store, rng: new Random(options.seed ^ 0xc0ffee), now: Date.now };
  let latencyMs = options.latencyMs;
  const faults: FaultOptions = { ...options.faults };
  const stalled = new Set<Socket>();
  /** The OpenAPI description, generated on its first request. */
  let openapi: string | null = null;
  const timers = new Set<NodeJS.Timeout>();

  const delay = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(() => (timers.delete(t), resolve()), ms);
      timers.add(t);
    });

  async function handleApi(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    record: (status: number, fault?: string) => void,
    seen: (body: unknown) => void,
  ): Promise<void> {
    const segments = url.pathname.slice('/api/v3'.length).split('/').filter(Boolean);
    if (latencyMs > 0) await delay(latencyMs);

    if (faults.rate > 0 && faultRng.next() < faults.rate && faults.modes.length > 0) {
      const mode = faultRng.pick(faults.modes);
      if (mode === 'drop') {
        record(0, mode);
        req.socket.destroy();
        return;
      }
      if (mode === 'stall') {
        record(0, mode);
        stalled.add(req.socket);
        await delay(faults.stallMs);
        stalled.delete(req.socket);
        req.socket.destroy();
        return;
      }
      if (mode === 'html502') {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end(HTML_502);
        return record(502, mode);
      }
      const status = Number(mode.slice(4));
      const message = status === 503 ? 'Service temporarily unavailable' : status === 502 ? 'Bad gateway' : 'An unexpected error occurred';
      sendJson(res, status, errorEnvelope('INTERNAL_SERVER_ERROR', message));
      return record(status, mode);
    }

    if (segments.length === 1 && segments[0] === 'health') {
      sendJson(res, 200, { status: 'healthy', version: '3.0.0', timestamp: new Date().toISOString() });
      return record(200);
    }
    if (segments.length === 1 && segments[0] === 'openapi.yaml' && (req.method === 'GET' || req.method === 'HEAD')) {
      openapi ??= openApiYaml();
      res.writeHead(200, { 'content-type': 'application/yaml; charset=utf-8', 'content-length': Buffer.byteLength(openapi) });
      res.end(req.method === 'HEAD' ? undefined : openapi);
      return record(200);
    }

    const headerKey = req.headers['x-api-key'];
    const keyText = Array.isArray(headerKey) ? headerKey[0] : headerKey;
    const key = keyText === undefined ? undefined : keys.get(keyText);
    if (!key) {
      const bearer = keyText === undefined && /^bearer /i.test(req.headers.authorization ?? '');
      // The sources disagree on the code: the docs say UNAUTHORIZED, the SDK's fixture for a bad key
      // AUTHENTICATION_ERROR. A missing key answers the former, an invalid one the latter.
      if (keyText === undefined) {
        const message = bearer
          ? 'Send the API key in the X-API-Key header, not Authorization'
          : 'API key required: send it in the X-API-Key header';
        sendJson(res, 401, errorEnvelope('UNAUTHORIZED', message));
      } else sendJson(res, 401, errorEnvelope('AUTHENTICATION_ERROR', 'Invalid or expired API key'));
      return record(401);
    }

    let result: ApiResult;
    const headers: Record<string, string> = {};
    try {
      if (options.rateLimit.enabled) {
        const decision = rateLimiter.take(key.name, endpointOf(req.method ?? 'GET', segments));
        if (!decision.ok) {
          throw new ApiFailure(
            429,
            'RATE_LIMIT_EXCEEDED',
            `Rate limit exceeded: ${decision.limit} requests per ${decision.window}`,
            {
              limit: decision.limit,
              window: decision.window,
              retryAfter: decision.retryAfter,
            },
            { 'retry-after': String(decision.retryAfter) },
          );
        }
        headers['x-ratelimit-limit'] = String(decision.limit);
        headers['x-ratelimit-remaining'] = String(decision.remaining);
        headers['x-ratelimit-reset'] = String(decision.resetAt);
      }
      result = await routeApi(ctx, {
        method: req.method ?? 'GET',
        segments,
        params: url.searchParams,
        body: readBody(req, options.maxBodyBytes, seen),
        key,
        organizationId: organizationOf(req),
      });
    } catch (error) {
      if (error instanceof ApiFailure) {
        sendJson(res, error.status, errorEnvelope(error.code, error.message, error.details), { ...headers, ...error.headers });
        return record(error.status);
      }
      sendJson(res, 500, errorEnvelope('INTERNAL_SERVER_ERROR', 'An unexpected error occurred'));
      return record(500);
    }
    if ('raw' in result) {
      res.writeHead(result.status, {
        ...headers,
        ...result.headers,
        'content-type': result.contentType,
        'content-length': Buffer.byteLength(result.raw),
      });
      res.end(result.raw);
    } else {
      sendJson(res, result.status, result.envelope, { ...headers, ...result.headers });
    }
    record(result.status);
  }

  function handleAdmin(req: IncomingMessage, res: ServerResponse, url: URL): void {
    if (url.pathname === '/_admin/stats' && req.method === 'GET') return sendJson(res, 200, stats);
    if (url.pathname === '/_admin/reset' && req.method === 'POST') {
      stats.reset();
      rateLimiter.reset();
      return sendJson(res, 200, { reset: true });
    }
    sendJson(res, 404, errorEnvelope('NOT_FOUND', 'Admin routes: GET /_admin/stats, POST /_admin/reset'));
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://simulator.invalid');
    if (url.pathname.startsWith('/_admin/')) return handleAdmin(req, res, url);
    if (url.pathname !== '/api/v3' && !url.pathname.startsWith('/api/v3/')) {
      return sendJson(res, 404, errorEnvelope('NOT_FOUND', 'The API lives under /api/v3'));
    }
    const keyText = req.headers['x-api-key'];
    const knownKey = typeof keyText === 'string' ? keys.get(keyText) : undefined;
    const startedAt = stats.now();
    const requestId = req.headers['x-request-id'];
    stats.begin();
    let done = false;
    let body: unknown = null;
    const record = (status: number, fault?: string): void => {
      if (done) return;
      done = true;
      stats.end({
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.search.slice(1),
        key: knownKey?.name ?? (keyText === undefined ? 'none' : 'unknown'),
        status,
        fault: fault ?? null,
        requestId: typeof requestId === 'string' ? requestId : null,
        organizationId: organizationOf(req),
        body,
        startedAt,
        endedAt: stats.now(),
      });
    };
    handleApi(req, res, url, record, (parsed) => (body = parsed)).catch(() => {
      if (!res.headersSent) sendJson(res, 500, errorEnvelope('INTERNAL_SERVER_ERROR', 'An unexpected error occurred'));
      record(500);
    });
  });
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  // Created once the server listens, so that a failed listen leaves no timer behind; bad live options close it.
  let live: LiveMode | null = null;
  try {
    if (options.live !== null) live = new LiveMode(store, options.seed, options.live, options.participantsPerRoom);
  } catch (error) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw error;
  }
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const origin = `http://${host}:${port}`;

  return {
    url: `${origin}/api/v3`,
    origin,
    port,
    stats,
    store,
    rateLimiter,
    live,
    configure(change) {
      if (change.latencyMs !== undefined) latencyMs = change.latencyMs;
      Object.assign(faults, change.faults);
    },
    close: () =>
      new Promise<void>((resolve) => {
        live?.stop();
        for (const t of timers) clearTimeout(t);
        for (const socket of stalled) socket.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
