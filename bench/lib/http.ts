import { request, type Dispatcher } from 'undici';

export const KEYS = {
  full: 'hst_test_demo_full',
  readonly: 'hst_test_demo_readonly',
  eventsOnly: 'hst_test_demo_events',
} as const;

export interface TextReply {
  status: number;
  text: string;
}

/** One HTTP request over undici (the global keep-alive agent unless `dispatcher` is given); the body read whole. */
export async function send(
  url: string,
  init: { method?: Dispatcher.HttpMethod; headers?: Record<string, string>; body?: string; dispatcher?: Dispatcher } = {},
): Promise<TextReply> {
  const res = await request(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: init.headers,
    body: init.body,
    dispatcher: init.dispatcher,
  });
  return { status: res.statusCode, text: await res.body.text() };
}

/** `send`, the body read whole as bytes (one buffer, not decoded). */
export async function sendForBytes(
  url: string,
  init: { headers?: Record<string, string>; dispatcher?: Dispatcher } = {},
): Promise<{ status: number; bytes: Buffer }> {
  const res = await request(url, { method: 'GET', headers: init.headers, dispatcher: init.dispatcher });
  return { status: res.statusCode, bytes: Buffer.from(await res.body.arrayBuffer()) };
}

export async function getJson<T>(url: string): Promise<T> {
  const reply = await send(url);
  if (reply.status !== 200) throw new Error(`GET ${url}: HTTP ${reply.status} ${reply.text.slice(0, 200)}`);
  return JSON.parse(reply.text) as T;
}

/** The body of a GraphQL POST, as every client of the bench sends it. */
export function graphqlRequest(query: string, variables: Record<string, unknown> = {}, key: string = KEYS.full) {
  return {
    method: 'POST' as const,
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify({ query, variables }),
  };
}

export interface GraphqlAnswer {
  data?: unknown;
  errors?: { message: string; extensions?: { code?: string } }[];
  extensions?: { upstream?: { requests?: number; retries?: number } };
}

/** A GraphQL operation against `origin`'s `/graphql`, timed from sending to the parsed answer. */
export async function timedGraphql(
  origin: string,
  query: string,
  variables: Record<string, unknown> = {},
  key: string = KEYS.full,
): Promise<{ ms: number; status: number; answer: GraphqlAnswer }> {
  const started = performance.now();
  const reply = await send(`${origin}/graphql`, graphqlRequest(query, variables, key));
  const answer = JSON.parse(reply.text) as GraphqlAnswer;
  return { ms: performance.now() - started, status: reply.status, answer };
}
