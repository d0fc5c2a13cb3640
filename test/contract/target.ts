import { startSimulator, type Simulator } from '../../src/simulator/server.ts';
import { startGateway, type GqlReply } from '../helpers/stack.ts';
import { READONLY } from '../helpers/simulator.ts';

/**
 * Where the contract suite runs: the API `HYPERSTUDY_API_URL` names with the key `HYPERSTUDY_API_KEY`
 * (a real one, for users who hold a key), or else the simulator with a demo key. The gateway runs
 * in front of it over HTTP with its production defaults (cache, quota guard), so that the suite
 * spends little of a real key's hourly quota; every answer reports what it cost, and the tests bound it.
 */
export interface ContractTarget {
  /** Where the upstream is, for messages ("simulator" or the URL). */
  upstream: string;
  gql<D = Record<string, unknown>>(query: string, variables?: Record<string, unknown>): Promise<GqlReply<D>>;
  /** Upstream requests the gateway reported for every operation so far. */
  spent(): number;
  close(): Promise<void>;
}

export async function startContractTarget(): Promise<ContractTarget> {
  const realUrl = process.env.HYPERSTUDY_API_URL;
  let sim: Simulator | null = null;
  let apiUrl: string;
  let key: string;
  if (realUrl) {
    const realKey = process.env.HYPERSTUDY_API_KEY;
    if (!realKey) throw new Error('HYPERSTUDY_API_URL is set: set HYPERSTUDY_API_KEY too (a key with read scopes)');
    apiUrl = realUrl;
    key = realKey;
  } else {
    sim = await startSimulator({ rateLimit: { enabled: true, perHour: 1000, perMinute: 100 } });
    apiUrl = sim.url;
    key = READONLY;
  }
  const { gateway, url } = await startGateway({ HYPERSTUDY_API_URL: apiUrl, CACHE_TTL_MS: '60000' });
  let spent = 0;
  return {
    upstream: realUrl ?? 'simulator',
    async gql(query, variables) {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', 'x-api-key': key },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as GqlReply['body'];
      spent += body.extensions?.upstream?.requests ?? 0;
      return { status: res.status, body } as never;
    },
    spent: () => spent,
    async close() {
      await gateway.close();
      await sim?.close();
    },
  };
}
