import type { Plugin } from 'graphql-yoga';
import { gatewayError } from '../errors.ts';
import type { GatewayContext } from '../schema/builder.ts';

/** Refuses an operation whose X-Organization-Id is not a plain id, before any upstream call. */
export function useOrganizationHeader(): Plugin<GatewayContext> {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      if (!args.contextValue.organizationRefused) return;
      setResultAndStopExecution({
        errors: [
          gatewayError('BAD_USER_INPUT', 'X-Organization-Id must be an organization id (letters, digits, _ . : -, at most 128)', {
            extensions: { argument: 'X-Organization-Id' },
            status: 400,
          }),
        ],
      });
    },
  };
}
