import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { GatewayContext } from '../schema/builder.ts';

/** Refuses an operation whose X-Organization-Id is not a plain id, before any upstream call. */
export function useOrganizationHeader(): Plugin<GatewayContext> {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      if (!args.contextValue.organizationRefused) return;
      setResultAndStopExecution({
        errors: [
          new GraphQLError('X-Organization-Id must be an organization id (letters, digits, _ . : -, at most 128)', {
            extensions: { code: 'BAD_USER_INPUT', argument: 'X-Organization-Id', http: { status: 400 } },
          }),
        ],
      });
    },
  };
}
