import { errors, type Dispatcher } from 'undici';

/**
 * What one upstream exchange answered: its status, headers (lower-case names) and whole body, as the
 * chunks it came in (read it with `withBody`).
 */
export interface Exchange {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  chunks: readonly Buffer[];
  /** The body's length in bytes. */
  bytes: number;
}

/** Bodies up to this long are joined into the process's scratch buffer; a longer one into a buffer of its own. */
export const SCRATCH_MAX_BYTES = 4 * 1024 * 1024;

let scratch: Buffer | null = null;
let lent = false;

/**
 * Calls `use` with the exchange's body as one buffer and returns what it returns. A body of several
 * chunks is copied into one scratch buffer the process keeps for it (grown to the longest body up to
 * SCRATCH_MAX_BYTES): a buffer of a page's length fresh for every answer (`Buffer.concat`) costs its
 * allocation from the system each time — on a 458 kB page, 88–220 µs against 9–17 µs into memory
 * already in use (docs/measured.md, seventh round). So `use` must read the body before it returns and
 * keep nothing of it, no view and no slice (decoding to a string copies); a body read again inside
 * `use`, or one over the limit, gets a buffer of its own.
 */
export function withBody<T>(answer: Exchange, use: (body: Buffer) => T): T {
  const { chunks, bytes } = answer;
  const only = chunks.length === 1 ? chunks[0] : undefined;
  if (only) return use(only);
  if (lent || bytes > SCRATCH_MAX_BYTES) return use(Buffer.concat(chunks, bytes));
  if (!scratch || scratch.length < bytes)
    scratch = Buffer.allocUnsafe(Math.min(SCRATCH_MAX_BYTES, Math.max(bytes, 2 * (scratch?.length ?? 0))));
  let at = 0;
  for (const chunk of chunks) {
    scratch.set(chunk, at);
    at += chunk.length;
  }
  lent = true;
  try {
    return use(scratch.subarray(0, bytes));
  } finally {
    lent = false;
  }
}

/** A body over the limit, declared or streamed: the exchange is aborted (its connection closed) unread. */
export class BodyTooLarge extends Error {
  constructor(readonly status: number) {
    super('body too large');
  }
}

/**
 * One HTTP exchange through `dispatcher`, its body read whole (at most `maxBytes`), over undici's
 * handler API rather than `request()`: through `request()` (which hands the body over as a stream),
 * V8's young collector keeps about one 64 kB chunk of each answer until a full collection — memory
 * outside the heap that made V8 run a full collection every ~100 dashboards (docs/measured.md, sixth
 * round; which object holds it was not found). Here each chunk is only in the list that becomes the body. Rejects as `request()` does: with the signal's reason (or undici's
 * RequestAbortedError) when `signal` aborts, with undici's errors, with BodyTooLarge past the limit.
 */
export function exchange(
  dispatcher: Dispatcher,
  options: Dispatcher.DispatchOptions,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<Exchange> {
  return new Promise<Exchange>((resolve, reject) => {
    let controller: Dispatcher.DispatchController | null = null;
    let statusCode = 0;
    let headers: Exchange['headers'] = {};
    const chunks: Buffer[] = [];
    let bytes = 0;
    let settled = false;
    const settle = (error: unknown): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (error !== null) {
        chunks.length = 0;
        reject(error);
      } else resolve({ statusCode, headers, chunks, bytes });
    };
    const stop = (reason: unknown): void => {
      // Rejects first: the handler's onResponseError then finds the exchange settled.
      settle(reason);
      controller?.abort(reason instanceof Error ? reason : new errors.RequestAbortedError());
    };
    function onAbort(): void {
      stop(signal?.reason ?? new errors.RequestAbortedError());
    }
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(started) {
        controller = started;
        if (settled) started.abort(new errors.RequestAbortedError());
      },
      onResponseStart(_controller, status, responseHeaders) {
        if (status < 200) return; // an informational answer: the final one follows
        statusCode = status;
        headers = responseHeaders as Exchange['headers'];
        const declared = Number(responseHeaders['content-length']);
        if (Number.isFinite(declared) && declared > maxBytes) stop(new BodyTooLarge(status));
      },
      onResponseData(_controller, chunk) {
        if (settled) return;
        bytes += chunk.length;
        if (bytes > maxBytes) stop(new BodyTooLarge(statusCode));
        else chunks.push(chunk);
      },
      onResponseEnd() {
        settle(null);
      },
      onResponseError(_controller, error) {
        settle(error);
      },
    };
    try {
      dispatcher.dispatch(options, handler);
    } catch (error) {
      settle(error);
    }
  });
}
