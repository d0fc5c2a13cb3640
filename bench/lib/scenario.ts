import type { Children } from './children.ts';

/** The command-line options every scenario may read. */
export interface BenchOptions {
  /** A smoke test: fewer runs, shorter durations, smaller sizes; figures not for docs/measured.md. */
  quick: boolean;
  /** Seconds each variant of a throughput comparison is measured for (split over alternating rounds). */
  seconds: number;
  /** Seconds of the load scenario. */
  loadSeconds: number;
  /**
   * Another checkout of the gateway (with its own `node_modules`) measured beside this one where a
   * scenario supports it (`--baseline DIR`): "today's main" for targets stated as "N× today's".
   */
  baseline: { checkout: string; label: string } | null;
}

export interface BenchContext {
  /** Start processes through this (see `stack.ts`); the runner stops them all after the scenario. */
  children: Children;
  options: BenchOptions;
  /** Progress on stderr; stdout holds only the Markdown. */
  progress(message: string): void;
}

/** One table and what it needs to be read: the data, the query, the settings that differ from the defaults. */
export interface Report {
  title: string;
  /** Sentences printed above the table. */
  setup: string[];
  table: string;
  /** Sentences printed below it. */
  notes?: string[];
}

/**
 * A benchmark: `npm run bench -- <name>` runs it alone. To add one, write `bench/scenarios/<name>.ts`
 * exporting a `Scenario` and list it in `bench/scenarios/index.ts`. Start what you measure with the
 * helpers of `bench/lib/stack.ts` (`startSimulator`, `startGateway` with its environment,
 * `startServer` for `bench/servers/scripted-upstream.ts` or another stand-in), drive it with `closedLoop` or `timedGraphql`, read upstream counts from
 * `simulator.stats()` and the gateway's memory from `gateway.metrics()` (`memoryOf`, `sampleEvery`),
 * alternate variants with `alternate`, and return tables built with `markdownTable`.
 */
export interface Scenario {
  name: string;
  /** One line for `--help`. */
  summary: string;
  run(ctx: BenchContext): Promise<Report[]>;
}
