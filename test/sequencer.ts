import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Seconds each of the slower test files took in a whole run of the suite (`npx vitest run --reporter=json
 * --outputFile=FILE`, its testResults' endTime - startTime, Node 24 on the 2-core machine), slowest first.
 * Refresh it from such a run when a file's time changes by some seconds, or a new file takes more than 1.5 s.
 */
export const SECONDS: Record<string, number> = {
  'test/exports-fleet.test.ts': 28.3,
  'test/exports-replicas.test.ts': 27.1,
  'test/live-fleet-faults.test.ts': 24.5,
  'test/exports.test.ts': 20.9,
  'test/exports-fleet-redis.test.ts': 19.1,
  'test/live-fleet.test.ts': 16.7,
  'test/exports-resume.test.ts': 16.3,
  'test/tables-plan.test.ts': 14.1,
  'test/live-fleet-handover.test.ts': 13.0,
  'test/live-hardening.test.ts': 12.9,
  'test/lifecycle.test.ts': 12.5,
  'test/live-fleet-pacing.test.ts': 12.2,
  'test/exports-workers.test.ts': 11.7,
  'test/export-cli.test.ts': 9.9,
  'test/entities-lookahead.test.ts': 9.2,
  'test/planner.test.ts': 8.2,
  'test/resilience.test.ts': 7.9,
  'test/live.test.ts': 7.7,
  'test/gateway-errors.test.ts': 7.5,
  'test/typed-client.test.ts': 7.3,
  'test/tables-header.test.ts': 7.0,
  'test/replicas.test.ts': 6.8,
  'test/simulator-limits.test.ts': 6.4,
  'test/first-run.test.ts': 5.8,
  'test/retention.test.ts': 5.7,
  'test/tables-order.test.ts': 5.6,
  'test/tables.test.ts': 5.5,
  'test/workers.test.ts': 4.3,
  'test/http-graphiql.test.ts': 4.1,
  'test/isolation.test.ts': 4.0,
  'test/shared-reads.test.ts': 3.9,
  'test/upstream-exchange.test.ts': 3.9,
  'test/redis-state.test.ts': 3.9,
  'test/key-refusal.test.ts': 3.6,
  'test/simulator-live.test.ts': 3.5,
  'test/exports-since.test.ts': 3.3,
  'test/federation.test.ts': 3.2,
  'test/tables-direct.test.ts': 3.1,
  'test/operation-names.test.ts': 2.7,
  'test/fairness.test.ts': 2.5,
  'test/incremental.test.ts': 2.5,
  'test/tables-types.test.ts': 2.5,
  'test/gateway-graph.test.ts': 2.3,
  'test/websocket-limits.test.ts': 2.3,
  'test/read-your-writes-redis.test.ts': 2.1,
  'test/execution.test.ts': 2.1,
  'test/config-upstream-url.test.ts': 2.1,
  'test/gateway-newer.test.ts': 2.1,
  'test/upstream-json.test.ts': 1.8,
  'test/upstream-body-limit.test.ts': 1.8,
  'test/tables-requests.test.ts': 1.8,
  'test/quota.test.ts': 1.7,
  'test/simulator-listings.test.ts': 1.6,
  'test/http-readiness.test.ts': 1.6,
};

/** A file's path from the project's root, as SECONDS names it. */
export const pathOf = (spec: TestSpecification): string => spec.moduleId.slice(spec.project.config.root.length).replace(/^\//, '');

/**
 * The slowest files first, in the order of SECONDS, then the others in vitest's own order. The workers
 * take files from one queue: a long file started last runs on alone while the other workers idle (in a
 * run ordered by vitest's cache, exports.test.ts started at 109 s and ended the run alone at 129 s).
 * vitest's own order is by the durations in its cache (node_modules/.vite), which a run of one test
 * (`-t`) overwrites with that test's time, and by file size on a fresh clone. With `--sequence.shuffle`
 * the files go in a random order of that seed, as vitest shuffles them.
 */
export default class SlowestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const { shuffle, seed } = this.ctx.config.sequence;
    if (shuffle) return shuffled(files, seed);
    const theirs = await super.sort(files);
    const seconds = (spec: TestSpecification): number => SECONDS[pathOf(spec)] ?? 0;
    // Array sort is stable: the files SECONDS does not name keep vitest's order.
    return theirs.sort((a, b) => seconds(b) - seconds(a));
  }
}

/** `files` in a random order drawn from `seed` (mulberry32): the same seed, the same order. */
function shuffled<T>(files: T[], seed: number): T[] {
  let state = seed >>> 0;
  const random = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...files];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
