import { GraphQLError, NoSchemaIntrospectionCustomRule, type ValidationRule } from 'graphql';
import { handleStreamOrSingleExecutionResult, isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { GatewayContext } from '../schema/builder.ts';

/** The Federation subgraph SDL is the schema by another name: refused with introspection. */
const NoServiceSdlRule: ValidationRule = (context) => ({
  Field(node) {
    if (node.name.value === '_service' && context.getParentType() === context.getSchema().getQueryType())
      context.reportError(
        new GraphQLError('With introspection off, the subgraph SDL (`_service`) is not served either: compose from subgraph.graphql', {
          nodes: node,
        }),
      );
  },
});

/**
 * Refuses introspection queries and `_service` (production setting); the validation error names the
 * field. Suggestions ("Did you mean MEDIA?") would reveal the schema piece by piece — field, argument,
 * type and input field names and enum values — so every error loses them without a trace (a marker
 * would still say that a near name exists): validation errors, and the errors of variables that do not
 * coerce, which graphql-js (and graphql-jit, which hands those to it) reports at execution.
 */
export function useNoIntrospection(): Plugin<GatewayContext> {
  const strip = (errors: readonly GraphQLError[] | undefined) =>
    errors?.some((e) => SUGGESTION.test(e.message)) ? { errors: errors.map(withoutSuggestion) } : {};
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(NoSchemaIntrospectionCustomRule);
      addValidationRule(NoServiceSdlRule);
      return ({ result, setResult }) => {
        if (result.some((e) => SUGGESTION.test(e.message)))
          setResult(result.map((e) => (e instanceof GraphQLError ? withoutSuggestion(e) : e)));
      };
    },
    onExecute() {
      return {
        onExecuteDone(payload) {
          // Variables are coerced before anything runs: their errors are the result's own (resolvers suggest nothing).
          return handleStreamOrSingleExecutionResult(payload, ({ result, setResult }) => {
            if (result.errors?.some((e) => SUGGESTION.test(e.message))) setResult({ ...result, ...strip(result.errors) });
          });
        },
      };
    },
    onSubscribe() {
      return {
        // A subscription's variables are coerced before it starts: their errors come as its one result.
        onSubscribeResult({ result, setResult }) {
          if (!isAsyncIterable(result)) setResult({ ...result, ...strip(result.errors) });
        },
      };
    },
  };
}

const SUGGESTION = / ?Did you mean [^?]*\?/;

function withoutSuggestion(error: GraphQLError): GraphQLError {
  if (!SUGGESTION.test(error.message)) return error;
  return new GraphQLError(error.message.replace(new RegExp(SUGGESTION.source, 'g'), ''), {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: error.extensions,
  });
}
