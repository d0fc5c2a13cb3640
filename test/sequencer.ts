import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Seconds each of the slower test files took in a whole run of the suite (`npx vitest run --reporter=json
 * --outputFile=FILE`, its testResults' endTime - startTime, Node 24 on the 2-core machine), slowest first.
 * Refresh it from such a run when a file's time changes by some seconds, or a new file takes more than 1.5 s.
 */
export const SECONDS: Record<string, number> = {
  'test/exports-replicas.test.ts': 27.9,
  'test/exports-fleet.test.ts': 25.9,
  'test/live-fleet-faults.test.ts': 25.6,
  'test/exports-resume.test.ts': 24.8,
  'test/live-fleet.test.ts': 22.3,
  'test/exports.test.ts': 19.8,
  'test/live-fleet-handover.test.ts': 18.2,
  'test/live-fleet-pacing.test.ts': 17.9,
  'test/typed-client.test.ts': 17.8,
  'test/exports-fleet-redis.test.ts': 17.4,
  'test/tables-plan.test.ts': 15.9,
  'test/live-hardening.test.ts': 14.7,
  'test/planner.test.ts': 14.1,
  'test/export-cli.test.ts': 13.9,
  'test/exports-workers.test.ts': 13.6,
  'test/lifecycle.test.ts': 13.1,
  'test/entities-lookahead.test.ts': 8.3,
  'test/workers.test.ts': 8.1,
  'test/resilience.test.ts': 7.9,
  'test/gateway-errors.test.ts': 7.6,
  'test/live.test.ts': 7.2,
  'test/first-run.test.ts': 7.2,
  'test/tables-order.test.ts': 6.2,
  'test/replicas.test.ts': 6.1,
  'test/simulator-limits.test.ts': 6.1,
  'test/tables-header.test.ts': 5.3,
  'test/http-graphiql.test.ts': 3.9,
  'test/tables.test.ts': 3.9,
  'test/redis-state.test.ts': 3.7,
  'test/key-refusal.test.ts': 3.5,
  'test/shared-reads.test.ts': 3.4,
  'test/incremental.test.ts': 2.6,
  'test/fairness.test.ts': 2.5,
  'test/tables-types.test.ts': 2.2,
  'test/isolation.test.ts': 2.1,
  'test/gateway-http.test.ts': 2.0,
  'test/websocket-limits.test.ts': 1.8,
  'test/read-your-writes-redis.test.ts': 1.8,
  'test/upstream-json.test.ts': 1.6,
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
