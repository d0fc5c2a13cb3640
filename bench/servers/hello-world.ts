/**
 * The ceiling for small queries: a bare graphql-yoga server answering `{ hello }`, on the same Node and
 * the same HTTP stack as the gateway (node:http with Yoga's request listener), nothing else. With
 * `{ bodyLimit: false }`, Yoga's own request-body limit is off, as in the gateway (which bounds bodies
 * before Yoga): Yoga otherwise pipes every request body through a stream of its own.
 */
import type { RequestListener } from 'node:http';
import { createSchema, createYoga } from 'graphql-yoga';

export default function helloWorld(options: { bodyLimit?: boolean } = {}): RequestListener {
  const yoga = createYoga({
    schema: createSchema({ typeDefs: 'type Query { hello: String! }', resolvers: { Query: { hello: () => 'world' } } }),
    ...(options.bodyLimit === false ? { maxRequestBodySize: false } : {}),
  });
  return (req, res) => void yoga(req, res);
}
