import {
  getOperationAST,
  getVariableValues,
  GraphQLError,
  Kind,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type SelectionSetNode,
} from 'graphql';
import { selectionWalk } from '../document.ts';
import { aliasLimitsRule } from '../plugins/use-alias-limits.ts';
import { gatewayError } from '../errors.ts';
import { project } from '../tables/projection.ts';
import { TableErrors } from '../tables/rows.ts';
import { UpstreamError } from '../upstream/errors.ts';
import type { ExportStart } from './types.ts';

/** A failure's code, message and Retry-After, whatever shape it came in (an upstream error, a table's GraphQL errors). */
export function reasonOf(error: unknown): { code: string; message: string; retryAfter: number | null } {
  const first = error instanceof TableErrors ? error.errors[0] : error;
  const original = first instanceof GraphQLError ? (first.originalError ?? first) : first;
  if (original instanceof UpstreamError) return { code: original.code, message: original.message, retryAfter: original.retryAfter ?? null };
  if (original instanceof GraphQLError) {
    const code = typeof original.extensions.code === 'string' ? original.extensions.code : 'INTERNAL_SERVER_ERROR';
    const retryAfter = typeof original.extensions.retryAfter === 'number' ? original.extensions.retryAfter : null;
    return { code, message: original.message, retryAfter };
  }
  return { code: 'INTERNAL_SERVER_ERROR', message: error instanceof Error ? error.message : String(error), retryAfter: null };
}

/** The operation limits /graphql applies (MAX_TOKENS, MAX_DEPTH, MAX_ALIASES, MAX_ROOT_ALIASES): an export's query has them too. */
export interface DocumentLimits {
  tokens: number;
  depth: number;
  aliases: number;
  rootAliases: number;
}

/** The longest query an export takes (characters): MAX_TOKENS' default of 5,000 tokens fits many times over. */
export const MAX_EXPORT_QUERY_CHARS = 100_000;
/** The most an export's variables may take, as JSON (bytes): they are kept with the job. */
export const MAX_EXPORT_VARIABLES_BYTES = 64 * 1024;
/** Validation errors told (an invalid query could otherwise make an answer of one line per field). */
const MAX_ERRORS = 10;

const tooBig = (argument: string, what: string, max: number) =>
  gatewayError(
    'BAD_USER_INPUT',
    `The export's ${what} ${what === 'variables' ? 'are' : 'is'} too large: at most ${max.toLocaleString('en-US')} ${argument === 'query' ? 'characters' : 'bytes as JSON'}`,
    {
      extensions: { argument, max },
    },
  );

const overLimit = (limit: string, max: number, found: number | null, message: string) =>
  gatewayError('OPERATION_LIMIT_EXCEEDED', `The export's query ${message}`, {
    extensions: { argument: 'query', limit, max, ...(found === null ? {} : { found }) },
  });

/** The deepest field of an operation's selection (a root field is at depth 1), fragments in place. */
function depthOf(document: DocumentNode, selection: SelectionSetNode): number {
  const fragments = new Map(
    document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((f) => [f.name.value, f]),
  );
  const walk = selectionWalk<number>({ none: 0, add: Math.max, field: (f, _parent, inner) => 1 + inner(f.selectionSet) }, (name) =>
    fragments.get(name),
  );
  return walk(selection);
}

/**
 * A document checked as startExport checks it: within the sizes and operation limits /graphql has,
 * parsed, valid, one operation, its variables, a table.
 */
export function checked(schema: GraphQLSchema, input: Pick<ExportStart, 'query' | 'variables' | 'operationName'>, limits?: DocumentLimits) {
  if (input.query.length > MAX_EXPORT_QUERY_CHARS) throw tooBig('query', 'query', MAX_EXPORT_QUERY_CHARS);
  if (input.variables && Buffer.byteLength(JSON.stringify(input.variables)) > MAX_EXPORT_VARIABLES_BYTES) {
    throw tooBig('variables', 'variables', MAX_EXPORT_VARIABLES_BYTES);
  }
  let document: DocumentNode;
  try {
    document = parse(input.query, limits ? { maxTokens: limits.tokens } : undefined);
  } catch (error) {
    const message = (error as Error).message;
    if (limits && /contains more \w+ \d+ tokens/.test(message))
      throw overLimit('tokens', limits.tokens, null, `has more than ${limits.tokens} tokens (MAX_TOKENS)`);
    throw gatewayError('BAD_USER_INPUT', `The export's query does not parse: ${message}`, {
      extensions: { argument: 'query' },
    });
  }
  const rules = limits ? [...specifiedRules, aliasLimitsRule(limits)] : specifiedRules;
  const invalid = validate(schema, document, rules, { maxErrors: MAX_ERRORS });
  const limited = invalid.find((e) => e.extensions.code === 'OPERATION_LIMIT_EXCEEDED');
  if (limited) {
    const { limit, max, found } = limited.extensions as { limit: string; max: number; found: number };
    throw overLimit(limit, max, found, `exceeds ${limited.message.replace(/^The operation exceeds /, '')}`);
  }
  if (invalid.length > 0) {
    throw gatewayError('BAD_USER_INPUT', `The export's query is not valid: ${invalid.map((e) => e.message).join('; ')}`, {
      extensions: { argument: 'query' },
    });
  }
  const operation = getOperationAST(document, input.operationName ?? undefined);
  if (!operation) {
    throw gatewayError('BAD_USER_INPUT', 'The export names no operation of its query (give operationName when it has several)', {
      extensions: { argument: 'operationName' },
    });
  }
  if (limits) {
    const depth = depthOf(document, operation.selectionSet);
    if (depth > limits.depth)
      throw overLimit('depth', limits.depth, depth, `is ${depth} levels deep, past the ${limits.depth} an operation may be (MAX_DEPTH)`);
  }
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], input.variables ?? {});
  if (coerced.errors) {
    throw gatewayError('BAD_USER_INPUT', `The export's variables: ${coerced.errors.map((e) => e.message).join('; ')}`, {
      extensions: { argument: 'variables' },
    });
  }
  let projection;
  try {
    projection = project(schema, document, operation, coerced.coerced);
  } catch (error) {
    // An argument's error, like the others here (a table's own are 400 on /graphql: not for a mutation's field).
    if (!(error instanceof GraphQLError)) throw error;
    const { http: _http, ...extensions } = error.extensions;
    throw new GraphQLError(error.message, { extensions: { ...extensions, argument: 'query' } });
  }
  return { document, operation, projection, variables: coerced.coerced };
}
