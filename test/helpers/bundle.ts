import { build, version as esbuildVersion } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The gateway's entry point (`src/main.ts`, what `npm start` runs) as one JavaScript file with the
 * packages it imports, for the tests that start gateway processes: node loads one file instead of some
 * 1,900 modules through tsx, and a process is listening after about half the CPU time (2.3–2.6 s instead
 * of 4.6 s on a busy two-core machine) — the fleet, worker and replica tests start some thirty of them.
 * The tests of `npm start` and `npm run demo` themselves (first-run, config-upstream-url) run the real
 * commands. Its folder is named after the checkout: worktrees that share one node_modules (a symlink)
 * each have their own.
 */
const BUNDLE_DIR = `${ROOT}node_modules/.cache/hyperstudy-graphql-tests/${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}`;
export const GATEWAY_BUNDLE = `${BUNDLE_DIR}/main.mjs`;

/**
 * Where the gateway processes keep V8's compiled code of the bundle (NODE_COMPILE_CACHE): the first
 * process compiles the bundle, the others load its code, about 0.4 s less CPU each (2.0 s to
 * listening, 1.6 s with the cache, on the quiet 2-core machine). Node checks each entry against the
 * file's contents, so a rebuilt bundle is compiled again.
 */
export const GATEWAY_COMPILE_CACHE = `${BUNDLE_DIR}/compile-cache`;

/**
 * What the last build read — esbuild's metafile inputs, the lockfile, tsconfig.json and this file (the
 * build's options) — each with its size and modification time, and what built it, beside the bundle: a
 * run whose inputs are all as they were reuses the bundle instead of building it again (some 2.5 s
 * before the first test file on the 2-core machine). Any edit, `npm ci` or `git checkout` of an input
 * changes its time, and so builds again.
 */
const INPUTS = `${BUNDLE_DIR}/inputs.json`;
const ALWAYS_READ = ['package-lock.json', 'tsconfig.json', 'test/helpers/bundle.ts'];

const BUILT_BY = `esbuild ${esbuildVersion}, node ${process.versions.node.split('.')[0]}`;

/** Files (paths from a root) with their size and modification time. */
type Stats = Record<string, [size: number, mtimeMs: number]>;

async function statsOf(root: string, paths: string[]): Promise<Stats | null> {
  try {
    const stats = await Promise.all(paths.map((path) => stat(resolve(root, path))));
    return Object.fromEntries(paths.map((path, i) => [path, [stats[i]?.size ?? -1, stats[i]?.mtimeMs ?? -1]]));
  } catch {
    return null;
  }
}

/**
 * Writes to `record` the size and modification time of `paths` (from `root`) and `builtBy`, unless one
 * is missing or was modified at `since` (a time in ms) or later: what is built from them may hold it as
 * it was. Resolves with whether it wrote.
 */
export async function recordInputs(record: string, root: string, paths: string[], builtBy: string, since: number): Promise<boolean> {
  const files = await statsOf(root, paths);
  if (files === null || Object.values(files).some(([, mtimeMs]) => mtimeMs >= since)) return false;
  await writeFile(record, JSON.stringify({ builtBy, files }));
  return true;
}

/** Whether `record` (by recordInputs) was written by `builtBy` and its files are all as they were then. */
export async function inputsUnchanged(record: string, root: string, builtBy: string): Promise<boolean> {
  let last: { builtBy: string; files: Stats };
  try {
    last = JSON.parse(await readFile(record, 'utf8')) as typeof last;
  } catch {
    return false;
  }
  if (last.builtBy !== builtBy) return false;
  const now = await statsOf(root, Object.keys(last.files));
  return now !== null && JSON.stringify(now) === JSON.stringify(last.files);
}

/**
 * Builds GATEWAY_BUNDLE (test/global-setup.ts, once before any test file) unless the bundle there was
 * built from the inputs as they are (INPUTS). Resolves with whether it built.
 */
export async function buildGatewayBundle(): Promise<boolean> {
  if (existsSync(GATEWAY_BUNDLE) && (await inputsUnchanged(INPUTS, ROOT, BUILT_BY))) return false;
  await rm(INPUTS, { force: true });
  const started = Date.now();
  const partial = `${GATEWAY_BUNDLE}.${process.pid}.partial.mjs`;
  const { metafile } = await build({
    absWorkingDir: ROOT,
    entryPoints: [`${ROOT}src/main.ts`],
    // Written beside it and renamed: a test run of the same checkout never starts a half-written file.
    outfile: partial,
    bundle: true,
    metafile: true,
    // Without comments (and whitespace) the bundle is ASCII: V8 keeps its source as one byte a character
    // instead of two (some packages' comments hold an em dash or an accented letter), reads it in a third
    // of the time, and a process takes some 10% less CPU to listening (8.8 MB -> 6.1 MB). Names stay.
    minifyWhitespace: true,
    legalComments: 'none',
    // CommonJS packages inside an ES module bundle call require(): give them node's.
    banner: {
      js: "import { createRequire as createRequireForBundle } from 'node:module'; const require = createRequireForBundle(import.meta.url);",
    },
    platform: 'node',
    // GraphiQL's renderer (9 MB of assets, three fifths of the bundle) loads from node_modules on a
    // process's first GraphiQL visit, as `npm start` loads it: the others do not read it at all.
    external: ['@graphql-yoga/render-graphiql'],
    format: 'esm',
    target: `node${process.versions.node.split('.')[0]}`,
    logLevel: 'warning',
  });
  await rename(partial, GATEWAY_BUNDLE);
  // Not if a file was edited while esbuild ran: the next run builds again.
  await recordInputs(INPUTS, ROOT, [...Object.keys(metafile.inputs), ...ALWAYS_READ], BUILT_BY, started);
  return true;
}
