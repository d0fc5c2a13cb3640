import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import '../src/runtime-check.ts';
import { buildGatewayBundle, GATEWAY_BUNDLE, GATEWAY_COMPILE_CACHE } from './helpers/bundle.ts';

/**
 * Before any test file: the shared-state tests need Debian's redis-server, the table tests Debian's
 * python3-pandas. scripts/ensure-redis.sh and ensure-pandas.sh install them where they can; otherwise
 * the run stops here with the one line that installs them. Then the gateway processes' bundle
 * (test/helpers/bundle.ts, built again only when what it is built from changed), and its compiled code
 * in the compile cache.
 */
export default async function setup(): Promise<void> {
  // The checks while the bundle builds; one after the other, as each may run apt-get (which takes a lock).
  const checks = run('scripts/ensure-redis.sh').then((code) => (code === 0 ? run('scripts/ensure-pandas.sh') : code));
  const built = await buildGatewayBundle();
  if ((await checks) !== 0) process.exit(1);
  // The bundle's compiled code in the compile cache before the first test file starts a gateway (the
  // processes started at once would each compile it): `--help` loads it and exits. A bundle kept from
  // the last run has its code there already.
  if (built || !existsSync(GATEWAY_COMPILE_CACHE)) {
    spawnSync(process.execPath, [GATEWAY_BUNDLE, '--help'], {
      env: { ...process.env, NODE_COMPILE_CACHE: GATEWAY_COMPILE_CACHE },
      stdio: 'ignore',
    });
  }
}

/** Runs a bash script with the run's output; resolves with its exit code. */
function run(script: string): Promise<number | null> {
  return new Promise((resolve) => spawn('bash', [script], { stdio: 'inherit' }).once('exit', resolve));
}
