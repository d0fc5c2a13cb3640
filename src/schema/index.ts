import { printSubgraphSchema } from '@apollo/subgraph';
import { EntityType, entitiesField, serviceField } from '@apollo/subgraph/dist/types.js';
import { hasResolvableKey } from '@pothos/plugin-federation';
import {
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLUnionType,
  isObjectType,
  lexicographicSortSchema,
  specifiedDirectives,
} from 'graphql';
import { TableDirective } from '../tables/directive.ts';
import { builder } from './builder.ts';
import { canonicalOutputs, settleListItems } from '../plugins/use-jit.ts';
import { boundJsonOutputs } from './json.ts';
import './scalars.ts';
import './records.ts';
import './data.ts';
import './experiment.ts';
import './room.ts';
import './participant.ts';
import './query.ts';
import './experiment-input.ts';
import './mutations.ts';
import './agents.ts';
import './variables.ts';
import './counts.ts';
import './deployments.ts';
import './personas.ts';
import './subscriptions.ts';
import './exports.ts';

/**
 * The public API as built (without the Federation fields), built on each call: nothing the gateway runs
 * needs it, and building it at start cost every process some 0.1 s of CPU. schema.graphql is printed
 * from what the gateway serves instead (scripts/served-schema.ts): this plus the plugins' directives
 * (@defer, @stream).
 */
export function buildPublicSchema(): GraphQLSchema {
  return builder.toSchema({ sortSchema: false, directives: [...specifiedDirectives, TableDirective] });
}

/**
 * The Federation directives the types use, which the subgraph's `@link` imports. Given, Pothos does
 * not build the whole schema once more to find them (some 8% of a process's CPU to listening);
 * test/federation.test.ts checks that they are what it finds.
 */
export const FEDERATION_DIRECTIVES = ['@key'];

/**
 * The public API as a Federation v2 subgraph: what Pothos's `builder.toSubGraphSchema` builds (its
 * federation plugin, 4.4), the same schema, except that `_service { sdl }` prints its SDL on the first
 * request for it instead of at start. Pothos printed it as it built the schema, and printing a
 * subgraph's SDL validates it as Federation does, for a field only a Federation router asks for: a
 * gateway process took 920 ms of CPU to listening with it, 775 ms without (the bundle of
 * test/helpers/bundle.ts, the quiet 2-core machine, median of 6). test/federation.test.ts checks the
 * SDL it answers, the subgraph it composes into, and that this is the schema Pothos builds.
 */
export function buildSubgraphSchema(): GraphQLSchema {
  const built = builder.toSchema({
    directives: [...specifiedDirectives, TableDirective],
    extensions: {
      directives: [{ name: 'link', args: { url: 'https://specs.apollo.dev/federation/v2.6', import: FEDERATION_DIRECTIVES } }],
    },
  });
  const queryType = built.getQueryType();
  const types = built.getTypeMap();
  const entityTypes = Object.values(types).filter((type) => isObjectType(type) && hasResolvableKey(type));
  let sdl: string | undefined;
  const query: GraphQLObjectType = new GraphQLObjectType({
    name: queryType?.name ?? 'Query',
    description: queryType?.description,
    astNode: queryType?.astNode,
    extensions: queryType?.extensions,
    fields: () => ({
      ...(entityTypes.length > 0 && {
        _entities: {
          ...entitiesField,
          type: new GraphQLNonNull(
            new GraphQLList(
              new GraphQLUnionType({
                ...EntityType.toConfig(),
                types: entityTypes.filter(isObjectType).map((type) => (type === queryType ? query : type)),
              }),
            ),
          ),
        },
      }),
      _service: { ...serviceField, resolve: () => ({ sdl: (sdl ??= printSubgraphSchema(sorted)) }) },
      ...queryType?.toConfig().fields,
    }),
  });
  const sorted = lexicographicSortSchema(
    new GraphQLSchema({
      query,
      mutation: built.getMutationType(),
      subscription: built.getSubscriptionType(),
      extensions: built.extensions,
      directives: built.getDirectives(),
      extensionASTNodes: built.extensionASTNodes,
      types: [...Object.values(types).filter((type) => type.name !== 'Query'), query],
    }),
  );
  return sorted;
}

/**
 * What the gateway serves: the public API as a Federation v2 subgraph, always on — plus `_service { sdl }`
 * (answered without a key) and `_entities` (Experiment, Room, Participant, Deployment and Persona,
 * keyed by their upstream ids; see `asEntity` in each type's file).
 */
export const schema = settleListItems(canonicalOutputs(boundJsonOutputs(buildSubgraphSchema())));

/** The subgraph SDL that `_service { sdl }` answers and subgraph.graphql prints (with @link and @key), printed on each call. */
export function printSubgraphSdl(): string {
  return printSubgraphSchema(schema);
}
