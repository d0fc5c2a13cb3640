import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERRORS, errorExtensions } from '../errors.ts';
import type { NodeHandler } from './node.ts';

export interface BodyLimitOptions {
  /** The largest request body accepted, in bytes (MAX_BODY_BYTES). */
  bodyBytes: number;
  /** Answers a request whose body was read here (chunked, within the limit): Yoga's fetch. */
  replay: (url: string, init: RequestInit) => Response | Promise<Response>;
  /** Told of an unexpected failure while replaying (the caller gets a 500). */
  onError: (error: unknown, req: IncomingMessage) => void;
}

function tooLarge(res: ServerResponse, bodyBytes: number): void {
  res.writeHead(ERRORS.PAYLOAD_TOO_LARGE.status, { 'content-type': 'application/json', connection: 'close' });
  res.end(
    JSON.stringify({
      errors: [{ message: `The request body exceeds ${bodyBytes} bytes`, extensions: errorExtensions('PAYLOAD_TOO_LARGE') }],
    }),
  );
}

/** Writes a stream to the response as it comes, waiting for the socket when it is full; stops when the caller is gone. */
async function pipe(reader: ReadableStreamDefaultReader<Uint8Array>, res: ServerResponse): Promise<void> {
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (error) {
      // Cancelled because the caller left: nothing unexpected.
      if (res.destroyed) return;
      throw error;
    }
    const { done, value } = chunk;
    if (done || res.destroyed) return;
    if (!res.write(value)) {
      await new Promise<void>((resolve) => {
        const go = (): void => {
          res.off('drain', go);
          res.off('close', go);
          resolve();
        };
        res.on('drain', go);
        res.on('close', go);
      });
    }
  }
}

/**
 * Refuses request bodies over the limit with 413 before Yoga reads them: by their declared length, or,
 * for a body of unknown length (chunked), by reading it up to the limit; past it the answer is 413 at
 * once and the connection is closed without reading the rest.
 */
export function withBodyLimit(options: BodyLimitOptions, next: NodeHandler): NodeHandler {
  const { bodyBytes } = options;
  return (req, res) => {
    const length = req.headers['content-length'];
    if (length !== undefined) {
      if (Number(length) > bodyBytes) {
        tooLarge(res, bodyBytes);
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
      if (size <= bodyBytes) return void chunks.push(chunk);
      req.off('data', onData);
      req.off('end', onEnd);
      res.once('finish', () => req.destroy());
      tooLarge(res, bodyBytes);
    };
    const onEnd = (): void => {
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers))
        if (typeof value === 'string' && name !== 'transfer-encoding') headers.set(name, value);
      // The caller going away cancels the operation and the answer's stream (a subscription, @defer parts),
      // as it does for requests Yoga reads itself.
      const gone = new AbortController();
      let body: ReadableStream<Uint8Array> | null = null;
      let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
      const cancel = (): void => {
        // Yoga's streams (whatwg-node's) end a read under way only when cancelled themselves; a web stream
        // refuses that while locked and ends through its reader.
        void body?.cancel().catch(() => undefined);
        void reader?.cancel().catch(() => undefined);
      };
      res.once('close', () => {
        if (res.writableFinished) return;
        gone.abort();
        cancel();
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
          body = response.body;
          reader = body?.getReader() ?? null;
          if (res.destroyed) return cancel();
          res.writeHead(response.status, Object.fromEntries(response.headers));
          // An event stream or multipart answer sends its parts as they come: the headers go at once.
          res.flushHeaders();
          if (reader) await pipe(reader, res);
          if (!res.destroyed) res.end();
        })
        .catch((error: unknown) => {
          if (res.destroyed) return;
          // A stream that fails after its first bytes (a table whose upstream failed) ends without its
          // final chunk: the client sees it cut short, never an error appended to a whole-looking answer.
          if (res.headersSent) return void res.destroy();
          options.onError(error, req);
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ errors: [{ message: 'Unexpected error.' }] }));
        });
    };
    req.on('data', onData);
    req.on('end', onEnd);
  };
}
