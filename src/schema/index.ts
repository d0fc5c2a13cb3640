import { printSubgraphSchema } from '@apollo/subgraph';
import { specifiedDirectives, type GraphQLSchema } from 'graphql';
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
 * What the gateway serves: the public API as a Federation v2 subgraph, always on — plus `_service { sdl }`
 * (answered without a key) and `_entities` (Experiment, Room, Participant, Deployment and Persona,
 * keyed by their upstream ids; see `asEntity` in each type's file).
 */
export const schema = settleListItems(
  canonicalOutputs(
    boundJsonOutputs(
      builder.toSubGraphSchema({ federationDirectives: FEDERATION_DIRECTIVES, directives: [...specifiedDirectives, TableDirective] }),
    ),
  ),
);

/** The subgraph SDL that `_service { sdl }` answers and subgraph.graphql prints (with @link and @key), printed on each call. */
export function printSubgraphSdl(): string {
  return printSubgraphSchema(schema);
}
