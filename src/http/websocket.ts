import type { IncomingMessage, Server } from 'node:http';
import { GraphQLError, getOperationAST, type DocumentNode, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';

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
  maxPayload: number;
  /** Operations one connection may have running at once. */
  maxOperations: number;
  /** Whether a request carries an API key (connections without one are refused). */
  hasKey: (headers: Headers) => boolean;
  /** Gives a refused operation (limits, parse) its coded error (the gateway's limit errors). */
  mapError: (error: GraphQLError) => GraphQLError;
}

/**
 * GraphQL over WebSocket (the graphql-ws protocol) on the GraphQL endpoint, through the same Yoga
 * pipeline as HTTP: the same schema, plugins (limits, trusted documents, error mapping) and context.
 * Returns a function that stops taking operations, lets queries and mutations in flight answer for up
 * to `graceMs`, then closes every socket.
 */
export function useWebSockets<C extends object>(
  server: Server,
  yoga: YogaServerInstance<Record<string, unknown>, C>,
  options: WebSocketOptions,
): (graceMs: number) => Promise<void> {
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint, maxPayload: options.maxPayload });
  let closing = false;
  /** Queries and mutations in flight, which a shutdown lets finish (subscriptions end at once). */
  const answering = new Set<string>();
  let drained: (() => void) | null = null;
  const refuse = (message: string, code: string, extra: Record<string, unknown> = {}): GraphQLError[] => [
    new GraphQLError(message, { extensions: { code, ...extra } }),
  ];
  const disposable = useServer<Record<string, unknown> | undefined, { request: IncomingMessage }>(
    {
      execute: (args) => (args.rootValue as Enveloped).execute(args) as never,
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args) as never,
      // A socket is for live data, which needs a key: without one it is refused at connection_init.
      onConnect: (ctx) => options.hasKey(socketHeaders(ctx.extra.request, ctx.connectionParams)),
      onSubscribe: async (ctx, id, payload) => {
        if (closing) return refuse('The gateway is shutting down', 'SHUTTING_DOWN');
        if (Object.keys(ctx.subscriptions).length >= options.maxOperations) {
          return refuse(`A connection may run ${options.maxOperations} operations at once`, 'RATE_LIMITED', { max: options.maxOperations });
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
            if (found === undefined) return refuse('PersistedQueryOnly', 'CANNOT_SEND_PQ_ID_AND_BODY');
            if (found === null) return refuse('PersistedQueryNotFound', 'PERSISTED_QUERY_NOT_IN_LIST');
            query = found;
          }
          const document: DocumentNode = parse(query);
          const errors = validate(schema, document);
          if (errors.length > 0) return errors.map((e: GraphQLError) => options.mapError(e));
          if (getOperationAST(document, payload.operationName)?.operation !== 'subscription') answering.add(`${id}`);
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
          return refuse('The operation could not be read', 'BAD_REQUEST');
        }
      },
      onComplete: (_ctx, id) => {
        answering.delete(id);
        if (answering.size === 0) drained?.();
      },
      onError: (_ctx, id) => {
        answering.delete(id);
        if (answering.size === 0) drained?.();
      },
    },
    wss,
  );
  return async (graceMs) => {
    closing = true;
    if (answering.size > 0) {
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
}
