import { spawnSync } from 'node:child_process';
import '../src/runtime-check.ts';

/**
 * Before any test file: the shared-state tests need Debian's redis-server, the table tests Debian's
 * python3-pandas. scripts/ensure-redis.sh and ensure-pandas.sh install them where they can; otherwise
 * the run stops here with the one line that installs them.
 */
export default function setup(): void {
  for (const script of ['scripts/ensure-redis.sh', 'scripts/ensure-pandas.sh']) {
    const result = spawnSync('bash', [script], { stdio: 'inherit' });
    if (result.status !== 0) process.exit(1);
  }
}
