import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './helpers/stack.ts';
import { FULL } from './helpers/simulator.ts';

const HINT = "send the operation as JSON with the header content-type: application/json (with curl: -H 'content-type: application/json')";

// Issue 19: curl without a content type got "Must provide query string." (with HTTP 200), or an empty 415.
describe('a POST without the JSON content type', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack.close());

  const post = async (contentType: string | null, body: string) => {
    const headers: Record<string, string> = { 'x-api-key': FULL };
    if (contentType !== null) headers['content-type'] = contentType;
    const res = await fetch(`${stack.url}/graphql`, { method: 'POST', headers, body: new TextEncoder().encode(body) });
    return { status: res.status, body: (await res.json()) as unknown };
  };

  it.each([
    ['no content type', null, 415, `The request has no content type: ${HINT}`],
    ['text/plain', 'text/plain', 415, `The content type is not one GraphQL reads: ${HINT}`],
    ['a form (curl -d)', 'application/x-www-form-urlencoded', 400, `The form carried no operation: ${HINT}`],
  ])('with %s is told what to send', async (_name, contentType, status, message) => {
    const res = await post(contentType, '{"query":"{ experiment(id: \\"exp_movie01\\") { name } }"}');
    expect(res).toEqual({ status, body: { errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] } });
    expect(stack.sim.stats.total).toBe(0);
  });

  it('as a form with a query field still runs', async () => {
    const res = await post('application/x-www-form-urlencoded', `query=${encodeURIComponent('{ __typename }')}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ data: { __typename: 'Query' } });
  });
});
