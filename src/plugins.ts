import {
  getOperationAST,
  GraphQLError,
  Kind,
  NoSchemaIntrospectionCustomRule,
  print,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationRule,
} from 'graphql';
import { handleStreamOrSingleExecutionResult, isAsyncIterable, maskError as defaultMaskError, type Plugin } from 'graphql-yoga';
import type { GatewayContext } from './schema/builder.ts';
import { LISTING_BY_FIELD } from './spec/data-types.ts';
import { isMappedUpstreamError, toGraphQLError } from './schema/errors.ts';
import { UpstreamError } from './upstream/errors.ts';
import { MISSING_KEY_MESSAGE } from './upstream/session.ts';

/**
 * Visits every field an operation selects, fragments resolved (each once along a path), telling
 * whether the field is at the root. Returns the operation, or null when the document has none.
 */
function visitFields(
  document: DocumentNode,
  operationName: string | null | undefined,
  visit: (field: FieldNode, atRoot: boolean) => void,
): OperationDefinitionNode | null {
  const operation = getOperationAST(document, operationName ?? undefined);
  if (!operation) return null;
  const fragments = new Map(
    document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]),
  );
  const walk = (selection: SelectionSetNode, atRoot: boolean, seen: ReadonlySet<string>): void => {
    for (const s of selection.selections) {
      if (s.kind === Kind.FIELD) {
        visit(s, atRoot);
        if (s.selectionSet) walk(s.selectionSet, false, seen);
      } else if (s.kind === Kind.INLINE_FRAGMENT) walk(s.selectionSet, atRoot, seen);
      else if (!seen.has(s.name.value)) {
        const fragment = fragments.get(s.name.value);
        if (fragment) walk(fragment.selectionSet, atRoot, new Set([...seen, s.name.value]));
      }
    }
  };
  walk(operation.selectionSet, true, new Set());
  return operation;
}

/** Root fields answered without the upstream: introspection, and the Federation subgraph SDL. */
const keyless = (name: string): boolean => name.startsWith('__') || name === '_service';

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
        errors: [new GraphQLError(MISSING_KEY_MESSAGE, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } })],
      });
    },
  };
}

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

/**
 * A refused key answers HTTP 401 like a missing one: the operation could read nothing. (Other codes
 * keep 200 with partial data, as GraphQL over HTTP has it.)
 */
function unauthenticated401(error: GraphQLError): GraphQLError {
  if (error.extensions.code !== 'UNAUTHENTICATED' || error.extensions.http) return error;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: { ...error.extensions, http: { status: 401 } },
  });
}

/**
 * An execution error without a path and without a code is about the request itself — a variable that
 * does not coerce ("yesterday" as a DateTime, a missing required variable): the caller's mistake.
 */
function requestErrorCode(error: GraphQLError): GraphQLError {
  if (error.path !== undefined || error.extensions.code !== undefined) return error;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    originalError: error.originalError,
    extensions: { ...error.extensions, code: 'BAD_USER_INPUT' },
  });
}

const mapUpstream = (error: GraphQLError): GraphQLError =>
  error.originalError instanceof UpstreamError && !isMappedUpstreamError(error) ? toGraphQLError(error.originalError, error) : error;

const mapErrors = (errors: readonly GraphQLError[]): GraphQLError[] =>
  errors.map(mapUpstream).map(unauthenticated401).map(requestErrorCode);

/**
 * Once an operation's execution is done: maps upstream errors to their codes (expected outcomes, not
 * faults to log) and reports what it cost upstream in `extensions.upstream` (with the upstream's
 * warnings about listings it read), and, when asked with `X-Explain-Plan: 1`, the planner's decisions in
 * `extensions.plan`; then cancels what it still has going upstream. An incremental response (`@defer`,
 * `@stream`) has its errors mapped in every payload and the cost on its final payload, when everything
 * it cost is known (and only then is it cancelled). Register it before the plugins that report on results.
 */
export function useUpstreamResult(): Plugin<GatewayContext> {
  return {
    onExecute({ args }) {
      const ctx = args.contextValue;
      const report = () => {
        const warnings = [...ctx.warnings];
        return {
          upstream: { ...ctx.session.cost, ...(warnings.length > 0 ? { warnings } : {}) },
          ...(ctx.explain ? { plan: ctx.loaders.planner.explain() } : {}),
        };
      };
      return {
        onExecuteDone(payload) {
          return handleStreamOrSingleExecutionResult(payload, ({ result, setResult }) => {
            const incremental = 'incremental' in result ? result.incremental : undefined;
            const final = !('hasNext' in result) || !result.hasNext;
            // Over: what it still has going upstream is cancelled, and its cost is final (the report reads the same).
            if (final) ctx.session.end();
            setResult({
              ...result,
              ...(result.errors ? { errors: mapErrors(result.errors) } : {}),
              ...(incremental ? { incremental: incremental.map((r) => (r.errors ? { ...r, errors: mapErrors(r.errors) } : r)) } : {}),
              ...(final ? { extensions: { ...result.extensions, ...report() } } : {}),
            });
          });
        },
      };
    },
  };
}

/** Upstream errors keep their code, message and details; anything unexpected is masked. */
export function maskError(error: unknown, message: string, isDev?: boolean): Error {
  if (isMappedUpstreamError(error)) return error as GraphQLError;
  const original = error instanceof GraphQLError ? error.originalError : error;
  if (original instanceof UpstreamError) return toGraphQLError(original, error instanceof GraphQLError ? error : undefined);
  return defaultMaskError(error, message, isDev);
}

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

/**
 * What a document's operations need, worked out once per document (Yoga hands the same document
 * object for the same text) and operation name.
 */
function perOperation<T>(compute: (document: DocumentNode, operationName: string | null | undefined) => T) {
  const known = new WeakMap<DocumentNode, Map<string, T>>();
  return (document: DocumentNode, operationName: string | null | undefined): T => {
    let byName = known.get(document);
    if (!byName) known.set(document, (byName = new Map()));
    const name = operationName ?? '';
    if (byName.has(name)) return byName.get(name) as T;
    const value = compute(document, operationName);
    byName.set(name, value);
    return value;
  };
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
          new GraphQLError(`This operation needs at least ${needed} upstream requests; the budget of one operation is ${budget}`, {
            extensions: { code: 'UPSTREAM_BUDGET_EXCEEDED', needed, budget },
          }),
        ],
      });
    },
  };
}

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

const LIMIT_ERROR = /^(?:Syntax Error: )?(Query depth|Aliases|Token|Directives) limit of (\d+) exceeded(?:, found (\d+))?/;
const LIMIT_NAMES: Record<string, string> = { 'Query depth': 'depth', Aliases: 'aliases', Token: 'tokens', Directives: 'directives' };

/** Gives graphql-armor's refusals a clear message, the code OPERATION_LIMIT_EXCEEDED and HTTP 400. */
export function limitError(error: GraphQLError): GraphQLError {
  const match = LIMIT_ERROR.exec(error.message);
  if (!match) return error;
  const [, what = '', max = '0', found] = match;
  const limit = LIMIT_NAMES[what] ?? what;
  return new GraphQLError(`The operation exceeds the ${limit} limit of ${max}${found ? ` (found ${found})` : ''}`, {
    extensions: {
      code: 'OPERATION_LIMIT_EXCEEDED',
      limit,
      max: Number(max),
      ...(found ? { found: Number(found) } : {}),
      http: { status: 400 },
    },
  });
}

export function useLimitErrors(): Plugin<GatewayContext> {
  return {
    onResultProcess({ result, setResult }) {
      const one = (r: unknown): unknown => {
        const errors = (r as { errors?: readonly GraphQLError[] }).errors;
        if (!errors?.some((e) => LIMIT_ERROR.test(e.message))) return r;
        return { ...(r as object), errors: errors.map((e) => (e instanceof GraphQLError ? limitError(e) : e)) };
      };
      if (Array.isArray(result)) setResult(result.map(one) as typeof result);
      else if (!isAsyncIterable(result)) setResult(one(result) as typeof result);
    },
  };
}

/**
 * Each payload of a live subscription says how its poller polls (`extensions.live`: the interval now,
 * the key's pollers sharing its live quota, whether it is backing off), and its errors keep their codes.
 */
export function useLiveStatus(): Plugin<GatewayContext> {
  return {
    onSubscribe({ args }) {
      return {
        onSubscribeResult({ result, setResult }) {
          // Refused at once (FORBIDDEN, NOT_FOUND, …): the errors keep their codes, and are not "unexpected".
          if (!isAsyncIterable(result)) {
            if (result.errors) setResult({ ...result, errors: mapErrors(result.errors) });
            return undefined;
          }
          return {
            onNext({ result, setResult }) {
              const status = args.contextValue.live.status?.();
              setResult({
                ...result,
                ...(result.errors ? { errors: mapErrors(result.errors) } : {}),
                ...(status ? { extensions: { ...result.extensions, live: status } } : {}),
              });
            },
          };
        },
      };
    },
  };
}
