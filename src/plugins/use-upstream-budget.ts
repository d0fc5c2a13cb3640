import { print, type DocumentNode, type FieldNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { gatewayError } from '../errors.ts';
import { keyless, perOperation, visitFields } from '../document.ts';
import type { GatewayContext } from '../schema/builder.ts';
import { LISTING_BY_FIELD } from '../spec/data-types.ts';

/**
 * The fewest upstream requests an operation can cost, however well planned: one per root lookup and
 * one per distinct list (field and arguments) it selects.
 */
export function minimumUpstreamRequests(document: DocumentNode, operationName?: string | null): number {
  const lists = new Set<string>();
  const roots: FieldNode[] = [];
  const operation = visitFields(document, operationName, (field, atRoot) => {
    if (atRoot ? keyless(field.name.value) : field.name.value.startsWith('__')) return;
    if (atRoot) roots.push(field);
    else if (LISTING_BY_FIELD.has(field.name.value))
      lists.add(
        `${field.name.value}(${(field.arguments ?? [])
          .map((a) => print(a))
          .sort()
          .join(',')})`,
      );
  });
  return (operation?.operation === 'query' ? roots.length : 0) + lists.size;
}

/** Refuses, before any upstream call, an operation that could never fit the per-operation budget. */
export function useUpstreamBudget(budget: number, onRefuse: () => void = () => undefined): Plugin<GatewayContext> {
  const neededBy = perOperation(minimumUpstreamRequests);
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const needed = neededBy(args.document, args.operationName);
      if (needed <= budget) return;
      onRefuse();
      setResultAndStopExecution({
        errors: [
          gatewayError(
            'UPSTREAM_BUDGET_EXCEEDED',
            `This operation needs at least ${needed} upstream requests; the budget of one operation is ${budget}`,
            {
              extensions: { needed, budget },
            },
          ),
        ],
      });
    },
  };
}
