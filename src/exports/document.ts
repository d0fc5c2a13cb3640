import { getOperationAST, getVariableValues, GraphQLError, parse, validate, type DocumentNode, type GraphQLSchema } from 'graphql';
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

/** A document checked as startExport checks it: parsed, valid, one operation, its variables, a table. */
export function checked(schema: GraphQLSchema, input: Pick<ExportStart, 'query' | 'variables' | 'operationName'>) {
  let document: DocumentNode;
  try {
    document = parse(input.query);
  } catch (error) {
    throw gatewayError('BAD_USER_INPUT', `The export's query does not parse: ${(error as Error).message}`, {
      extensions: { argument: 'query' },
    });
  }
  const invalid = validate(schema, document);
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
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], input.variables ?? {});
  if (coerced.errors) {
    throw gatewayError('BAD_USER_INPUT', `The export's variables: ${coerced.errors.map((e) => e.message).join('; ')}`, {
      extensions: { argument: 'variables' },
    });
  }
  const projection = project(schema, document, operation, coerced.coerced);
  return { document, operation, projection, variables: coerced.coerced };
}
