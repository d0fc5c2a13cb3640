import type { DocumentNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { gatewayError } from '../errors.ts';
import { keyless, perOperation, visitFields } from '../document.ts';
import type { GatewayContext } from '../schema/builder.ts';
import { MISSING_KEY_MESSAGE } from '../upstream/session.ts';

/**
 * Whether an operation asks for anything besides introspection (`__typename`, `__schema`, `__type`)
 * and `_service { sdl }` (composition tools ask for it without a key).
 */
export function operationNeedsKey(document: DocumentNode, operationName?: string | null): boolean {
  let needs = false;
  visitFields(document, operationName, (field, atRoot) => {
    if (atRoot && !keyless(field.name.value)) needs = true;
  });
  return needs;
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
