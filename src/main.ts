import './runtime-check.ts';
import cluster from 'node:cluster';
import { ConfigError, configWarnings, loadConfig, type GatewayConfig } from './config.ts';

const USAGE = `npm start
  The gateway alone, configured by environment variables, each with its default and meaning in
  docs/configuration.md (HYPERSTUDY_API_URL: the upstream, by default the real HyperStudy API; PORT,
  HOST, WORKERS, REDIS_URL, …); it takes no flags. npm run demo runs it on the simulator with seeded data.`;

if (process.argv.slice(2).some((a) => a === '--help' || a === '-h')) {
  console.log(USAGE);
  process.exit(0);
}

const config = configOrExit();

// The gateway's modules load once the usage and the configuration are settled: `--help` and a bad
// setting answer at once.
const [{ runPrimary, shareMetrics, workerDeps }, { createLogger }, { ListenError }, { createGateway }] = await Promise.all([
  import('./cluster.ts'),
  import('./observability.ts'),
  import('./http/server.ts'),
  import('./server.ts'),
]);

try {
  // WORKERS > 1: this process only runs the workers (src/cluster.ts), each of which serves below.
  if (config.workers > 1 && cluster.isPrimary) runPrimary(config, createLogger(config.logLevel));
  else await serve(config);
} catch (error) {
  console.error(error instanceof ListenError ? error.message : error);
  process.exit(1);
}

function configOrExit(): GatewayConfig {
  try {
    return loadConfig();
  } catch (error) {
    console.error(error instanceof ConfigError ? error.message : error);
    process.exit(1);
  }
}

async function serve(config: GatewayConfig): Promise<void> {
  const worker = cluster.isWorker ? workerDeps() : undefined;
  const logger = worker ? createLogger(config.logLevel).child({ worker: worker.id }) : undefined;
  const gateway = createGateway(config, { worker, logger });
  if (worker) shareMetrics(gateway.metrics.registry);
  const url = await gateway.listen();
  gateway.logger.info(
    {
      url: `${url}/graphql`,
      upstream: config.upstream.apiUrl,
      planner: config.planner,
      nodeEnv: process.env.NODE_ENV ?? null,
      ...(worker ? { pid: process.pid } : {}),
    },
    'listening',
  );
  for (const warning of configWarnings(config)) gateway.logger.warn({ setting: 'HYPERSTUDY_API_URL' }, warning);
  let stopping = false;
  const stop = (signal: string): void => {
    // A second signal: stop now (a worker leaves that to the primary, which may signal it too).
    if (stopping && !worker) process.exit(1);
    if (stopping) return;
    stopping = true;
    gateway.logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down');
    void gateway.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
