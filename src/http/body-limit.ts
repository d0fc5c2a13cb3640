import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NodeHandler } from './node.ts';

export interface BodyLimitOptions {
  /** The largest request body accepted, in bytes (MAX_BODY_BYTES). */
  maxBytes: number;
  /** Answers a request whose body was read here (chunked, within the limit): Yoga's fetch. */
  replay: (url: string, init: RequestInit) => Response | Promise<Response>;
  /** Told of an unexpected failure while replaying (the caller gets a 500). */
  onError: (error: unknown, req: IncomingMessage) => void;
}

function tooLarge(res: ServerResponse, maxBytes: number): void {
  res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
  res.end(
    JSON.stringify({ errors: [{ message: `The request body exceeds ${maxBytes} bytes`, extensions: { code: 'PAYLOAD_TOO_LARGE' } }] }),
  );
}

/**
 * Refuses request bodies over the limit with 413 before Yoga reads them: by their declared length, or,
 * for a body of unknown length (chunked), by reading it up to the limit; past it the answer is 413 at
 * once and the connection is closed without reading the rest.
 */
export function withBodyLimit(options: BodyLimitOptions, next: NodeHandler): NodeHandler {
  const { maxBytes } = options;
  return (req, res) => {
    const length = req.headers['content-length'];
    if (length !== undefined) {
      if (Number(length) > maxBytes) {
        tooLarge(res, maxBytes);
        req.resume();
        return;
      }
      return next(req, res);
    }
    if (req.headers['transfer-encoding'] === undefined) return next(req, res);
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      req.off('data', onData);
      req.off('end', onEnd);
      res.once('finish', () => req.destroy());
      tooLarge(res, maxBytes);
    };
    const onEnd = (): void => {
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers))
        if (typeof value === 'string' && name !== 'transfer-encoding') headers.set(name, value);
      // The caller going away cancels the operation, as it does for requests Yoga reads itself.
      const gone = new AbortController();
      res.once('close', () => {
        if (!res.writableFinished) gone.abort();
      });
      Promise.resolve(
        options.replay(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, {
          method: req.method,
          headers,
          body: Buffer.concat(chunks, size),
          signal: gone.signal,
        }),
      )
        .then(async (response) => {
          res.writeHead(response.status, Object.fromEntries(response.headers));
          res.end(Buffer.from(await response.arrayBuffer()));
        })
        .catch((error: unknown) => {
          options.onError(error, req);
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ errors: [{ message: 'Unexpected error.' }] }));
        });
    };
    req.on('data', onData);
    req.on('end', onEnd);
  };
}
