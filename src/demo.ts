/**
 * `npm run demo`: the simulator with seeded data and the gateway in front of it, in one process.
 * Simulator flags pass through (`npm run demo -- --rooms 20 --latency-ms 20`; `--live` for data arriving over
 * time); the gateway honours PORT and the other variables of docs/configuration.md, except HYPERSTUDY_API_URL, which
 * points at the simulator.
 */
import './runtime-check.ts';
import { ConfigError, loadConfig } from './config.ts';
import { describeSimulator, parseSimulatorArgs, SIMULATOR_FLAGS } from './simulator/cli.ts';
import { startSimulator } from './simulator/server.ts';

const USAGE = `npm run demo [-- flags]
  The HyperStudy API simulator with seeded data (on SIMULATOR_PORT, default 4010) and the gateway in front
  of it (on PORT, default 4000), in one process. The gateway reads every variable of the configuration
  reference but HYPERSTUDY_API_URL (the simulator's) and WORKERS (1). Flags go to the simulator:
  ${SIMULATOR_FLAGS}`;

if (process.argv.slice(2).some((a) => a === '--help' || a === '-h')) {
  console.log(USAGE);
  process.exit(0);
}

// The gateway's modules load after the usage: `--help` answers sooner.
const { createGateway } = await import('./server.ts');

try {
  const simOptions = parseSimulatorArgs(['--port', process.env.SIMULATOR_PORT ?? '4010', ...process.argv.slice(2)]);
  const sim = await startSimulator(simOptions).catch((error: NodeJS.ErrnoException) => {
    throw error.code === 'EADDRINUSE'
      ? new Error(`Port ${simOptions.port} (the simulator's) is in use: stop what listens there, or set SIMULATOR_PORT to another port`)
      : error;
  });
  // One process: the demo runs no workers (WORKERS would only split its limits).
  // On this machine only unless HOST says otherwise: the demo keys are public.
  const config = loadConfig({
    GRAPHIQL_EXAMPLE_KEY: 'hst_test_demo_full',
    HOST: '127.0.0.1',
    ...process.env,
    HYPERSTUDY_API_URL: sim.url,
    WORKERS: '1',
  });
  const gateway = createGateway(config);
  const url = await gateway.listen();
  console.log(describeSimulator(sim.url, simOptions));
  console.log('');
  if (config.trustedDocuments !== null) {
    // Only the manifest's operations run: no GraphiQL queries, no curl with a document's text.
    console.log(`GraphQL:  ${url}/graphql  runs only the trusted documents of ${config.trustedDocuments}, sent by id`);
    console.log(`          (npm run example shows a client that does; a document's text answers PERSISTED_QUERY_ONLY)`);
  } else {
    if (config.graphiql)
      console.log(
        `GraphiQL: ${url}/graphql  (open it in a browser; the Headers tab holds {"X-API-Key": "${config.graphiqlExampleKey ?? 'hst_test_demo_full'}"})`,
      );
    console.log(`Try:      curl -s ${url}/graphql -H 'content-type: application/json' -H 'X-API-Key: hst_test_demo_full' \\`);
    console.log(`            -d '{"query":"{ experiments { edges { node { experimentId name roomCount } } } }"}'`);
  }
  if (sim.live) {
    console.log(`Live:     data arrives in the active rooms; run again to see it (answers are cached ${config.cache.ttlMs} ms):`);
    console.log(
      `            { experiment(id: "exp_movie01") { events(first: 5, order: DESC) { totalCount edges { node { timestamp eventType roomId } } } } }`,
    );
    // A room that is running now: live records go only to rooms in progress.
    const room = sim.live.activeRooms()[0]?.roomId;
    if (room) {
      console.log(`          or subscribe in GraphiQL (a new event every few seconds, polled every 7.2 s):`);
      console.log(`            subscription { roomEvents(roomId: "${room}") { timestamp eventType participant { name } } }`);
    }
  }
  const stop = (): void => void Promise.all([gateway.close(), sim.close()]).then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (error) {
  console.error(error instanceof ConfigError || error instanceof Error ? error.message : error);
  process.exit(1);
}
