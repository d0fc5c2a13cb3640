import { Kind, type ASTNode, type SelectionSetNode, type ValidationContext, type ValidationRule } from 'graphql';
import type { Plugin } from 'graphql-yoga';
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
    const fragmentAliases = new Map<string, number>();

    /** Aliases in a selection, fragments expanded (each fragment counted once per spread, cycles cut). */
    const nested = (selection: SelectionSetNode, path: ReadonlySet<string>): number => {
      let n = 0;
      for (const s of selection.selections) {
        if (s.kind === Kind.FIELD) {
          if (counted(s)) n++;
          if (s.selectionSet) n += nested(s.selectionSet, path);
        } else if (s.kind === Kind.INLINE_FRAGMENT) n += nested(s.selectionSet, path);
        else if (!path.has(s.name.value)) {
          const known = fragmentAliases.get(s.name.value);
          if (known !== undefined) n += known;
          else {
            const fragment = context.getFragment(s.name.value);
            const count = fragment ? nested(fragment.selectionSet, new Set([...path, s.name.value])) : 0;
            fragmentAliases.set(s.name.value, count);
            n += count;
          }
        }
      }
      return n;
    };

    return {
      OperationDefinition(operation) {
        let roots = 0;
        let worst = 0;
        const visitRoot = (selection: SelectionSetNode, path: ReadonlySet<string>): void => {
          for (const s of selection.selections) {
            if (s.kind === Kind.FIELD) {
              if (counted(s)) roots++;
              if (s.selectionSet) worst = Math.max(worst, nested(s.selectionSet, new Set()));
            } else if (s.kind === Kind.INLINE_FRAGMENT) visitRoot(s.selectionSet, path);
            else if (!path.has(s.name.value)) {
              const fragment = context.getFragment(s.name.value);
              if (fragment) visitRoot(fragment.selectionSet, new Set([...path, s.name.value]));
            }
          }
        };
        visitRoot(operation.selectionSet, new Set());
        if (roots > limits.rootAliases) refuse(context, 'rootAliases', limits.rootAliases, roots, operation);
        if (worst > limits.aliases) refuse(context, 'aliases', limits.aliases, worst, operation);
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
