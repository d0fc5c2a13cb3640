import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { printErrorsDoc } from '../scripts/print-errors.ts';
import { ERROR_CODES, ERRORS, errorExtensions, gatewayError, statusesOf, type ErrorCode, type ErrorEntry } from '../src/errors.ts';
import { SPAN_ERROR_CODES } from '../src/plugins/use-operation-report.ts';
import { startStack, type Stack } from './helpers/stack.ts';
import { FULL, OTHER } from './helpers/simulator.ts';

const SRC = new URL('../src/', import.meta.url);
const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** Where source code gives an error its code: a `code:` property, the catalogue's helpers, `satisfies ErrorCode`. */
const EMITTING = [
  /\bcode:\s*'([A-Z][A-Z0-9_]*)'/g,
  /\b(?:gatewayError|errorExtensions)\(\s*'([A-Z][A-Z0-9_]*)'/g,
  /'([A-Z][A-Z0-9_]*)'\s+satisfies\s+ErrorCode\b/g,
];

/** Code-shaped literals in `code:` positions that are not the gateway's codes. */
const NOT_GATEWAY_CODES: Record<string, string> = {
  EADDRINUSE: "Node's errno of a busy port (ListenError's `code`, with EACCES)",
};

const codesIn = (text: string): string[] => EMITTING.flatMap((pattern) => [...text.matchAll(pattern)].map((m) => m[1] ?? ''));

/** The code literals of the gateway's source (the simulator is the upstream's, with the upstream's codes). */
function sourceCodes(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of readdirSync(SRC, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts') || file.startsWith('simulator/') || file === 'errors.ts') continue;
    for (const code of codesIn(readFileSync(new URL(file, SRC), 'utf8'))) found.set(code, [...(found.get(code) ?? []), file]);
  }
  return found;
}

describe('the error catalogue', () => {
  it('catalogues every code the source gives an error, and every code of its own is emitted somewhere', () => {
    // The scan finds a code given the plain way, with no helper.
    expect(codesIn("new GraphQLError('m', { extensions: { code: 'SOMETHING_NEW', http: { status: 400 } } })")).toEqual(['SOMETHING_NEW']);
    const found = sourceCodes();
    const uncatalogued = [...found.keys()].filter((code) => !(code in ERRORS) && !(code in NOT_GATEWAY_CODES));
    expect(uncatalogued, JSON.stringify(Object.fromEntries(uncatalogued.map((c) => [c, found.get(c)])))).toEqual([]);
    // A code no library emits is one the source emits: the catalogue holds no code nothing answers with.
    const own = ERROR_CODES.filter((code) => (ERRORS[code] as ErrorEntry).library === undefined);
    expect(own.filter((code) => !found.has(code))).toEqual([]);
    expect(own).toEqual([
      'UNAUTHENTICATED',
      'FORBIDDEN',
      'NOT_FOUND',
      'BAD_USER_INPUT',
      'OPERATION_LIMIT_EXCEEDED',
      'UPSTREAM_BUDGET_EXCEEDED',
      'RATE_LIMITED',
      'EXPORT_LIMIT_EXCEEDED',
      'EXPORT_TOO_LARGE',
      'UPSTREAM_ERROR',
      'UPSTREAM_TIMEOUT',
      'SHUTTING_DOWN',
      'SUBSCRIBER_TOO_SLOW',
      'PERSISTED_QUERY_ONLY',
      'PERSISTED_QUERY_NOT_FOUND',
      'BAD_REQUEST',
      'PAYLOAD_TOO_LARGE',
      'NOT_SENT',
    ]);
  });

  it('docs/errors.md lists every catalogued code with its HTTP statuses, and no other, and the README links to it', () => {
    const rows = doc
      .split('\n')
      .map((line) => /^\| \[`([A-Z_]+)`\]\(#([a-z_]+)\) +\| ([0-9, ]+?) +\|/.exec(line))
      .filter((m) => m !== null);
    expect(rows.map((m) => m[1])).toEqual(ERROR_CODES);
    for (const [, code = '', anchor, statuses] of rows) {
      expect(anchor, code).toBe(code.toLowerCase());
      expect(statuses, code).toBe(statusesOf(code as ErrorCode).join(', '));
      const section = doc.split(`\n## \`${code}\`\n`)[1]?.split('\n## ')[0] ?? '';
      for (const status of statusesOf(code as ErrorCode)) expect(section, code).toMatch(new RegExp(`\\*\\*${status}\\*\\*`));
      expect(section, code).toContain(ERRORS[code as ErrorCode].then);
    }
    expect(statusesOf('BAD_REQUEST')).toEqual([400, 405, 413, 415]);
    expect(readme).toContain('](docs/errors.md)');
  });

  it('docs/errors.md is what npm run errors prints from the catalogue', async () => {
    expect(doc).toBe(await printErrorsDoc());
  });

  it("marks an operation's span failed for the catalogue's faults only", () => {
    expect([...SPAN_ERROR_CODES].sort()).toEqual(['INTERNAL_SERVER_ERROR', 'UPSTREAM_ERROR', 'UPSTREAM_TIMEOUT']);
  });

  it('builds an error with the code first, its extensions beside it and a catalogued status in extensions.http', () => {
    const error = gatewayError('OPERATION_LIMIT_EXCEEDED', 'Too deep', { extensions: { limit: 'depth', max: 3, found: 4 }, status: 400 });
    expect(error.message).toBe('Too deep');
    expect(error.extensions).toEqual({ code: 'OPERATION_LIMIT_EXCEEDED', limit: 'depth', max: 3, found: 4, http: { status: 400 } });
    expect(Object.keys(error.extensions)).toEqual(['code', 'limit', 'max', 'found', 'http']);
    expect(gatewayError('NOT_FOUND', 'No such room').extensions).toEqual({ code: 'NOT_FOUND' });
    expect(errorExtensions('PAYLOAD_TOO_LARGE')).toEqual({ code: 'PAYLOAD_TOO_LARGE' });
  });
});

describe("the catalogue's HTTP statuses are the gateway's", () => {
  const json = { 'content-type': 'application/json', 'x-api-key': FULL };
  const graphqlResponse = { ...json, accept: 'application/graphql-response+json' };
  const applicationJson = { ...json, accept: 'application/json' };
  const keyless = { 'content-type': 'application/json', accept: 'application/graphql-response+json' };
  const post = (body: unknown, headers: Record<string, string> = graphqlResponse) => ({
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const cases: [string, ErrorCode, number, string, RequestInit][] = [
    ['no key', 'UNAUTHENTICATED', 401, '', post({ query: '{ experiment(id: "exp_movie01") { name } }' }, keyless)],
    [
      'a key the upstream refused',
      'UNAUTHENTICATED',
      401,
      '',
      post({ query: '{ experiment(id: "exp_movie01") { name } }' }, { ...graphqlResponse, 'x-api-key': 'hst_test_nobody' }),
    ],
    [
      "someone else's experiment",
      'FORBIDDEN',
      200,
      '',
      post({ query: '{ experiment(id: "exp_movie01") { name } }' }, { ...graphqlResponse, 'x-api-key': OTHER }),
    ],
    ['no such experiment', 'NOT_FOUND', 200, '', post({ query: '{ experiment(id: "exp_none") { name } }' })],
    ["a field's argument", 'BAD_USER_INPUT', 200, '', post({ query: '{ experiment(id: "..") { name } }' })],
    [
      'a variable that does not coerce',
      'BAD_USER_INPUT',
      400,
      '',
      post({ query: 'query($id: ID!) { experiment(id: $id) { name } }', variables: { id: {} } }),
    ],
    [
      'a bad X-Organization-Id',
      'BAD_USER_INPUT',
      400,
      '',
      post({ query: '{ experiment(id: "exp_movie01") { name } }' }, { ...graphqlResponse, 'x-organization-id': 'a b' }),
    ],
    [
      'too deep',
      'OPERATION_LIMIT_EXCEEDED',
      400,
      '',
      post({ query: '{ experiment(id: "exp_movie01") { rooms { edges { node { name } } } } }' }),
    ],
    [
      'over the budget',
      'UPSTREAM_BUDGET_EXCEEDED',
      200,
      '',
      post({ query: '{ a: experiment(id: "a") { name } b: experiment(id: "b") { name } c: experiment(id: "c") { name } }' }),
    ],
    ['a parse error', 'GRAPHQL_PARSE_FAILED', 400, '', post({ query: '{ experiment(' })],
    ['a parse error as application/json', 'GRAPHQL_PARSE_FAILED', 200, '', post({ query: '{ experiment(' }, applicationJson)],
    ['a misspelt field', 'GRAPHQL_VALIDATION_FAILED', 400, '', post({ query: '{ experiments { nme } }' })],
    [
      'a misspelt field as application/json',
      'GRAPHQL_VALIDATION_FAILED',
      200,
      '',
      post({ query: '{ experiments { nme } }' }, applicationJson),
    ],
    [
      'an operationName the document lacks',
      'OPERATION_RESOLUTION_FAILURE',
      400,
      '',
      post({ query: 'query A { __typename }', operationName: 'B' }),
    ],
    ['a body that is not JSON', 'BAD_REQUEST', 400, '', post('{')],
    ['a mutation over GET', 'BAD_REQUEST', 405, `?query=${encodeURIComponent('mutation { __typename }')}`, { headers: graphqlResponse }],
    [
      'a batch over BATCHING_LIMIT',
      'BAD_REQUEST',
      413,
      '',
      post([{ query: '{ __typename }' }, { query: '{ __typename }' }, { query: '{ __typename }' }]),
    ],
    [
      'a content type GraphQL does not read',
      'BAD_REQUEST',
      415,
      '',
      post({ query: '{ __typename }' }, { ...graphqlResponse, 'content-type': 'text/plain' }),
    ],
    ['a body over MAX_BODY_BYTES', 'PAYLOAD_TOO_LARGE', 413, '', post({ query: `{ __typename } # ${'x'.repeat(2_000)}` })],
  ];
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({}, { MAX_DEPTH: '4', UPSTREAM_BUDGET: '2', BATCHING_LIMIT: '2', MAX_BODY_BYTES: '1024' });
  });
  afterAll(() => stack.close());

  it.each(cases)('%s: %s with HTTP %i', async (_name, code, status, query, init) => {
    const res = await fetch(`${stack.url}/graphql${query}`, init);
    const body = (await res.json()) as { errors?: { extensions?: { code?: string } }[] };
    expect([res.status, body.errors?.[0]?.extensions?.code]).toEqual([status, code]);
    expect(statusesOf(code)).toContain(status);
  });
});
