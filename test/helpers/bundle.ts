import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The gateway's entry point (`src/main.ts`, what `npm start` runs) as one JavaScript file with the
 * packages it imports, for the tests that start gateway processes: node loads one file instead of some
 * 1,900 modules through tsx, and a process is listening after about half the CPU time (2.3–2.6 s instead
 * of 4.6 s on a busy two-core machine) — the fleet, worker and replica tests start some thirty of them.
 * The tests of `npm start` and `npm run demo` themselves (first-run, config-upstream-url) run the real
 * commands.
 */
export const GATEWAY_BUNDLE = `${ROOT}node_modules/.cache/hyperstudy-graphql-tests/main.mjs`;

/** Builds GATEWAY_BUNDLE (test/global-setup.ts, once before any test file). */
export async function buildGatewayBundle(): Promise<void> {
  await build({
    entryPoints: [`${ROOT}src/main.ts`],
    outfile: GATEWAY_BUNDLE,
    bundle: true,
    // CommonJS packages inside an ES module bundle call require(): give them node's.
    banner: {
      js: "import { createRequire as createRequireForBundle } from 'node:module'; const require = createRequireForBundle(import.meta.url);",
    },
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node.split('.')[0]}`,
    logLevel: 'warning',
  });
}
