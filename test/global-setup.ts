import { spawnSync } from 'node:child_process';
import '../src/runtime-check.ts';

/**
 * Before any test file: the shared-state tests need Debian's redis-server. scripts/ensure-redis.sh
 * installs it where it can; otherwise the run stops here with the one line that installs it.
 */
export default function setup(): void {
  const result = spawnSync('bash', ['scripts/ensure-redis.sh'], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(1);
}
