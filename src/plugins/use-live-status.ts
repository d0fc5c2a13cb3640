import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { GatewayContext } from '../schema/builder.ts';
import { mapErrors } from './use-upstream-result.ts';

/**
 * Each payload of a live subscription says how its poller polls (`extensions.live`: the interval now,
 * the key's pollers sharing its live quota, whether it is backing off) and what the subscription was
 * warned about (`extensions.upstream.warnings`, as a query's answer says it), and its errors keep their codes.
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
              const warnings = [...args.contextValue.warnings];
              const extensions = {
                ...result.extensions,
                ...(status ? { live: status } : {}),
                ...(warnings.length > 0 ? { upstream: { warnings } } : {}),
              };
              setResult({
                ...result,
                ...(result.errors ? { errors: mapErrors(result.errors) } : {}),
                ...(Object.keys(extensions).length > 0 ? { extensions } : {}),
              });
            },
          };
        },
      };
    },
  };
}
