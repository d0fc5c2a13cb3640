import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';
import SlowestFirst from './test/sequencer.ts';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // Node loads graphql's CommonJS build for Yoga and Pothos; Vite would otherwise give our own code
    // the ESM build, and two copies of graphql break `instanceof GraphQLError` across them.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Four files at once on two cores: most tests wait on timers, sockets, leases and child processes
    // rather than compute (vitest's default there is one, availableParallelism - 1). On this project's
    // 2-core machine, quiet, the suite (809 tests) took 157 s with 2, 126 s with 3 and 108 s with 4; with
    // 829 tests, 118–125 s with 4 and 145 s with 6 (it is CPU-bound there: 1.7 of the 2 cores busy).
    maxWorkers: 4,
    // Each worker imports the gateway once for all its files instead of once per file (some 2 s each, 68
    // files: the suite ran 196 s, now about 110 s). Files share no state: none is kept at module level,
    // and the suite passes shuffled, its files and the tests in each (--sequence.shuffle), as each test
    // does alone (-t).
    isolate: false,
    // The slowest files first (test/sequencer.ts), so that no long file starts near the end.
    sequence: { sequencer: SlowestFirst },
  },
});
