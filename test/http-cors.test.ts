import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, stackPerTest, type Stack } from './helpers/stack.ts';
import { FULL } from './helpers/simulator.ts';

/** A stack of the test's own, closed after it. */
const ownStack = stackPerTest();

const CORS_HEADERS = [
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-allow-methods',
  'access-control-allow-headers',
  'access-control-expose-headers',
  'access-control-max-age',
  'vary',
];

/** The CORS headers of an answer, exactly (absent ones left out). */
const cors = (res: Response): Record<string, string> =>
  Object.fromEntries(CORS_HEADERS.flatMap((name) => (res.headers.has(name) ? [[name, res.headers.get(name) ?? '']] : [])));

const preflight = (url: string, origin: string) =>
  fetch(`${url}/graphql`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-api-key' },
  });

const simple = (url: string, origin: string) =>
  fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { ...(origin ? { origin } : {}), 'content-type': 'application/json', 'x-api-key': FULL },
    body: JSON.stringify({ query: '{ __typename }' }),
  });

const PREFLIGHT = {
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers': 'content-type, x-api-key, authorization, x-request-id, x-organization-id, x-explain-plan, x-dry-run',
  'access-control-max-age': '600',
};

// Issue 9, item 19: before, the default `*` reflected any Origin with Access-Control-Allow-Credentials: true.
describe('CORS with the default CORS_ORIGINS=*', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack.close());

  it('allows any origin with the literal *, and never credentials', async () => {
    const pre = await preflight(stack.url, 'https://evil.example.com');
    expect(pre.status).toBe(204);
    expect(cors(pre)).toEqual({ 'access-control-allow-origin': '*', ...PREFLIGHT });
    const res = await simple(stack.url, 'https://evil.example.com');
    expect(res.status).toBe(200);
    expect(cors(res)).toEqual({
      'access-control-allow-origin': '*',
      'access-control-expose-headers': 'x-request-id, retry-after, content-disposition',
    });
  });

  it('lets a browser ask for a table’s dry run (X-Dry-Run) and read a table’s Retry-After and file name', async () => {
    const pre = await fetch(`${stack.url}/graphql?format=csv`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://lab.example.org',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-api-key,x-dry-run',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-headers')?.split(', ')).toContain('x-dry-run');
    const table = await fetch(`${stack.url}/graphql?format=csv`, {
      method: 'POST',
      headers: { origin: 'https://lab.example.org', 'content-type': 'application/json', 'x-api-key': 'hst_test_demo_full' },
      body: JSON.stringify({ query: '{ experiments { edges { node { experimentId } } } }' }),
    });
    expect(table.status).toBe(200);
    expect(table.headers.get('content-disposition')).toBe('attachment; filename="table.csv"');
    expect(cors(table)).toEqual({
      'access-control-allow-origin': '*',
      'access-control-expose-headers': 'x-request-id, retry-after, content-disposition',
    });
    await table.arrayBuffer();
  });

  it('adds nothing to a request without an Origin', async () => {
    expect(cors(await simple(stack.url, ''))).toEqual({});
  });
});

describe('CORS with a list of origins', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({}, { CORS_ORIGINS: 'https://dash.example.org, https://lab.example.org' });
  });
  afterAll(() => stack.close());

  it('names a listed origin back, without credentials', async () => {
    expect(cors(await preflight(stack.url, 'https://lab.example.org'))).toEqual({
      'access-control-allow-origin': 'https://lab.example.org',
      ...PREFLIGHT,
      vary: 'Origin',
    });
    expect(cors(await simple(stack.url, 'https://dash.example.org'))).toEqual({
      'access-control-allow-origin': 'https://dash.example.org',
      'access-control-expose-headers': 'x-request-id, retry-after, content-disposition',
      vary: 'Origin',
    });
  });

  it('gives any other origin (the sandboxed `null` too) no CORS headers', async () => {
    for (const origin of ['https://evil.example.com', 'null']) {
      expect(cors(await preflight(stack.url, origin))).toEqual({ vary: 'Origin' });
      const res = await simple(stack.url, origin);
      expect([res.status, cors(res)]).toEqual([200, { vary: 'Origin' }]);
    }
  });
});

describe('CORS off', () => {
  it('sends no CORS headers', async () => {
    const stack = await ownStack({}, { CORS_ORIGINS: 'off' });
    expect(cors(await preflight(stack.url, 'https://dash.example.org'))).toEqual({});
    expect(cors(await simple(stack.url, 'https://dash.example.org'))).toEqual({});
  });
});
