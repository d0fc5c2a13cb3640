import { getOperationAST, print, type DocumentNode, type FieldNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { fragmentsOf, keyless, perOperation, selectionWalk } from '../document.ts';
import { gatewayError } from '../errors.ts';
import type { GatewayContext } from '../schema/builder.ts';
import { LISTING_BY_FIELD } from '../spec/data-types.ts';

/**
 * The fewest upstream requests an operation can cost, however well planned: one per root lookup and
 * one per distinct list (field and arguments) it selects.
 */
export function minimumUpstreamRequests(document: DocumentNode, operationName?: string | null): number {
  const operation = getOperationAST(document, operationName ?? undefined);
  if (!operation) return 0;
  const fragments = fragmentsOf(document);
  /** The distinct lists (field and arguments) selected below the root. */
  const lists = selectionWalk<ReadonlySet<string>>(
    {
      none: NONE,
      add: union,
      field: (f, _parent, walk) => union(LISTING_BY_FIELD.has(f.name.value) ? new Set([listKey(f)]) : NONE, walk(f.selectionSet)),
    },
    fragments,
  );
  /** The root lookups, and the lists below them. */
  const roots = selectionWalk<{ lookups: number; lists: ReadonlySet<string> }>(
    {
      none: { lookups: 0, lists: NONE },
      add: (a, b) => ({ lookups: a.lookups + b.lookups, lists: union(a.lists, b.lists) }),
      field: (f) => ({ lookups: keyless(f.name.value) ? 0 : 1, lists: lists(f.selectionSet) }),
    },
    fragments,
  );
  const needed = roots(operation.selectionSet);
  return (operation.operation === 'query' ? needed.lookups : 0) + needed.lists.size;
}

const NONE: ReadonlySet<string> = new Set();

const union = (a: ReadonlySet<string>, b: ReadonlySet<string>): ReadonlySet<string> =>
  b.size === 0 ? a : a.size === 0 ? b : new Set([...a, ...b]);

const listKey = (field: FieldNode): string =>
  `${field.name.value}(${(field.arguments ?? [])
    .map((a) => print(a))
    .sort()
    .join(',')})`;

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
