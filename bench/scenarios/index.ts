import type { Scenario } from '../lib/scenario.ts';
import { cpu } from './cpu.ts';
import { dashboards } from './dashboards.ts';
import { exportJobs } from './exports.ts';
import { faults } from './faults.ts';
import { hardening } from './hardening.ts';
import { load } from './load.ts';
import { scale } from './scale.ts';
import { smallQueries } from './small-queries.ts';
import { tables } from './tables.ts';
import { throughput } from './throughput.ts';

/** Every scenario, in the order a full `npm run bench` runs them. Add new ones here. */
export const SCENARIOS: readonly Scenario[] = [
  dashboards,
  throughput,
  cpu,
  smallQueries,
  load,
  faults,
  hardening,
  scale,
  tables,
  exportJobs,
];
