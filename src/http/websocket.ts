import type { IncomingMessage, Server } from 'node:http';
import { GraphQLError, type DocumentNode, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer, type WebSocket } from 'ws';
import { gatewayError } from '../errors.ts';
import { keyHash } from '../state/shared-reads.ts';
import { NOT_TRUSTED, ONLY_TRUSTED } from '../plugins/use-trusted-documents.ts';

/**
 * The close codes of the gateway's own limits (graphql-ws adds its 44xx: 4403 no usable key, 4408 no
 * connection_init in time, …). graphql-ws clients retry 1013 with backoff, and reconnect after 1000 only
 * when they have an operation to run.
 */
export const CloseCode = {
  /** Past WEBSOCKET_MAX_CONNECTIONS (the process) or WEBSOCKET_MAX_CONNECTIONS_PER_KEY (the key). */
  TryAgainLater: 1013,
  /** No operation ran for WEBSOCKET_IDLE_TIMEOUT_MS. */
  Idle: 1000,
} as const;

/** The headers a GraphQL-over-WebSocket client may send in its connection_init payload instead. */
const PARAM_HEADERS = ['x-api-key', 'authorization', 'x-organization-id', 'x-request-id'];

/** A header value the HTTP rules allow (no control characters); anything else is dropped, never echoed. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * The caller's headers for an operation over a WebSocket: the upgrade request's, and the
 * `connection_init` payload's (browsers cannot set headers on a WebSocket), which win.
 */
export function socketHeaders(req: IncomingMessage, params: Readonly<Record<string, unknown>> | undefined): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers))
    if (typeof value === 'string' && HEADER_VALUE.test(value)) headers.set(name, value);
  for (const [name, value] of Object.entries(params ?? {})) {
    const lower = name.toLowerCase();
    const header = lower === 'apikey' ? 'x-api-key' : lower;
    if (PARAM_HEADERS.includes(header) && typeof value === 'string' && HEADER_VALUE.test(value)) headers.set(header, value);
  }
  return headers;
}

/** The allow-listed document a subscribe message names (`extensions.persistedQuery.sha256Hash` or `documentId`). */
function trustedQuery(
  trusted: ReadonlyMap<string, string>,
  payload: { extensions?: unknown; documentId?: unknown },
): string | null | undefined {
  const extensions = payload.extensions as { persistedQuery?: { sha256Hash?: unknown } } | undefined;
  const id = extensions?.persistedQuery?.sha256Hash ?? payload.documentId;
  return typeof id === 'string' ? (trusted.get(id) ?? null) : undefined;
}

interface Enveloped {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

export interface WebSocketOptions {
  /** The allow-list of TRUSTED_DOCUMENTS: over WebSocket too, only operations sent by id run. */
  trusted: ReadonlyMap<string, string> | null;
  /** The largest message accepted, in bytes (MAX_BODY_BYTES, as for HTTP bodies). */
  bodyBytes: number;
  /** Operations one connection may have running at once. */
  maxOperations: number;
  /** The caller's API key in a request's headers (connections without one are refused). */
  keyOf: (headers: Headers) => string | null;
  /** Gives a refused operation (limits, parse) its coded error (the gateway's limit errors). */
  mapError: (error: GraphQLError) => GraphQLError;
  /** Connections the process holds at most, initialised or not (WEBSOCKET_MAX_CONNECTIONS). */
  maxConnections: number;
  /** Connections one key may hold at once, counted by the key's hash (WEBSOCKET_MAX_CONNECTIONS_PER_KEY). */
  maxConnectionsPerKey: number;
  /** How long a connection with no operation running stays open, in ms (WEBSOCKET_IDLE_TIMEOUT_MS). */
  idleTimeoutMs: number;
  /** How long a new socket may take to send connection_init, in ms (WEBSOCKET_INIT_TIMEOUT_MS). */
  initTimeoutMs: number;
}

/** One open socket: its key's hash once initialised, and the operations it runs (ids), for the idle timer. */
interface Connection {
  hash: string | null;
  readonly running: Set<string>;
  idle: NodeJS.Timeout | null;
}

export interface WebSockets {
  /** Open connections (initialised or not) and the distinct keys holding them (for /metrics). */
  counts(): { connections: number; keys: number };
  /**
   * Stops taking operations, lets those running end for up to `graceMs` (queries and mutations answer;
   * subscriptions, ended by the live hub first, send their last message), then closes every socket.
   */
  close(graceMs: number): Promise<void>;
}

/**
 * GraphQL over WebSocket (the graphql-ws protocol) on the GraphQL endpoint, through the same Yoga
 * pipeline as HTTP: the same schema, plugins (limits, trusted documents, error mapping) and context.
 * Connections are capped per process and per key, and closed when idle.
 */
export function useWebSockets<C extends object>(
  server: Server,
  yoga: YogaServerInstance<Record<string, unknown>, C>,
  options: WebSocketOptions,
): WebSockets {
  // Upgrades are handed over here rather than by passing the server to ws, which would also re-emit the
  // server's own errors (a busy port) as the WebSocket server's, and graphql-ws would log them as its own.
  const wss = new WebSocketServer({ noServer: true, path: yoga.graphqlEndpoint, maxPayload: options.bodyBytes });
  server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
  let closing = false;
  const connections = new Map<WebSocket, Connection>();
  /** Open connections of each key, by the key's hash (never the key). */
  const perKey = new Map<string, number>();
  /** Operations running on every connection (a shutdown waits for them). */
  let running = 0;
  let drained: (() => void) | null = null;
  const arm = (socket: WebSocket, connection: Connection): void => {
    if (connection.idle) clearTimeout(connection.idle);
    connection.idle = setTimeout(() => {
      if (connection.running.size === 0) socket.close(CloseCode.Idle, `No operation for ${options.idleTimeoutMs} ms`);
    }, options.idleTimeoutMs);
    connection.idle.unref();
  };
  const ended = (socket: WebSocket, id: string): void => {
    const connection = connections.get(socket);
    // onError and onComplete may both report one operation; a closed connection's were counted off.
    if (!connection?.running.delete(id)) return;
    running--;
    if (running === 0) drained?.();
    if (connection.running.size === 0 && connection.hash !== null && !closing) arm(socket, connection);
  };

  // Before graphql-ws's own listener: a socket past the process's cap is closed before anything else.
  wss.on('connection', (socket) => {
    if (connections.size >= options.maxConnections) {
      socket.close(CloseCode.TryAgainLater, `The gateway holds ${options.maxConnections} WebSocket connections, the most it takes`);
      return;
    }
    // A message over MAX_BODY_BYTES: ws closes the socket with 1009 itself, then emits the error, which
    // graphql-ws would print with its stack as an implementation fault ("Internal error emitted on a
    // WebSocket socket"). It is the caller's, and already answered: it goes no further.
    const emit = socket.emit.bind(socket);
    socket.emit = ((event: string | symbol, ...args: unknown[]): boolean =>
      event === 'error' && (args[0] as { code?: unknown } | undefined)?.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
        ? false
        : emit(event, ...args)) as typeof socket.emit;
    const connection: Connection = { hash: null, running: new Set(), idle: null };
    connections.set(socket, connection);
    socket.once('close', () => {
      connections.delete(socket);
      if (connection.idle) clearTimeout(connection.idle);
      running -= connection.running.size;
      connection.running.clear();
      if (running === 0) drained?.();
      if (connection.hash !== null) {
        const left = (perKey.get(connection.hash) ?? 1) - 1;
        if (left > 0) perKey.set(connection.hash, left);
        else perKey.delete(connection.hash);
      }
    });
  });
  const disposable = useServer<Record<string, unknown> | undefined, { request: IncomingMessage }>(
    {
      connectionInitWaitTimeout: options.initTimeoutMs,
      execute: (args) => (args.rootValue as Enveloped).execute(args) as never,
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args) as never,
      // A socket is for live data, which needs a key: without one it is refused at connection_init (4403).
      onConnect: (ctx) => {
        const { socket } = ctx.extra;
        const connection = connections.get(socket);
        const key = options.keyOf(socketHeaders(ctx.extra.request, ctx.connectionParams));
        if (!connection || key === null) return false;
        const hash = keyHash(key);
        const open = perKey.get(hash) ?? 0;
        if (open >= options.maxConnectionsPerKey) {
          socket.close(
            CloseCode.TryAgainLater,
            `This key has ${options.maxConnectionsPerKey} WebSocket connections open, the most one key may`,
          );
          return false;
        }
        perKey.set(hash, open + 1);
        connection.hash = hash;
        arm(socket, connection);
        return true;
      },
      onSubscribe: async (ctx, id, payload) => {
        const connection = connections.get(ctx.extra.socket);
        if (connection && !connection.running.has(id)) {
          connection.running.add(id);
          running++;
          if (connection.idle) clearTimeout(connection.idle);
        }
        if (closing) return [gatewayError('SHUTTING_DOWN', 'The gateway is shutting down')];
        if (Object.keys(ctx.subscriptions).length >= options.maxOperations) {
          return [
            gatewayError('RATE_LIMITED', `A connection may run ${options.maxOperations} operations at once`, {
              extensions: { max: options.maxOperations },
            }),
          ];
        }
        try {
          const url = `http://${ctx.extra.request.headers.host ?? 'localhost'}${yoga.graphqlEndpoint}`;
          const request = new Request(url, { method: 'POST', headers: socketHeaders(ctx.extra.request, ctx.connectionParams) });
          const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
            request,
            params: payload,
            req: ctx.extra.request,
          });
          let query = payload.query;
          if (options.trusted) {
            // The allow-list holds over WebSocket too, with the codes HTTP answers.
            const found = trustedQuery(options.trusted, payload);
            if (found === undefined) return [gatewayError(ONLY_TRUSTED.code, ONLY_TRUSTED.message)];
            if (found === null) return [gatewayError(NOT_TRUSTED.code, NOT_TRUSTED.message)];
            query = found;
          }
          const document: DocumentNode = parse(query);
          const errors = validate(schema, document);
          if (errors.length > 0) return errors.map((e: GraphQLError) => options.mapError(e));
          return {
            schema,
            operationName: payload.operationName,
            document,
            variableValues: payload.variables,
            contextValue: await contextFactory(),
            rootValue: { execute, subscribe },
          };
        } catch (error) {
          // Limits (graphql-armor) and syntax errors come as thrown errors: answered with codes, the socket stays.
          if (error instanceof GraphQLError) return [options.mapError(error)];
          return [gatewayError('BAD_REQUEST', 'The operation could not be read')];
        }
      },
      // Called as an operation ends (a refused one through onError), before its last message is sent:
      // counted as ended once it is, so that a shutdown closes the socket after it.
      onComplete: (ctx, id) => void setImmediate(() => ended(ctx.extra.socket, id)),
      onError: (ctx, id) => void setImmediate(() => ended(ctx.extra.socket, id)),
    },
    wss,
  );
  const close = async (graceMs: number): Promise<void> => {
    closing = true;
    if (running > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        timer.unref();
        drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    for (const client of wss.clients) client.close(1001, 'The gateway is shutting down');
    await disposable.dispose();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  };
  return { counts: () => ({ connections: connections.size, keys: perKey.size }), close };
}
