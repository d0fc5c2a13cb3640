/**
 * `npm run bench [-- [--quick] [--seconds N] [--load-seconds N] [--baseline DIR [--baseline-node NODE]] [scenario …]]`: the benchmarks, each
 * server in its own process (see `lib/stack.ts`), the load from this one, variants alternating so that
 * noise on a shared machine hits them alike. Prints Markdown tables (stdout) ready for docs/measured.md, each
 * with the command that reproduces it; progress goes to stderr.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Children, ROOT } from './lib/children.ts';
import type { BenchOptions, Report } from './lib/scenario.ts';
import { nodeEnvText, runCheckoutOn, startCommandOf } from './lib/stack.ts';
import { SCENARIOS } from './scenarios/index.ts';

const USAGE = `npm run bench -- [--quick] [--seconds N] [--load-seconds N] [--baseline DIR [--baseline-node NODE]] [scenario …]
  scenarios (default: all, in this order):
${SCENARIOS.map((s) => `    ${s.name.padEnd(12)} ${s.summary}`).join('\n')}
  --quick            a smoke test: fewer runs, shorter durations (figures not for docs/measured.md)
  --seconds N        seconds per variant in throughput comparisons (default 10; quick 2)
  --load-seconds N   seconds of the load scenario (default 30; quick 5)
  --baseline DIR     also measure the gateway of another checkout (e.g. a worktree of main after npm ci)
                     beside this one, in throughput, small and tables
  --baseline-node NODE  run the baseline's gateways on this Node binary (e.g. /usr/bin/node: another Node
                     version on the same code), not the bench's own`;

function parse(argv: string[]): { options: BenchOptions; names: string[]; flags: string[] } | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      seconds: { type: 'string' },
      'load-seconds': { type: 'string' },
      baseline: { type: 'string' },
      'baseline-node': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return 'help';
  const seconds = (name: string, text: string | undefined, fallback: number): number => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} takes a positive number of seconds, got '${text}'`);
    return n;
  };
  const options: BenchOptions = {
    quick: values.quick,
    seconds: seconds('seconds', values.seconds, values.quick ? 2 : 10),
    loadSeconds: seconds('load-seconds', values['load-seconds'], values.quick ? 5 : 30),
    baseline: values.baseline === undefined ? null : baseline(values.baseline, values['baseline-node']),
  };
  if (values['baseline-node'] !== undefined && values.baseline === undefined)
    throw new Error(`--baseline-node needs --baseline\n\n${USAGE}`);
  for (const name of positionals) {
    if (!SCENARIOS.some((s) => s.name === name)) throw new Error(`no scenario '${name}'\n\n${USAGE}`);
  }
  const flags = [
    ...(values.quick ? ['--quick'] : []),
    ...(values.seconds === undefined ? [] : ['--seconds', values.seconds]),
    ...(values['load-seconds'] === undefined ? [] : ['--load-seconds', values['load-seconds']]),
    ...(values.baseline === undefined ? [] : ['--baseline', values.baseline]),
    ...(values['baseline-node'] === undefined ? [] : ['--baseline-node', values['baseline-node']]),
  ];
  return { options, names: positionals, flags };
}

function git(cwd: string, args: string[]): string {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

/** "abc1234", "abc1234 with uncommitted changes", or "unknown". */
function commitOf(checkout: string): string {
  const commit = git(checkout, ['rev-parse', '--short', 'HEAD']);
  if (commit === '') return 'unknown';
  return git(checkout, ['status', '--porcelain', '--untracked-files=no']) === '' ? commit : `${commit} with uncommitted changes`;
}

function baseline(dir: string, node: string | undefined): { checkout: string; label: string } {
  const checkout = resolve(dir);
  for (const needed of ['src/main.ts', 'node_modules/tsx/package.json']) {
    if (!existsSync(join(checkout, needed)))
      throw new Error(`--baseline ${dir}: no ${needed} there (a checkout of this repository after npm ci)`);
  }
  if (node === undefined) return { checkout, label: `baseline ${commitOf(checkout)}` };
  let version: string;
  try {
    version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(`--baseline-node ${node}: not a Node binary that runs here`);
  }
  runCheckoutOn(checkout, node);
  return { checkout, label: `baseline ${commitOf(checkout)} on Node ${version}` };
}

function environment(options: BenchOptions): string {
  const cpu = cpus();
  return [
    `Node ${process.version} on ${process.platform}/${process.arch}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}; commit ${commitOf(ROOT)}; ${new Date().toISOString().slice(0, 16)}Z.`,
    ...(options.baseline ? [`Baseline: ${options.baseline.checkout} (${options.baseline.label}).`] : []),
    `Every server in its own process (\`node --import tsx\`); gateways run as their checkout's \`npm start\` runs them (this one's: ${nodeEnvText(startCommandOf(ROOT))}` +
      `${options.baseline ? `; the baseline's: ${nodeEnvText(startCommandOf(options.baseline.checkout))}` : ''}), the hello-world with \`NODE_ENV=${process.env.NODE_ENV || 'production'}\`; clients in the bench process.`,
  ].join(' ');
}

function print(report: Report, command: string, load: readonly [number, number]): void {
  const lines = [`#### ${report.title}`, '', ...report.setup, '', report.table, ''];
  if (report.notes && report.notes.length > 0) lines.push(...report.notes, '');
  lines.push(
    `Reproduce: \`${command}\` (the machine's 1-minute load average was ${load[0].toFixed(1)} before, ${load[1].toFixed(1)} after).`,
    '',
  );
  console.log(lines.join('\n'));
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(process.argv.slice(2));
    if (parsed === 'help') {
      console.log(USAGE);
      return;
    }
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(2);
  }
  const { options, names, flags } = parsed;
  const logDir = mkdtempSync(join(tmpdir(), 'hsgql-bench-'));
  const children = new Children(logDir);
  process.once('exit', () => children.killAllNow());
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping`);
      children.killAllNow();
      process.exit(code);
    });
  }
  const chosen = names.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => names.includes(s.name));
  console.log(`${environment(options)}\n`);
  const progress = (message: string): void => void process.stderr.write(`  … ${message}\n`);
  progress(`each process's output is in ${logDir}`);
  for (const scenario of chosen) {
    const started = performance.now();
    progress(`${scenario.name}: ${scenario.summary}`);
    const loadBefore = loadavg()[0] ?? Number.NaN;
    try {
      const reports = await scenario.run({ children, options, progress });
      children.assertNoneCrashed();
      const command = ['npm run bench --', ...flags, scenario.name].join(' ');
      for (const report of reports) print(report, command, [loadBefore, loadavg()[0] ?? Number.NaN]);
    } finally {
      await children.stopAll();
    }
    progress(`${scenario.name}: done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
}

try {
  await main();
  process.exit(0);
} catch (error) {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
}
