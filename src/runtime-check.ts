/**
 * Imported first by the entry points (src/main.ts, src/demo.ts) and the tests' global setup: on a Node
 * older than the one the project promises, one line says so, instead of a dependency failing to load
 * (undici 8 needs Node ≥ 22.19) with a stack trace.
 */

/** What is wrong with running on Node `version` (as `process.version` says it), or null. */
export function runtimeProblem(version: string): string | null {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  return major < 24 || (major === 24 && minor < 11)
    ? `hyperstudy-graphql needs Node.js 24.11 or newer (this is ${version}): see "Prerequisites" in the README`
    : null;
}

const problem = runtimeProblem(process.version);
if (problem !== null) {
  console.error(problem);
  process.exit(1);
}
