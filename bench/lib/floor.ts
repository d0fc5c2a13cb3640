/**
 * The floor of a dashboard (bench/scenarios/cpu.ts): what any gateway that answers it must do in plain
 * JavaScript — `JSON.parse` each upstream body it reads and `JSON.stringify` its answer.
 */

/** The upstream bodies one dashboard reads, and its answer (as text). */
export interface FloorBytes {
  bodies: string[];
  answer: string;
}

/** One pass of the floor over `bodies`, with `tree` the answer parsed. */
export function floorPass(bodies: readonly string[], tree: unknown): void {
  for (const body of bodies) JSON.parse(body);
  JSON.stringify(tree);
}

/**
 * CPU seconds (user + system, the whole process) of `passes` passes of the floor, after `warm` passes
 * unmeasured: the best pass and the mean.
 */
export function floorCpu(bytes: FloorBytes, passes: number, warm = 0): { best: number; mean: number } {
  const tree: unknown = JSON.parse(bytes.answer);
  for (let i = 0; i < warm; i++) floorPass(bytes.bodies, tree);
  let best = Number.POSITIVE_INFINITY;
  const start = process.cpuUsage();
  for (let i = 0; i < passes; i++) {
    const before = process.cpuUsage();
    floorPass(bytes.bodies, tree);
    const used = process.cpuUsage(before);
    best = Math.min(best, (used.user + used.system) / 1e6);
  }
  const all = process.cpuUsage(start);
  return { best, mean: (all.user + all.system) / 1e6 / passes };
}
