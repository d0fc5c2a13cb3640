import { MockAgent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { parseRetryAfter, UpstreamClient } from '../src/upstream/client.ts';
import { UpstreamError } from '../src/upstream/errors.ts';

const BASE = 'http://upstream.test/api/v3';
let agent: MockAgent | undefined;
const client = () => {
  const mock = new MockAgent();
  mock.disableNetConnect();
  agent = mock;
  return { c: new UpstreamClient({ baseUrl: BASE, timeoutMs: 1000, connections: 1, dispatcher: mock }), pool: mock.get('http://upstream.test') };
};
afterEach(async () => {
  await agent?.close();
  agent = undefined;
});

const failure = async (promise: Promise<unknown>): Promise<UpstreamError> => {
  try {
    await promise;
  } catch (error) {
    if (error instanceof UpstreamError) return error;
    throw error;
  }
  throw new Error('expected a failure');
};

describe('UpstreamClient', () => {
  it('sends the key as X-API-Key and parses the envelope, ignoring unknown fields', async () => {
    const { c, pool } = client();
    pool
      .intercept({ path: '/api/v3/data/events/room/r1?limit=2', method: 'GET', headers: { 'x-api-key': 'k1', 'x-request-id': 'rid' } })
      .reply(200, { status: 'success', data: [{ id: 'e1', brandNew: { x: 1 } }], metadata: { pagination: { total: 7 }, somethingElse: true }, extra: 1 }, { headers: { 'x-ratelimit-limit': '1000', 'x-ratelimit-remaining': '990', 'x-ratelimit-reset': '1700000000' } });
    const envelope = await c.send({ method: 'GET', path: '/data/events/room/r1', query: new URLSearchParams({ limit: '2' }), key: 'k1', requestId: 'rid' });
    expect(envelope).toEqual({
      data: [{ id: 'e1', brandNew: { x: 1 } }],
      metadata: { pagination: { total: 7 }, somethingElse: true },
      rateLimit: { limit: 1000, remaining: 990, reset: 1700000000 },
    });
  });

  it('accepts a bare object as data and a missing metadata', async () => {
    const { c, pool } = client();
    pool.intercept({ path: '/api/v3/experiments/e1', method: 'GET' }).reply(200, { status: 'success', data: { id: 'e1' } });
    expect(await c.send({ method: 'GET', path: '/experiments/e1', key: 'k' })).toEqual({ data: { id: 'e1' }, metadata: {}, rateLimit: null });
  });

  it('maps error envelopes to codes with message, details and Retry-After', async () => {
    const { c, pool } = client();
    pool.intercept({ path: '/api/v3/a', method: 'GET' }).reply(429, { status: 'error', error: { code: 'RATE_LIMIT_EXCEEDED', message: 'Slow down', details: { limit: 100 } } }, { headers: { 'retry-after': '17' } });
    pool.intercept({ path: '/api/v3/b', method: 'GET' }).reply(400, { status: 'error', error: { code: 'INVALID_PARAMETER', message: 'Bad', details: { parameter: 'startTime' } } });
    pool.intercept({ path: '/api/v3/c', method: 'GET' }).reply(502, '<html>bad gateway</html>', { headers: { 'content-type': 'text/html' } });
    pool.intercept({ path: '/api/v3/d', method: 'GET' }).reply(200, 'not json');
    pool.intercept({ path: '/api/v3/e', method: 'GET' }).reply(504, '');
    const a = await failure(c.send({ method: 'GET', path: '/a', key: 'k' }));
    expect([a.code, a.message, a.status, a.upstreamCode, a.details, a.retryAfter]).toEqual(['RATE_LIMITED', 'Slow down', 429, 'RATE_LIMIT_EXCEEDED', { limit: 100 }, 17]);
    const b = await failure(c.send({ method: 'GET', path: '/b', key: 'k' }));
    expect([b.code, b.upstreamCode, b.details]).toEqual(['BAD_USER_INPUT', 'INVALID_PARAMETER', { parameter: 'startTime' }]);
    const cc = await failure(c.send({ method: 'GET', path: '/c', key: 'k' }));
    expect([cc.code, cc.message, cc.status]).toEqual(['UPSTREAM_ERROR', 'The HyperStudy API answered HTTP 502', 502]);
    const d = await failure(c.send({ method: 'GET', path: '/d', key: 'k' }));
    expect([d.code, d.message]).toEqual(['UPSTREAM_ERROR', 'The HyperStudy API answered with a body that is not a success envelope']);
    const e = await failure(c.send({ method: 'GET', path: '/e', key: 'k' }));
    expect(e.code).toBe('UPSTREAM_TIMEOUT');
  });

  it('maps network errors without leaking the key', async () => {
    const { c, pool } = client();
    pool.intercept({ path: '/api/v3/x', method: 'GET' }).replyWithError(new Error('socket hang up'));
    const error = await failure(c.send({ method: 'GET', path: '/x', key: 'hst_live_secret' }));
    expect([error.code, error.message, error.status]).toEqual(['UPSTREAM_ERROR', 'The HyperStudy API could not be reached', null]);
    expect(JSON.stringify({ message: error.message, details: error.details })).not.toContain('hst_live_secret');
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('30')).toBe(30);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 10)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(10);
    expect(parseRetryAfter('soon')).toBeNull();
    expect(parseRetryAfter(undefined)).toBeNull();
  });
});
