import type { IncomingMessage, Server } from 'node:http';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';

/** The headers a GraphQL-over-WebSocket client may send in its connection_init payload instead. */
const PARAM_HEADERS = ['x-api-key', 'authorization', 'x-organization-id', 'x-request-id'];

/**
 * The caller's headers for an operation over a WebSocket: the upgrade request's, and the
 * `connection_init` payload's (browsers cannot set headers on a WebSocket), which win.
 */
export function socketHeaders(req: IncomingMessage, params: Readonly<Record<string, unknown>> | undefined): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers.set(name, value);
  for (const [name, value] of Object.entries(params ?? {})) {
    const lower = name.toLowerCase();
    const header = lower === 'apikey' ? 'x-api-key' : lower;
    if (PARAM_HEADERS.includes(header) && typeof value === 'string') headers.set(header, value);
  }
  return headers;
}

/** The allow-listed document a subscribe message names (`extensions.persistedQuery.sha256Hash` or `documentId`). */
function trustedQuery(trusted: ReadonlyMap<string, string>, payload: { extensions?: unknown; documentId?: unknown }): string | null {
  const extensions = payload.extensions as { persistedQuery?: { sha256Hash?: unknown } } | undefined;
  const id = extensions?.persistedQuery?.sha256Hash ?? payload.documentId;
  return typeof id === 'string' ? (trusted.get(id) ?? null) : null;
}

interface Enveloped {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

/**
 * GraphQL over WebSocket (the graphql-ws protocol) on the GraphQL endpoint, through the same Yoga
 * pipeline as HTTP: the same schema, plugins (limits, trusted documents, error mapping) and context.
 * Returns a function that closes every socket.
 */
export function useWebSockets<C extends object>(
  server: Server,
  yoga: YogaServerInstance<Record<string, unknown>, C>,
  options: { trusted: ReadonlyMap<string, string> | null },
): () => Promise<void> {
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint });
  const disposable = useServer<Record<string, unknown> | undefined, { request: IncomingMessage }>(
    {
      execute: (args) => (args.rootValue as Enveloped).execute(args) as never,
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args) as never,
      onSubscribe: async (ctx, _id, payload) => {
        const url = `http://${ctx.extra.request.headers.host ?? 'localhost'}${yoga.graphqlEndpoint}`;
        const request = new Request(url, { method: 'POST', headers: socketHeaders(ctx.extra.request, ctx.connectionParams) });
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          request,
          params: payload,
          req: ctx.extra.request,
        });
        let query = payload.query;
        if (options.trusted) {
          // The allow-list holds over WebSocket too: only operations sent by id run.
          const found = trustedQuery(options.trusted, payload);
          if (found === null)
            return [
              new GraphQLError('Only trusted documents run here: send the operation by id', {
                extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' },
              }),
            ];
          query = found;
        }
        let document;
        try {
          document = parse(query);
        } catch (error) {
          return [error instanceof GraphQLError ? error : new GraphQLError('The operation does not parse')];
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        return {
          schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
      },
    },
    wss,
  );
  return async () => {
    await disposable.dispose();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  };
}
