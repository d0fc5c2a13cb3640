import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { rename } from 'node:fs/promises';
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
 * process compiles the 18 MB bundle, the others load its code, about 0.4 s less CPU each (2.0 s to
 * listening, 1.6 s with the cache, on the quiet 2-core machine). Node checks each entry against the
 * file's contents, so a rebuilt bundle is compiled again.
 */
export const GATEWAY_COMPILE_CACHE = `${BUNDLE_DIR}/compile-cache`;

/** Builds GATEWAY_BUNDLE (test/global-setup.ts, once before any test file). */
export async function buildGatewayBundle(): Promise<void> {
  const partial = `${GATEWAY_BUNDLE}.${process.pid}.partial.mjs`;
  await build({
    entryPoints: [`${ROOT}src/main.ts`],
    // Written beside it and renamed: a test run of the same checkout never starts a half-written file.
    outfile: partial,
    bundle: true,
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
}
