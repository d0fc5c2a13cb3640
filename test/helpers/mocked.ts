import { MockAgent } from 'undici';
import { type Gateway } from '../../src/server.ts';
import { startGateway } from './stack.ts';

/** The gateway over HTTP in front of a scripted upstream (undici's MockAgent at http://upstream.test). */
export interface Mocked {
  agent: MockAgent;
  gateway: Gateway;
  url: string;
  close(): Promise<void>;
}

export async function startMocked(env: Record<string, string> = {}): Promise<Mocked> {
  const agent = new MockAgent();
  agent.disableNetConnect();
  agent.enableNetConnect(/127\.0\.0\.1/);
  const { gateway, url } = await startGateway(
    { HYPERSTUDY_API_URL: 'http://upstream.test/api/v3', UPSTREAM_RETRIES: '0', ...env },
    { dispatcher: agent },
  );
  return {
    agent,
    gateway,
    url,
    async close() {
      await gateway.close();
      await agent.close();
    },
  };
}
