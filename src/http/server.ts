import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Counter } from 'prom-client';
import type { YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config.ts';
import { scrapedGauge, type Metrics } from '../observability.ts';
import { limitError } from '../plugins/use-limit-errors.ts';
import { withBodyLimit } from './body-limit.ts';
import { apiKeyOf } from './caller.ts';
import { createDrain } from './drain.ts';
import { withRequestId } from './request-id.ts';
import { useWebSockets } from './websocket.ts';
import { withWorkerId } from './worker-id.ts';

/** Operations one WebSocket connection may run at once (subscriptions included). */
export const WEBSOCKET_MAX_OPERATIONS = 100;

/** The gateway could not listen on its port (in use, or not allowed): one line naming PORT. */
export class ListenError extends Error {
  override name = 'ListenError';
  constructor(port: number, host: string, code: 'EADDRINUSE' | 'EACCES') {
    super(
      code === 'EADDRINUSE'
        ? `Port ${port} on ${host} is in use: stop what listens there, or set PORT to another port (PORT=0 picks a free one)`
        : `Port ${port} on ${host} may not be opened by this user: set PORT to one above 1023`,
    );
  }
}

export interface HttpParts {
  logger: Logger;
  metrics: Metrics;
  /** The allow-list of TRUSTED_DOCUMENTS (over WebSocket too), or null. */
  trusted: Map<string, string> | null;
  /** In a worker of WORKERS > 1: its id, answered in `X-Worker`. */
  workerId?: string;
}

export interface HttpServer {
  server: Server;
  /** Listens (0 picks a free port) and returns the base URL. */
  listen(port: number, host: string): Promise<string>;
  /** Stops accepting and lets HTTP and WebSocket operations end for up to `graceMs`; whether all did. */
  close(graceMs: number): Promise<boolean>;
}

/**
 * The HTTP server around Yoga, of the concerns in src/http/: request ids, the worker's id, the body
 * limit (before Yoga), draining on shutdown, and GraphQL over WebSocket on the same port.
 */
export function serveHttp<C extends object>(
  yoga: YogaServerInstance<Record<string, unknown>, C>,
  config: GatewayConfig,
  { logger, metrics, trusted, workerId }: HttpParts,
): HttpServer {
  const drain = createDrain();
  const handler = withBodyLimit(
    {
      bodyBytes: config.limits.bodyBytes,
      replay: (url, init) => yoga.fetch(url, init),
      onError: (error, req) => logger.error({ err: error, requestId: req.headers['x-request-id'] }, 'unexpected error'),
    },
    (req, res) => void yoga(req, res),
  );
  const server = createServer(drain.track(withRequestId(workerId === undefined ? handler : withWorkerId(workerId, handler))));
  const sockets = useWebSockets(server, yoga, {
    trusted,
    bodyBytes: config.limits.bodyBytes,
    maxOperations: WEBSOCKET_MAX_OPERATIONS,
    keyOf: apiKeyOf,
    mapError: limitError,
    ...config.websocket,
  });
  // Which worker got how many of the clients' connections (WORKERS > 1: the primary hands them out).
  const accepted = new Counter({
    name: 'hsgql_http_connections_total',
    help: 'TCP connections this process accepted (HTTP and WebSocket)',
    registers: [metrics.registry],
  });
  let open = 0;
  server.on('connection', (socket: Socket) => {
    accepted.inc();
    open++;
    socket.once('close', () => open--);
  });
  scrapedGauge(metrics.registry, 'hsgql_http_connections', 'TCP connections open to this process now', () => open);
  scrapedGauge(
    metrics.registry,
    'hsgql_websocket_connections',
    'Open GraphQL-over-WebSocket connections (initialised or not), and the distinct keys holding them',
    () => sockets.counts(),
    'what',
  );
  return {
    server,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', (error: NodeJS.ErrnoException) =>
          reject(error.code === 'EADDRINUSE' || error.code === 'EACCES' ? new ListenError(port, host, error.code) : error),
        );
        server.listen(port, host, () => {
          const address = server.address() as AddressInfo;
          const shown = address.address.includes(':') ? `[${address.address}]` : address.address;
          resolve(`http://${shown === '0.0.0.0' ? '127.0.0.1' : shown}:${address.port}`);
        });
      }),
    close: async (graceMs) => (await Promise.all([drain.close(server, graceMs), sockets.close(graceMs)]))[0],
  };
}
