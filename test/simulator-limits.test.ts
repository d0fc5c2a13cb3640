import { afterEach, describe, expect, it } from 'vitest';
import { describeSimulator, parseSimulatorArgs } from '../src/simulator/cli.ts';
import { RateLimiter } from '../src/simulator/rate-limit.ts';
import { FAULT_MODES, startSimulator, type Simulator } from '../src/simulator/server.ts';
import { call } from './helpers/http.ts';
import { FULL, NO_RATE_LIMIT, READONLY } from './helpers/simulator.ts';

const ROOM = 'room_movie01_001';
let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe('rate limits', () => {
  it('allows perMinute requests per endpoint per key, then 429 with Retry-After', async () => {
    sim = await startSimulator({ rateLimit: { enabled: true, perHour: 1000, perMinute: 3 } });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await call(`${sim.url}/data/events/room/${ROOM}`, { key: FULL })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limited = await call<{ error: { code: string; details: Record<string, unknown> } }>(`${sim.url}/data/events/room/${ROOM}`, {
      key: FULL,
    });
    expect(limited.body.error.code).toBe('RATE_LIMIT_EXCEEDED');
    expect(limited.body.error.details).toMatchObject({ limit: 3, window: 'minute' });
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Another endpoint and another key still have their own budgets.
    expect((await call(`${sim.url}/data/chat/room/${ROOM}`, { key: FULL })).status).toBe(200);
    expect((await call(`${sim.url}/data/events/room/${ROOM}`, { key: READONLY })).status).toBe(200);
  });

  it('allows perHour requests per key across endpoints and reports the remaining budget', async () => {
    sim = await startSimulator({ rateLimit: { enabled: true, perHour: 2, perMinute: 100 } });
    const first = await call(`${sim.url}/data/events/room/${ROOM}`, { key: FULL });
    expect(first.headers.get('x-ratelimit-limit')).toBe('2');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('1');
    expect((await call(`${sim.url}/data/chat/room/${ROOM}`, { key: FULL })).status).toBe(200);
    const third = await call<{ error: { details: Record<string, unknown> } }>(`${sim.url}/experiments`, { key: FULL });
    expect(third.status).toBe(429);
    expect(third.body.error.details).toMatchObject({ limit: 2, window: 'hour' });
  });

  it('defaults to the documented 1000/hour and 100/minute, and can be turned off', async () => {
    sim = await startSimulator({ rateLimit: NO_RATE_LIMIT });
    for (let i = 0; i < 3; i++) expect((await call(`${sim.url}/experiments`, { key: FULL })).status).toBe(200);
    expect(parseSimulatorArgs([]).rateLimit).toEqual({ enabled: true, perHour: 1000, perMinute: 100, minuteMs: 60_000 });
    expect(parseSimulatorArgs(['--rate-limit', 'off']).rateLimit.enabled).toBe(false);
  });

  it('opens a new window when the old one has passed', () => {
    let now = 0;
    const limiter = new RateLimiter({ enabled: true, perHour: 1000, perMinute: 2 }, () => now);
    expect([limiter.take('k', 'e').ok, limiter.take('k', 'e').ok, limiter.take('k', 'e').ok]).toEqual([true, true, false]);
    now = 30_000;
    expect(limiter.take('k', 'e')).toEqual({ ok: false, limit: 2, window: 'minute', retryAfter: 30 });
    now = 60_000;
    expect(limiter.take('k', 'e').ok).toBe(true);
  });

  it('takes a shorter minute window for tests (minuteMs, --rate-limit-minute-ms)', () => {
    let now = 0;
    const limiter = new RateLimiter({ enabled: true, perHour: 1000, perMinute: 2, minuteMs: 2_000 }, () => now);
    expect([limiter.take('k', 'e').ok, limiter.take('k', 'e').ok, limiter.take('k', 'e').ok]).toEqual([true, true, false]);
    now = 500;
    expect(limiter.take('k', 'e')).toEqual({ ok: false, limit: 2, window: 'minute', retryAfter: 2 });
    now = 2_000;
    expect(limiter.take('k', 'e').ok).toBe(true);
    expect(describeSimulator('http://x/api/v3', parseSimulatorArgs(['--rate-limit-minute-ms', '2000']))).toContain(
      '  rate limits: 1000/hour per key, 100/2 s per endpoint;',
    );
  });
});

describe('faults', () => {
  it.each([
    ['http500', 500],
    ['http502', 502],
    ['http503', 503],
  ] as const)('%s answers the error envelope with status %i', async (mode, status) => {
    sim = await startSimulator({ faults: { rate: 1, modes: [mode], stallMs: 1000 } });
    const res = await call<{ status: string; error: { code: string } }>(`${sim.url}/data/events/room/${ROOM}`, { key: FULL });
    expect(res.status).toBe(status);
    expect(res.body).toMatchObject({ status: 'error', error: { code: 'INTERNAL_SERVER_ERROR' } });
    expect(sim.stats.requests[0]?.fault).toBe(mode);
  });

  it('html502 answers a bare HTML page', async () => {
    sim = await startSimulator({ faults: { rate: 1, modes: ['html502'], stallMs: 1000 } });
    const res = await call(`${sim.url}/experiments`, { key: FULL });
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toBe('text/html');
    expect(res.text).toContain('<h1>502 Bad Gateway</h1>');
  });

  it('drop closes the connection without an answer', async () => {
    sim = await startSimulator({ faults: { rate: 1, modes: ['drop'], stallMs: 1000 } });
    await expect(fetch(`${sim.url}/experiments`, { headers: { 'x-api-key': FULL } })).rejects.toThrow();
  });

  it('stall holds the request past a client timeout', async () => {
    sim = await startSimulator({ faults: { rate: 1, modes: ['stall'], stallMs: 5_000 } });
    const started = Date.now();
    await expect(fetch(`${sim.url}/experiments`, { headers: { 'x-api-key': FULL }, signal: AbortSignal.timeout(300) })).rejects.toThrow(
      /aborted|timeout/i,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('injects faults into about the asked fraction of requests, and adds latency', async () => {
    sim = await startSimulator({ latencyMs: 30, faults: { rate: 0.3, modes: ['http503'], stallMs: 1000 } });
    const started = Date.now();
    const statuses = await Promise.all(Array.from({ length: 200 }, () => call(`${sim?.url}/health`).then((r) => r.status)));
    expect(Date.now() - started).toBeGreaterThanOrEqual(30);
    const faults = statuses.filter((s) => s === 503).length;
    expect(faults).toBeGreaterThan(30);
    expect(faults).toBeLessThan(90);
    expect(faults + statuses.filter((s) => s === 200).length).toBe(200);
  });

  it('can be reconfigured while running', async () => {
    sim = await startSimulator({ faults: { rate: 1, modes: ['http500'], stallMs: 1000 } });
    expect((await call(`${sim.url}/health`)).status).toBe(500);
    sim.configure({ faults: { rate: 0 } });
    expect((await call(`${sim.url}/health`)).status).toBe(200);
  });
});

describe('command line', () => {
  it('parses every flag', () => {
    const o = parseSimulatorArgs([
      '--port',
      '4010',
      '--seed',
      '9',
      '--rooms',
      '20',
      '--participants-per-room',
      '4',
      '--events-per-participant',
      '50',
      '--latency-ms',
      '20',
      '--fault-rate',
      '0.2',
      '--fault-modes',
      'drop,stall',
      '--stall-ms',
      '100',
      '--rate-limit-hour',
      '10',
      '--rate-limit-minute',
      '5',
      '--rate-limit-minute-ms',
      '2000',
    ]);
    expect(o).toMatchObject({
      port: 4010,
      seed: 9,
      rooms: 20,
      participantsPerRoom: 4,
      eventsPerParticipant: 50,
      latencyMs: 20,
      faults: { rate: 0.2, modes: ['drop', 'stall'], stallMs: 100 },
      rateLimit: { enabled: true, perHour: 10, perMinute: 5, minuteMs: 2000 },
    });
    expect(parseSimulatorArgs([]).faults.modes).toEqual(FAULT_MODES);
  });

  it.each([
    [['--rooms', 'many'], "--rooms must be an integer from 1 to 5000, got 'many'"],
    [['--fault-rate', '2'], "--fault-rate must be a number from 0 to 1, got '2'"],
    [['--fault-modes', 'meteor'], "--fault-modes takes http500, http502, http503, html502, drop, stall; got 'meteor'"],
    [['--rate-limit', 'sometimes'], "--rate-limit takes on or off, got 'sometimes'"],
    [['--extra-keys', 'all'], "--extra-keys must be an integer from 0 to 10000, got 'all'"],
    [['--colour', 'blue'], "Unknown option '--colour'"],
  ])('rejects %j', (argv, message) => {
    expect(() => parseSimulatorArgs(argv)).toThrow(message);
  });
});

describe('extra keys', () => {
  it('gives a load test N more keys of the demo user with every scope (--extra-keys)', async () => {
    const options = parseSimulatorArgs(['--extra-keys', '3']);
    expect(options.extraKeys.map((k) => [k.key, k.userId, k.scopes])).toEqual([
      ['hst_test_extra_1', 'user_demo', ['*']],
      ['hst_test_extra_2', 'user_demo', ['*']],
      ['hst_test_extra_3', 'user_demo', ['*']],
    ]);
    expect(parseSimulatorArgs([]).extraKeys).toEqual([]);
    expect(describeSimulator('http://x/api/v3', options)).toContain('    hst_test_extra_1 to hst_test_extra_3 scopes * (--extra-keys)');
    sim = await startSimulator({ extraKeys: options.extraKeys, rateLimit: NO_RATE_LIMIT });
    const statuses = [];
    for (const key of ['hst_test_extra_1', 'hst_test_extra_3', 'hst_test_extra_4'])
      statuses.push((await call(`${sim.url}/data/events/room/${ROOM}?limit=1`, { key })).status);
    expect(statuses).toEqual([200, 200, 401]);
  });
});

describe('scale', () => {
  it('serves 100,000+ events with scoped queries reading only their scope', async () => {
    sim = await startSimulator({
      rooms: 50,
      participantsPerRoom: 8,
      eventsPerParticipant: 250,
      rateLimit: NO_RATE_LIMIT,
    });
    const exp = await call<{ metadata: { pagination: { total: number } } }>(`${sim.url}/data/events/experiment/exp_movie01?limit=1`, {
      key: FULL,
    });
    expect(exp.body.metadata.pagination.total).toBe(100_000);
    const room = await call<{ metadata: { pagination: { total: number } } }>(
      `${sim.url}/data/events/room/room_movie01_050?category=media&limit=1`,
      { key: FULL },
    );
    expect(room.body.metadata.pagination.total).toBeGreaterThan(0);
    expect(sim.store.index('events').byRoom.get('room_movie01_050')).toHaveLength(2_000);
  });
});
