/**
 * `npm run bench [-- [--quick] [--seconds N] [--load-seconds N] [scenario …]]`: the benchmarks, each
 * server in its own process (see `lib/stack.ts`), the load from this one, variants alternating so that
 * noise on a shared machine hits them alike. Prints Markdown tables (stdout) ready for the README, each
 * with the command that reproduces it; progress goes to stderr.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Children, ROOT } from './lib/children.ts';
import type { BenchOptions, Report } from './lib/scenario.ts';
import { SCENARIOS } from './scenarios/index.ts';

const USAGE = `npm run bench -- [--quick] [--seconds N] [--load-seconds N] [scenario …]
  scenarios (default: all, in this order):
${SCENARIOS.map((s) => `    ${s.name.padEnd(12)} ${s.summary}`).join('\n')}
  --quick            a smoke test: fewer runs, shorter durations (figures not for the README)
  --seconds N        seconds per variant in throughput comparisons (default 10; quick 2)
  --load-seconds N   seconds of the load scenario (default 30; quick 5)`;

function parse(argv: string[]): { options: BenchOptions; names: string[]; flags: string[] } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      seconds: { type: 'string' },
      'load-seconds': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) throw new Error(USAGE);
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
  };
  for (const name of positionals) {
    if (!SCENARIOS.some((s) => s.name === name)) throw new Error(`no scenario '${name}'\n\n${USAGE}`);
  }
  const flags = [
    ...(values.quick ? ['--quick'] : []),
    ...(values.seconds === undefined ? [] : ['--seconds', values.seconds]),
    ...(values['load-seconds'] === undefined ? [] : ['--load-seconds', values['load-seconds']]),
  ];
  return { options, names: positionals, flags };
}

function environment(): string {
  const git = (args: string[]): string => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  };
  const commit = git(['rev-parse', '--short', 'HEAD']) || 'unknown';
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) === '' ? '' : ' with uncommitted changes';
  const cpu = cpus();
  return [
    `Node ${process.version} on ${process.platform}/${process.arch}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}; commit ${commit}${dirty}; ${new Date().toISOString().slice(0, 16)}Z.`,
    `Every server in its own process (\`node --import tsx\`), \`NODE_ENV\` ${process.env.NODE_ENV === undefined ? 'unset' : `=${process.env.NODE_ENV}`} in all of them; clients in the bench process.`,
  ].join(' ');
}

function print(report: Report, command: string): void {
  const lines = [`#### ${report.title}`, '', ...report.setup, '', report.table, ''];
  if (report.notes && report.notes.length > 0) lines.push(...report.notes, '');
  lines.push(`Reproduce: \`${command}\``, '');
  console.log(lines.join('\n'));
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(process.argv.slice(2));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(2);
  }
  const { options, names, flags } = parsed;
  const logDir = mkdtempSync(join(tmpdir(), 'hsgql-bench-'));
  const children = new Children(logDir);
  process.once('exit', () => children.killAllNow());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping`);
      children.killAllNow();
      process.exit(130);
    });
  }
  const chosen = names.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => names.includes(s.name));
  console.log(`${environment()}\n`);
  const progress = (message: string): void => void process.stderr.write(`  … ${message}\n`);
  progress(`each process's output is in ${logDir}`);
  for (const scenario of chosen) {
    const started = performance.now();
    progress(`${scenario.name}: ${scenario.summary}`);
    try {
      const reports = await scenario.run({ children, options, progress });
      children.assertNoneCrashed();
      const command = ['npm run bench --', ...flags, scenario.name].join(' ');
      for (const report of reports) print(report, command);
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
