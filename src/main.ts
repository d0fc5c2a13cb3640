import { ConfigError, loadConfig } from './config.ts';
import { createGateway } from './server.ts';

try {
  const config = loadConfig();
  const gateway = createGateway(config);
  const url = await gateway.listen();
  gateway.logger.info(
    { url: `${url}/graphql`, upstream: config.apiUrl, planner: config.planner, nodeEnv: process.env.NODE_ENV ?? null },
    'listening',
  );
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) process.exit(1); // a second signal: stop now
    stopping = true;
    gateway.logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down');
    void gateway.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
}
