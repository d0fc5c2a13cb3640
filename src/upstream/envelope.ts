import { codeForStatus, codeForUpstreamCode, UpstreamError } from './errors.ts';
import { parseJsonBytes } from './json.ts';

/** A parsed success envelope. `data` is the records (or a single object); `metadata` may be absent. */
export interface Envelope {
  data: unknown;
  metadata: Record<string, unknown>;
  /** Rate-limit headers, when the upstream sent them. */
  rateLimit: { limit: number; remaining: number; reset: number } | null;
  /** The size of the body it came in, in bytes (what the shared cache counts). */
  bytes: number;
}

/** The upstream's rate-limit windows are an hour at most: no Retry-After is honoured beyond it. */
export const RETRY_AFTER_MAX_SECONDS = 3600;

/**
 * The detail fields of an upstream 4xx passed on to callers, as the API documents them (and the
 * simulator sends them); anything else (stacks, queries, internals) is dropped.
 */
export const UPSTREAM_DETAIL_FIELDS = [
  'parameter',
  'value',
  'expected',
  'required',
  'provided',
  'errors',
  'field',
  'resource',
  'id',
  'roomId',
  'limit',
  'window',
  'retryAfter',
  'count',
  'max',
  'maxBytes',
  'allowed',
  'roomCount',
  'participantCount',
] as const;

/** The fields of one entry of `details.errors` passed on (per-event and per-role validation errors). */
export const UPSTREAM_DETAIL_ERROR_FIELDS = ['index', 'field', 'message', 'role', 'reason'] as const;

const MAX_TEXT = 1_000;
const MAX_LIST = 1_000;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A scalar as callers may see it: strings cut to a sane length, nothing nested. */
function scalar(value: unknown): string | number | boolean | null | undefined {
  if (typeof value === 'string') return value.length > MAX_TEXT ? `${value.slice(0, MAX_TEXT)}…` : value;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return value;
  return undefined;
}

function pick(source: Record<string, unknown>, fields: readonly string[], nested: (name: string, value: unknown) => unknown) {
  const out: Record<string, unknown> = {};
  for (const name of fields) {
    if (!(name in source)) continue;
    const value = nested(name, source[name]);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** An upstream 4xx's details reduced to the documented fields, each a scalar or a list of them. */
export function safeDetails(details: Record<string, unknown>): Record<string, unknown> {
  return pick(details, UPSTREAM_DETAIL_FIELDS, (name, value) => {
    if (!Array.isArray(value)) return scalar(value);
    const list = value.slice(0, MAX_LIST);
    if (name === 'errors')
      return list.map((entry) => (isRecord(entry) ? pick(entry, UPSTREAM_DETAIL_ERROR_FIELDS, (_n, v) => scalar(v)) : scalar(entry)));
    return list.map(scalar).filter((v) => v !== undefined);
  });
}

/** An upstream message fit for a debug log: key-shaped and secret-shaped values masked, length cut. */
export function scrub(text: string): string {
  return text
    .replace(/hst_(?:live|test)_[A-Za-z0-9_]+/g, '[key]')
    .replace(/\b(password|passwd|pwd|secret|token|api[_-]?key|authorization)\b(\s*[=:]\s*)("[^"]*"|\S+)/gi, '$1$2[redacted]')
    .slice(0, 300);
}

/** Reads `Retry-After` as seconds (a number or an HTTP date), at most RETRY_AFTER_MAX_SECONDS. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | null {
  if (value === undefined) return null;
  const text = value.trim();
  let seconds: number;
  if (/^\d+$/.test(text)) seconds = Number(text);
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return null;
    seconds = Math.max(0, Math.ceil((at - now) / 1000));
  }
  return Math.min(RETRY_AFTER_MAX_SECONDS, seconds);
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** What an error answer said, for a debug log line (never for callers when it is a 5xx). */
export interface UpstreamFailureNote {
  status: number;
  upstreamCode: string | null;
  message: string;
}

/**
 * Parses an upstream answer: the success envelope, or an UpstreamError with a stable code. A 2xx
 * whose body says `"status": "error"` is an error. Callers see a 4xx's message and documented
 * details; a server error (5xx, or an error envelope the upstream meant as one) only its status and
 * code, with a generic message (`note` receives what it said, for logs).
 */
export function parseEnvelope(
  status: number,
  headers: Record<string, string | string[] | undefined>,
  body: Buffer,
  note?: (failure: UpstreamFailureNote) => void,
): Envelope {
  const bytes = body.length;
  let json: unknown;
  try {
    json = parseJsonBytes(body);
  } catch {
    json = undefined;
  }
  const ok = status >= 200 && status < 300;
  if (ok && isRecord(json) && json.status !== 'error' && ('data' in json || json.status === 'healthy')) {
    const limit = Number(header(headers, 'x-ratelimit-limit'));
    const remaining = Number(header(headers, 'x-ratelimit-remaining'));
    const reset = Number(header(headers, 'x-ratelimit-reset'));
    return {
      data: json.data,
      metadata: isRecord(json.metadata) ? json.metadata : {},
      rateLimit: Number.isFinite(limit) && Number.isFinite(remaining) ? { limit, remaining, reset } : null,
      bytes,
    };
  }
  const error = isRecord(json) && isRecord(json.error) ? json.error : null;
  if (ok && error === null) {
    throw new UpstreamError('The HyperStudy API answered with a body that is not a success envelope', { code: 'UPSTREAM_ERROR', status });
  }
  const upstreamCode = typeof error?.code === 'string' ? error.code.slice(0, 100) : null;
  const code = ok ? codeForUpstreamCode(upstreamCode) : codeForStatus(status);
  const message = typeof error?.message === 'string' && error.message !== '' ? error.message : null;
  const details = isRecord(error?.details) ? error.details : {};
  const serverSide = status >= 500 || (ok && (code === 'UPSTREAM_ERROR' || code === 'UPSTREAM_TIMEOUT'));
  if (message !== null || upstreamCode !== null) note?.({ status, upstreamCode, message: scrub(message ?? '') });
  // Retry-After from the header; a 429 without one may still say it in its details.
  const fromDetails = typeof details.retryAfter === 'number' && details.retryAfter > 0 ? details.retryAfter : null;
  const rateLimited = status === 429 || code === 'RATE_LIMITED';
  const retryAfter =
    parseRetryAfter(header(headers, 'retry-after')) ??
    (rateLimited && fromDetails !== null ? Math.min(RETRY_AFTER_MAX_SECONDS, Math.ceil(fromDetails)) : null);
  throw new UpstreamError(
    serverSide || message === null
      ? `The HyperStudy API answered HTTP ${status}${ok && upstreamCode ? ` with error ${upstreamCode}` : ''}`
      : message.slice(0, MAX_TEXT),
    { code, status, upstreamCode, details: serverSide ? {} : safeDetails(details), retryAfter },
  );
}
