import { GraphQLError } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { gatewayError } from '../errors.ts';
import type { GatewayContext } from '../schema/builder.ts';

const LIMIT_ERROR = /^(?:Syntax Error: )?(Query depth|Aliases|Token|Directives) limit of (\d+) exceeded(?:, found (\d+))?/;
const LIMIT_NAMES: Record<string, string> = { 'Query depth': 'depth', Aliases: 'aliases', Token: 'tokens', Directives: 'directives' };

/** Gives graphql-armor's refusals a clear message, the code OPERATION_LIMIT_EXCEEDED and HTTP 400. */
export function limitError(error: GraphQLError): GraphQLError {
  const match = LIMIT_ERROR.exec(error.message);
  if (!match) return error;
  const [, what = '', max = '0', found] = match;
  const limit = LIMIT_NAMES[what] ?? what;
  return gatewayError('OPERATION_LIMIT_EXCEEDED', `The operation exceeds the ${limit} limit of ${max}${found ? ` (found ${found})` : ''}`, {
    extensions: { limit, max: Number(max), ...(found ? { found: Number(found) } : {}) },
    status: 400,
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
