import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { GatewayContext } from '../schema/builder.ts';
import { mapErrors } from './use-upstream-result.ts';

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
