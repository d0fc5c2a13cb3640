import type { ErrorCode } from '../errors.ts';

export interface UpstreamErrorOptions {
  code: ErrorCode;
  /** The HTTP status the upstream answered, or null when no answer arrived. */
  status: number | null;
  /** The upstream's own error code (`INVALID_PARAMETER`, `RATE_LIMIT_EXCEEDED` …), when it sent one. */
  upstreamCode?: string | null;
  details?: Record<string, unknown>;
  /** Seconds to wait, from a 429's `Retry-After`. */
  retryAfter?: number | null;
  cause?: unknown;
}

/** A failed upstream call, with a stable code; `toGraphQLError` maps it for callers. */
export class UpstreamError extends Error {
  override name = 'UpstreamError';
  readonly code: ErrorCode;
  readonly status: number | null;
  readonly upstreamCode: string | null;
  readonly details: Record<string, unknown>;
  readonly retryAfter: number | null;

  constructor(message: string, options: UpstreamErrorOptions) {
    super(message, { cause: options.cause });
    this.code = options.code;
    this.status = options.status;
    this.upstreamCode = options.upstreamCode ?? null;
    this.details = options.details ?? {};
    this.retryAfter = options.retryAfter ?? null;
  }
}

/** The gateway code for an upstream HTTP status. */
export function codeForStatus(status: number): ErrorCode {
  if (status === 400 || status === 422) return 'BAD_USER_INPUT';
  if (status === 401) return 'UNAUTHENTICATED';
  if (status === 403) return 'FORBIDDEN';
  if (status === 404) return 'NOT_FOUND';
  if (status === 429) return 'RATE_LIMITED';
  if (status === 408 || status === 504) return 'UPSTREAM_TIMEOUT';
  return 'UPSTREAM_ERROR';
}

/** The gateway code for the upstream's own error code, when its HTTP status says nothing (an error in a 2xx). */
export function codeForUpstreamCode(code: string | null): ErrorCode {
  switch (code) {
    case 'INVALID_PARAMETER':
    case 'VALIDATION_ERROR':
      return 'BAD_USER_INPUT';
    case 'UNAUTHORIZED':
    case 'AUTHENTICATION_ERROR':
      return 'UNAUTHENTICATED';
    case 'FORBIDDEN':
      return 'FORBIDDEN';
    case 'NOT_FOUND':
      return 'NOT_FOUND';
    case 'RATE_LIMIT_EXCEEDED':
      return 'RATE_LIMITED';
    case 'GATEWAY_TIMEOUT':
      return 'UPSTREAM_TIMEOUT';
    default:
      return 'UPSTREAM_ERROR';
  }
}

/** Why a request stopped when its signal aborted: the operation's deadline, or the operation being over. */
export function abortError(signal: AbortSignal, cause?: unknown): UpstreamError {
  // Ended by an upstream error that stands for the rest of the operation (the key was refused).
  if (signal.reason instanceof UpstreamError) return signal.reason;
  const deadline = signal.reason instanceof DOMException && signal.reason.name === 'TimeoutError';
  return new UpstreamError(
    deadline
      ? "The operation's deadline passed before the HyperStudy API answered"
      : 'The operation ended before the HyperStudy API answered',
    { code: 'UPSTREAM_TIMEOUT', status: null, details: deadline ? {} : { cancelled: true }, cause },
  );
}
