import { spawnSync } from 'node:child_process';
import '../src/runtime-check.ts';
import { buildGatewayBundle, GATEWAY_BUNDLE, GATEWAY_COMPILE_CACHE } from './helpers/bundle.ts';

/**
 * Before any test file: the shared-state tests need Debian's redis-server, the table tests Debian's
 * python3-pandas. scripts/ensure-redis.sh and ensure-pandas.sh install them where they can; otherwise
 * the run stops here with the one line that installs them. Then the gateway processes' bundle
 * (test/helpers/bundle.ts), and its compiled code in the compile cache.
 */
export default async function setup(): Promise<void> {
  for (const script of ['scripts/ensure-redis.sh', 'scripts/ensure-pandas.sh']) {
    const result = spawnSync('bash', [script], { stdio: 'inherit' });
    if (result.status !== 0) process.exit(1);
  }
  await buildGatewayBundle();
  // The bundle's compiled code in the compile cache before the first test file starts a gateway (the
  // processes started at once would each compile it): `--help` loads it and exits.
  spawnSync(process.execPath, [GATEWAY_BUNDLE, '--help'], {
    env: { ...process.env, NODE_COMPILE_CACHE: GATEWAY_COMPILE_CACHE },
    stdio: 'ignore',
  });
}
