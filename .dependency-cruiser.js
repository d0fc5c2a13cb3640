/**
 * The import graph's rules, checked by `npm run check` (dependency-cruiser over the TypeScript sources,
 * type-only imports included: a cycle through `import type` still ties two modules together).
 */
export default {
  forbidden: [
    {
      name: 'no-cycle',
      severity: 'error',
      comment: 'Modules import each other in one direction only; a shared need gets a module (or an interface) of its own.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'simulator-stands-alone',
      severity: 'error',
      comment: 'The simulator models the upstream API: it imports nothing of the gateway (docs/architecture.md).',
      from: { path: '^src/simulator/' },
      to: { path: '^src/', pathNot: '^src/simulator/' },
    },
  ],
  options: {
    // What TypeScript erases (type-only imports) counts too.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^examples/typed-client/src/gql/' },
  },
};
