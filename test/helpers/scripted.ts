import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One request a scripted upstream received. */
export interface Seen {
  method: string;
  /** Below `/api/v3`, without the query string. */
  path: string;
  query: URLSearchParams;
  key: string | null;
  /** ms since the upstream started, when the request arrived and when its answer ended or was cut. */
  at: number;
  end: number | null;
  /** The client closed the connection before the answer ended. */
  cut: boolean;
  /** Requests of the same key in flight when this one arrived (itself included). */
  keyInFlight: number;
}

export interface Scripted {
  /** The API base, ending in `/api/v3`. */
  url: string;
  seen: Seen[];
  now(): number;
  close(): Promise<void>;
}

export type Script = (req: IncomingMessage, res: ServerResponse, seen: Seen) => void | Promise<void>;

/**
 * A stand-in for the upstream over real HTTP, answering as `script` says: for faults the simulator
 * does not make (a hostile or odd upstream), and per-key behaviour. It records what it received.
 */
export async function startScripted(script: Script): Promise<Scripted> {
  const started = performance.now();
  const now = (): number => performance.now() - started;
  const seen: Seen[] = [];
  const inFlight = new Map<string, number>();
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    const key = typeof req.headers['x-api-key'] === 'string' ? req.headers['x-api-key'] : null;
    const label = key ?? '';
    inFlight.set(label, (inFlight.get(label) ?? 0) + 1);
    const entry: Seen = {
      method: req.method ?? 'GET',
      path: url.pathname.replace(/^\/api\/v3/, ''),
      query: url.searchParams,
      key,
      at: now(),
      end: null,
      cut: false,
      keyInFlight: inFlight.get(label) ?? 0,
    };
    seen.push(entry);
    res.once('close', () => {
      inFlight.set(label, (inFlight.get(label) ?? 1) - 1);
      entry.end = now();
      entry.cut = !res.writableFinished;
    });
    void Promise.resolve(script(req, res, entry)).catch(() => res.destroy());
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/api/v3`,
    seen,
    now,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export const success = (data: unknown, metadata: Record<string, unknown> = {}) => ({ status: 'success', data, metadata });

export const failure = (code: string, message: string, details: Record<string, unknown> = {}) => ({
  status: 'error',
  error: { code, message, details },
});

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A request forwarded to the upstream at `base` (a simulator's origin, without `/api/v3`) with its key: the answer's status and body. */
export async function forwarded(base: string, req: IncomingMessage): Promise<{ status: number; body: Buffer }> {
  const answer = await fetch(`${base}${req.url ?? '/'}`, { headers: { 'x-api-key': String(req.headers['x-api-key']) } });
  return { status: answer.status, body: Buffer.from(await answer.arrayBuffer()) };
}

/** Answers a request as the upstream at `base` does (see `forwarded`). */
export async function passOn(base: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { status, body } = await forwarded(base, req);
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(body);
}
