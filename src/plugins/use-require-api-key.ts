import { getOperationAST, type DocumentNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { fragmentsOf, keyless, perOperation, selectionWalk } from '../document.ts';
import { gatewayError } from '../errors.ts';
import type { GatewayContext } from '../schema/builder.ts';
import { MISSING_KEY_MESSAGE } from '../upstream/session.ts';

/**
 * Whether an operation asks for anything besides introspection (`__typename`, `__schema`, `__type`)
 * and `_service { sdl }` (composition tools ask for it without a key).
 */
export function operationNeedsKey(document: DocumentNode, operationName?: string | null): boolean {
  const operation = getOperationAST(document, operationName ?? undefined);
  const rootFields = selectionWalk<boolean>(
    { none: false, add: (a, b) => a || b, field: (f) => !keyless(f.name.value) },
    fragmentsOf(document),
  );
  return operation ? rootFields(operation.selectionSet) : false;
}

/** Refuses an operation that needs data when the caller sent no key, before any upstream call. */
export function useRequireApiKey(): Plugin<GatewayContext> {
  const needsKey = perOperation(operationNeedsKey);
  return {
    onExecute({ args, setResultAndStopExecution }) {
      if (args.contextValue.authenticated || !needsKey(args.document, args.operationName)) return;
      setResultAndStopExecution({
        errors: [gatewayError('UNAUTHENTICATED', MISSING_KEY_MESSAGE, { status: 401 })],
      });
    },
  };
}
