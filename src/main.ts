import { ConfigError, loadConfig } from './config.ts';
import { createGateway } from './server.ts';

try {
  const config = loadConfig();
  const gateway = createGateway(config);
  const url = await gateway.listen();
  gateway.logger.info({ url: `${url}/graphql`, upstream: config.apiUrl, planner: config.planner }, 'listening');
  const stop = (): void => void gateway.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
}
