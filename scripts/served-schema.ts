/**
 * The schema the gateway serves, as its introspection tells it: the gateway is built as `npm start`
 * builds it, listens on a free port of 127.0.0.1, answers one introspection query over HTTP and stops.
 * schema.graphql is printed from it (scripts/print-schema.ts), so the file is exactly what clients get
 * — the `@defer`/`@stream` definitions included — except Federation's plumbing (`_service`,
 * `_entities` and their types), which subgraph.graphql holds.
 */
import {
  buildClientSchema,
  getIntrospectionQuery,
  GraphQLObjectType,
  GraphQLSchema,
  lexicographicSortSchema,
  printSchema,
  type IntrospectionQuery,
} from 'graphql';
import { loadConfig } from '../src/config.ts';
import { createGateway } from '../src/server.ts';

/** Federation's own root fields and the types only they use. */
const FEDERATION_FIELDS = new Set(['_service', '_entities']);
const FEDERATION_TYPES = new Set(['_Any', '_Entity', '_Service']);

/** Introspects a running gateway at `url` (its /graphql endpoint). */
export async function introspect(url: string): Promise<GraphQLSchema> {
  const query = getIntrospectionQuery({
    descriptions: true,
    directiveIsRepeatable: true,
    specifiedByUrl: true,
    inputValueDeprecation: true,
  });
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query }),
  });
  const body = (await res.json()) as { data?: IntrospectionQuery; errors?: unknown[] };
  if (!body.data) throw new Error(`The gateway did not answer introspection: ${JSON.stringify(body.errors)}`);
  return buildClientSchema(body.data);
}

/** The public schema printed from an introspected one: sorted, without Federation's plumbing. */
export function printPublic(served: GraphQLSchema): string {
  const config = served.toConfig();
  const query = served.getQueryType();
  const types = config.types
    .filter((t) => !FEDERATION_TYPES.has(t.name))
    .map((t) => {
      if (t !== query) return t;
      const fields = Object.fromEntries(Object.entries(query.toConfig().fields).filter(([name]) => !FEDERATION_FIELDS.has(name)));
      return new GraphQLObjectType({ ...query.toConfig(), fields });
    });
  const publicSchema = new GraphQLSchema({
    ...config,
    types,
    query: types.find((t): t is GraphQLObjectType => t.name === query?.name) ?? null,
  });
  return `${printSchema(lexicographicSortSchema(publicSchema))}\n`;
}

/** Builds the gateway, introspects it over HTTP and prints its public schema. */
export async function servedSchemaSdl(): Promise<string> {
  const gateway = createGateway(loadConfig({ LOG_LEVEL: 'silent', HYPERSTUDY_API_URL: 'http://127.0.0.1:9/api/v3' }));
  try {
    const url = await gateway.listen(0, '127.0.0.1');
    return printPublic(await introspect(`${url}/graphql`));
  } finally {
    await gateway.close();
  }
}
