/**
 * The ceiling for small queries: a bare graphql-yoga server answering `{ hello }`, on the same Node and
 * the same HTTP stack as the gateway (node:http with Yoga's request listener), nothing else.
 */
import type { RequestListener } from 'node:http';
import { createSchema, createYoga } from 'graphql-yoga';

export default function helloWorld(): RequestListener {
  const yoga = createYoga({
    schema: createSchema({ typeDefs: 'type Query { hello: String! }', resolvers: { Query: { hello: () => 'world' } } }),
  });
  return (req, res) => void yoga(req, res);
}
