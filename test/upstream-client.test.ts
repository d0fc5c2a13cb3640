import { MockAgent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { parseRetryAfter, UpstreamClient } from '../src/upstream/client.ts';
import { UpstreamError } from '../src/upstream/errors.ts';

const BASE = 'http://upstream.test/api/v3';
/** The client as the gateway configures it by default. */
const { upstream: DEFAULTS, maxKeys } = loadConfig({});
let agent: MockAgent | undefined;
const client = (resilience = { ...DEFAULTS.resilience, retries: 0 }) => {
  const mock = new MockAgent();
  mock.disableNetConnect();
  agent = mock;
  return {
    c: new UpstreamClient({ ...DEFAULTS, apiUrl: BASE, timeoutMs: 1000, connections: 1, maxKeys, dispatcher: mock, resilience }),
    pool: mock.get('http://upstream.test'),
  };
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
      .reply(
        200,
        {
          status: 'success',
          data: [{ id: 'e1', brandNew: { x: 1 } }],
          metadata: { pagination: { total: 7 }, somethingElse: true },
          extra: 1,
        },
        { headers: { 'x-ratelimit-limit': '1000', 'x-ratelimit-remaining': '990', 'x-ratelimit-reset': '1700000000' } },
      );
    const envelope = await c.send({
      method: 'GET',
      path: '/data/events/room/r1',
      query: new URLSearchParams({ limit: '2' }),
      key: 'k1',
      requestId: 'rid',
    });
    expect(envelope).toEqual({
      data: [{ id: 'e1', brandNew: { x: 1 } }],
      metadata: { pagination: { total: 7 }, somethingElse: true },
      rateLimit: { limit: 1000, remaining: 990, reset: 1700000000 },
      bytes: 129,
    });
  });

  it('accepts a bare object as data and a missing metadata', async () => {
    const { c, pool } = client();
    pool.intercept({ path: '/api/v3/experiments/e1', method: 'GET' }).reply(200, { status: 'success', data: { id: 'e1' } });
    expect(await c.send({ method: 'GET', path: '/experiments/e1', key: 'k' })).toEqual({
      data: { id: 'e1' },
      metadata: {},
      rateLimit: null,
      bytes: 39,
    });
  });

  it('maps error envelopes to codes with message, details and Retry-After', async () => {
    const { c, pool } = client();
    pool
      .intercept({ path: '/api/v3/a', method: 'GET' })
      .reply(
        429,
        { status: 'error', error: { code: 'RATE_LIMIT_EXCEEDED', message: 'Slow down', details: { limit: 100 } } },
        { headers: { 'retry-after': '17' } },
      );
    pool
      .intercept({ path: '/api/v3/b', method: 'GET' })
      .reply(400, { status: 'error', error: { code: 'INVALID_PARAMETER', message: 'Bad', details: { parameter: 'startTime' } } });
    pool
      .intercept({ path: '/api/v3/c', method: 'GET' })
      .reply(502, '<html>bad gateway</html>', { headers: { 'content-type': 'text/html' } });
    pool.intercept({ path: '/api/v3/d', method: 'GET' }).reply(200, 'not json');
    pool.intercept({ path: '/api/v3/e', method: 'GET' }).reply(504, '');
    const a = await failure(c.send({ method: 'GET', path: '/a', key: 'k' }));
    expect([a.code, a.message, a.status, a.upstreamCode, a.details, a.retryAfter]).toEqual([
      'RATE_LIMITED',
      'Slow down',
      429,
      'RATE_LIMIT_EXCEEDED',
      { limit: 100 },
      17,
    ]);
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

  // Issue 9, item 9: before, `Retry-After: 999999` was taken as is (11.6 days of refusals).
  it('caps Retry-After at an hour, also for an HTTP date', async () => {
    expect(parseRetryAfter('999999')).toBe(3600);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 1, 1)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(3600);
    expect(parseRetryAfter('3600')).toBe(3600);
    const { c, pool } = client();
    const limited = { status: 'error', error: { code: 'RATE_LIMIT_EXCEEDED', message: 'Slow down', details: { retryAfter: 999999 } } };
    pool.intercept({ path: '/api/v3/a', method: 'GET' }).reply(429, limited, { headers: { 'retry-after': '999999' } });
    pool.intercept({ path: '/api/v3/b', method: 'GET' }).reply(429, limited);
    expect((await failure(c.send({ method: 'GET', path: '/a', key: 'k' }))).retryAfter).toBe(3600);
    expect((await failure(c.send({ method: 'GET', path: '/b', key: 'k' }))).retryAfter).toBe(3600);
  });

  // Issue 9, item 10: before, a 200 with {"status":"error"} and a `data` field was taken as success.
  it('takes a 2xx whose body says "status": "error" as the error it describes', async () => {
    const { c, pool } = client();
    pool.intercept({ path: '/api/v3/experiments', method: 'GET' }).reply(200, {
      status: 'error',
      data: [],
      error: { code: 'NOT_FOUND', message: 'No experiments here', details: { resource: 'experiment' } },
    });
    pool
      .intercept({ path: '/api/v3/experiments/e1', method: 'GET' })
      .reply(200, { status: 'error', error: { code: 'INTERNAL_SERVER_ERROR', message: 'db down at 10.0.0.7', details: { stack: 'x' } } });
    pool.intercept({ path: '/api/v3/experiments/e2', method: 'GET' }).reply(200, { status: 'error' });
    const a = await failure(c.send({ method: 'GET', path: '/experiments', key: 'k' }));
    expect([a.code, a.message, a.status, a.upstreamCode, a.details]).toEqual([
      'NOT_FOUND',
      'No experiments here',
      200,
      'NOT_FOUND',
      { resource: 'experiment' },
    ]);
    const b = await failure(c.send({ method: 'GET', path: '/experiments/e1', key: 'k' }));
    expect([b.code, b.message, b.upstreamCode, b.details]).toEqual([
      'UPSTREAM_ERROR',
      'The HyperStudy API answered HTTP 200 with error INTERNAL_SERVER_ERROR',
      'INTERNAL_SERVER_ERROR',
      {},
    ]);
    const e = await failure(c.send({ method: 'GET', path: '/experiments/e2', key: 'k' }));
    expect([e.code, e.message]).toEqual(['UPSTREAM_ERROR', 'The HyperStudy API answered with a body that is not a success envelope']);
  });

  // Issue 9, item 12: before, a 5xx's message (with a password) and details (a stack, SQL) reached callers verbatim.
  it("passes a 5xx's code but not its text, and only the documented detail fields of a 4xx", async () => {
    const notes: unknown[] = [];
    const mock = new MockAgent();
    mock.disableNetConnect();
    agent = mock;
    const c = new UpstreamClient({
      ...DEFAULTS,
      apiUrl: BASE,
      timeoutMs: 1000,
      connections: 1,
      maxKeys,
      dispatcher: mock,
      resilience: { ...DEFAULTS.resilience, retries: 0 },
      onFailureNote: (route, note) => notes.push({ route, ...note }),
    });
    const pool = mock.get('http://upstream.test');
    pool.intercept({ path: '/api/v3/experiments/e1', method: 'GET' }).reply(500, {
      status: 'error',
      error: {
        code: 'INTERNAL_SERVER_ERROR',
        message: 'connect failed: postgres://app:password=hunter2@db/prod with key hst_live_abc123',
        details: { stack: 'Error: at db.js:1', sql: 'SELECT * FROM keys', parameter: 'x' },
      },
    });
    pool.intercept({ path: '/api/v3/data/events/room/r1', method: 'GET' }).reply(400, {
      status: 'error',
      error: {
        code: 'INVALID_PARAMETER',
        message: "Invalid value for parameter 'startTime'",
        details: {
          parameter: 'startTime',
          value: 'yesterday',
          expected: 'ISO 8601 timestamp',
          stack: 'Error: at parse.js:9',
          query: 'SELECT 1',
          errors: [{ index: 2, field: 'onset', message: 'must be a number', internal: { trace: 1 } }],
          required: ['read:events', { nested: true }],
        },
      },
    });
    const server = await failure(c.send({ method: 'GET', path: '/experiments/e1', key: 'k' }));
    expect([server.code, server.message, server.status, server.upstreamCode, server.details]).toEqual([
      'UPSTREAM_ERROR',
      'The HyperStudy API answered HTTP 500',
      500,
      'INTERNAL_SERVER_ERROR',
      {},
    ]);
    const client4xx = await failure(c.send({ method: 'GET', path: '/data/events/room/r1', key: 'k' }));
    expect([client4xx.code, client4xx.message, client4xx.details]).toEqual([
      'BAD_USER_INPUT',
      "Invalid value for parameter 'startTime'",
      {
        parameter: 'startTime',
        value: 'yesterday',
        expected: 'ISO 8601 timestamp',
        errors: [{ index: 2, field: 'onset', message: 'must be a number' }],
        required: ['read:events'],
      },
    ]);
    // What the upstream said is kept for a debug log, with secrets masked.
    expect(notes[0]).toEqual({
      route: 'GET /experiments/:id',
      status: 500,
      upstreamCode: 'INTERNAL_SERVER_ERROR',
      message: 'connect failed: postgres://app:password=[redacted] with key [key]',
    });
  });
});

describe('resilience', () => {
  const fast = { retries: 3, retryBaseMs: 1, retryMaxMs: 5, breakerThreshold: 3, breakerHalfOpenMs: 60_000, breakerMinKeys: 1 };
  const ok = { status: 'success', data: [{ id: 'x' }], metadata: {} };

  it('retries an idempotent request on 5xx and network errors, then succeeds', async () => {
    const { c, pool } = client(fast);
    pool
      .intercept({ path: '/api/v3/r', method: 'GET' })
      .reply(503, { status: 'error', error: { code: 'INTERNAL_SERVER_ERROR', message: 'down' } });
    pool.intercept({ path: '/api/v3/r', method: 'GET' }).replyWithError(new Error('reset'));
    pool.intercept({ path: '/api/v3/r', method: 'GET' }).reply(200, ok);
    const retried: string[] = [];
    const envelope = await c.send({ method: 'GET', path: '/r', key: 'k', onRetry: (e) => retried.push(e.code) });
    expect(envelope.data).toEqual([{ id: 'x' }]);
    expect(retried).toEqual(['UPSTREAM_ERROR', 'UPSTREAM_ERROR']);
  });

  it('does not retry answers about the request (4xx) nor a POST', async () => {
    const { c, pool } = client(fast);
    pool
      .intercept({ path: '/api/v3/bad', method: 'GET' })
      .reply(400, { status: 'error', error: { code: 'INVALID_PARAMETER', message: 'no' } });
    pool
      .intercept({ path: '/api/v3/data/events/batch', method: 'POST' })
      .reply(503, { status: 'error', error: { code: 'INTERNAL_SERVER_ERROR', message: 'down' } });
    const retried: string[] = [];
    expect((await failure(c.send({ method: 'GET', path: '/bad', key: 'k', onRetry: (e) => retried.push(e.code) }))).code).toBe(
      'BAD_USER_INPUT',
    );
    expect(
      (
        await failure(
          c.send({ method: 'POST', path: '/data/events/batch', key: 'k', body: { events: [] }, onRetry: (e) => retried.push(e.code) }),
        )
      ).status,
    ).toBe(503);
    expect(retried).toEqual([]);
  });

  it('opens the shared circuit after consecutive outages and then fails fast', async () => {
    const { c, pool } = client({ ...fast, retries: 0 });
    pool.intercept({ path: '/api/v3/r', method: 'GET' }).reply(500, 'oops').times(3);
    for (let i = 0; i < 3; i++) expect((await failure(c.send({ method: 'GET', path: '/r', key: 'k' }))).status).toBe(500);
    expect(c.circuit).toBe('open');
    const fastFail = await failure(c.send({ method: 'GET', path: '/r', key: 'k' }));
    expect([fastFail.code, fastFail.message, fastFail.details]).toEqual([
      'UPSTREAM_ERROR',
      'The HyperStudy API is unavailable; requests fail fast until it recovers',
      { circuit: 'open', scope: 'upstream' },
    ]);
  });

  it("stops at the operation's deadline with UPSTREAM_TIMEOUT", async () => {
    const { c, pool } = client(fast);
    pool.intercept({ path: '/api/v3/slow', method: 'GET' }).reply(200, ok).delay(2_000);
    const error = await failure(c.send({ method: 'GET', path: '/slow', key: 'k', signal: AbortSignal.timeout(100) }));
    expect([error.code, error.message]).toEqual(['UPSTREAM_TIMEOUT', "The operation's deadline passed before the HyperStudy API answered"]);
  });
});
