import { handleStreamOrSingleExecutionResult, type Plugin } from 'graphql-yoga';

/** What this gateway reported in `extensions.upstream`, summed over the requests of one stitched operation. */
export interface StitchedUpstreamCost {
  requests: number;
  pages: number;
  cacheHits: number;
}

type Fetch = (url: string, init?: RequestInit, context?: object) => Promise<Response>;

/**
 * For a schema-stitching (or any proxying) gateway that delegates to this one: keeps what each answer
 * of this gateway cost upstream (its `extensions.upstream`, which a proxy drops), summed per stitched
 * operation, and reports the sum in the stitched answer's own `extensions.upstream`.
 *
 * ```ts
 * const cost = createStitchedUpstreamCost();
 * const executor = buildHTTPExecutor({ endpoint, headers, fetch: cost.fetch });
 * const yoga = createYoga({ schema: stitchSchemas({ subschemas: [{ schema, executor, batch: true, merge }] }), plugins: [cost.plugin()] });
 * ```
 * Operations are told apart by their context object (the executor's third `fetch` argument), held weakly.
 */
export function createStitchedUpstreamCost(send: Fetch = (url, init) => fetch(url, init)): { fetch: Fetch; plugin: () => Plugin } {
  const costs = new WeakMap<object, StitchedUpstreamCost>();
  return {
    async fetch(url, init, context) {
      const response = await send(url, init, context);
      if (context && response.headers.get('content-type')?.includes('json')) {
        const { extensions } = (await response.clone().json()) as { extensions?: { upstream?: Partial<StitchedUpstreamCost> } };
        const add = extensions?.upstream;
        if (add) {
          const sum = costs.get(context) ?? { requests: 0, pages: 0, cacheHits: 0 };
          costs.set(context, {
            requests: sum.requests + (add.requests ?? 0),
            pages: sum.pages + (add.pages ?? 0),
            cacheHits: sum.cacheHits + (add.cacheHits ?? 0),
          });
        }
      }
      return response;
    },
    plugin: () => ({
      onExecute: ({ args }) => ({
        onExecuteDone: (payload) =>
          handleStreamOrSingleExecutionResult(payload, ({ result, setResult }) => {
            const upstream = costs.get(args.contextValue as object);
            if (upstream) setResult({ ...result, extensions: { ...result.extensions, upstream } });
          }),
      }),
    }),
  };
}
