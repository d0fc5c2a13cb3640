import type { ASTNode, ValidationContext, ValidationRule } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { selectionWalk } from '../document.ts';
import { gatewayError } from '../errors.ts';
import type { GatewayContext } from '../schema/builder.ts';

/** How many aliases an operation may use, told apart by where they are. */
export interface AliasLimits {
  /** Aliases inside the selection of one root field (MAX_ALIASES). */
  aliases: number;
  /** Aliased root fields (MAX_ROOT_ALIASES). */
  rootAliases: number;
}

/** Aliases of `__typename` cost nothing and are what gateways add; they are not counted (as graphql-armor has it). */
const counted = (node: { alias?: { value: string } | undefined; name: { value: string } }): boolean =>
  node.alias !== undefined && node.name.value !== '__typename';

function refuse(context: ValidationContext, what: 'aliases' | 'rootAliases', max: number, found: number, node: ASTNode): void {
  const name = what === 'aliases' ? 'aliases limit' : 'root aliases limit';
  const message = `The operation exceeds the ${name} of ${max} (found ${found})${what === 'aliases' ? ' under one root field' : ''}`;
  context.reportError(
    gatewayError('OPERATION_LIMIT_EXCEEDED', message, { nodes: node, extensions: { limit: what, max, found }, status: 400 }),
  );
}

/**
 * Alias limits that tell batching from bombs. An alias below the root repeats its field under every
 * parent, so the aliases inside one root field multiply that field's work (and response): they are
 * bounded per root field. Aliased root fields only add up — each is one lookup, counted by the
 * upstream budget estimate, and repeated identical reads are answered once per operation — and they
 * are what batching gateways send (schema stitching merges one aliased root field per delegated
 * entity into one request): they have a bound of their own.
 */
export function aliasLimitsRule(limits: AliasLimits): ValidationRule {
  return (context) => {
    const fragments = (name: string) => context.getFragment(name);
    /** Aliases in a selection, fragments expanded (each fragment counted once per spread). */
    const nested = selectionWalk<number>(
      { none: 0, add: (a, b) => a + b, field: (f, _parent, walk) => (counted(f) ? 1 : 0) + walk(f.selectionSet) },
      fragments,
    );
    /** Aliased root fields, and the most aliases inside one root field. */
    const roots = selectionWalk<{ roots: number; worst: number }>(
      {
        none: { roots: 0, worst: 0 },
        add: (a, b) => ({ roots: a.roots + b.roots, worst: Math.max(a.worst, b.worst) }),
        field: (f) => ({ roots: counted(f) ? 1 : 0, worst: nested(f.selectionSet) }),
      },
      fragments,
    );
    return {
      OperationDefinition(operation) {
        const found = roots(operation.selectionSet);
        if (found.roots > limits.rootAliases) refuse(context, 'rootAliases', limits.rootAliases, found.roots, operation);
        if (found.worst > limits.aliases) refuse(context, 'aliases', limits.aliases, found.worst, operation);
      },
    };
  };
}

/** Refuses, at validation (before any upstream call), operations past the alias limits. */
export function useAliasLimits(limits: AliasLimits): Plugin<GatewayContext> {
  const rule = aliasLimitsRule(limits);
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(rule);
    },
  };
}
