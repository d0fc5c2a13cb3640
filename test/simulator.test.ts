import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_KEYS } from '../src/simulator/keys.ts';
import { EVENT_CATEGORIES } from '../src/simulator/model.ts';
import { COMPLETION_CODES, LISTING_TYPES } from '../src/simulator/spec.ts';
import { startSimulator, type Simulator } from '../src/simulator/server.ts';
import { call } from './helpers/http.ts';
import { FULL, NO_RATE_LIMIT, READONLY, EVENTS_ONLY, OTHER, simulatorPerTest } from './helpers/simulator.ts';

const EXP = 'exp_movie01';
const ROOM = 'room_movie01_001';

type Envelope = {
  status: string;
  data: Record<string, unknown>[];
  metadata: {
    dataType: string;
    scope: string;
    scopeId: string;
    query: Record<string, unknown>;
    pagination: { total: number; returned: number; hasMore: boolean; limit: number; offset: number; nextOffset?: number };
    processing: Record<string, unknown>;
  };
  error?: { code: string; message: string; details: Record<string, unknown> };
};

let sim: Simulator;
const get = (path: string, key: string | null = FULL, on: Simulator = sim) =>
  call<Envelope>(`${on.url}${path}`, key === null ? {} : { key });

beforeAll(async () => {
  sim = await startSimulator({ rateLimit: NO_RATE_LIMIT });
});
afterAll(() => sim.close());
/** For the tests that write: what they write is not in the other tests' data. */
const ownSimulator = simulatorPerTest();

async function firstParticipant(on: Simulator = sim): Promise<{ id: string; roomId: string }> {
  const res = await get(`/data/participants/room/${ROOM}?limit=1`, FULL, on);
  const p = res.body.data[0];
  return { id: String(p?.id), roomId: String(p?.roomId) };
}

describe('envelope and data endpoints', () => {
  it('answers /health without a key', async () => {
    const res = await call<{ status: string; version: string }>(`${sim.url}/health`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'healthy', version: '3.0.0' });
  });

  it('wraps data in the documented envelope with pagination', async () => {
    const res = await get(`/data/events/room/${ROOM}?limit=10&offset=5`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('success');
    expect(res.body.data).toHaveLength(10);
    const { metadata } = res.body;
    expect(metadata).toMatchObject({ dataType: 'events', scope: 'room', scopeId: ROOM });
    expect(metadata.query).toEqual({
      startTime: null,
      endTime: null,
      category: null,
      limit: 10,
      offset: 5,
      sort: 'timestamp',
      order: 'asc',
    });
    // 3 participants x 30 events in each room.
    expect(metadata.pagination).toEqual({ total: 90, returned: 10, hasMore: true, limit: 10, offset: 5, nextOffset: 15 });
    expect(metadata.processing).toMatchObject({ enriched: true, version: '3.0.0' });
    expect(typeof metadata.processing.firstStateStartedAt).toBe('string');
  });

  it('omits nextOffset on the last page', async () => {
    const res = await get(`/data/events/room/${ROOM}?offset=80`);
    expect(res.body.metadata.pagination).toEqual({ total: 90, returned: 10, hasMore: false, limit: 1000, offset: 80 });
  });

  it('serves every data type at experiment and room scope, and the per-participant types at participant scope', async () => {
    const p = await firstParticipant();
    const counts: Record<string, number[]> = {};
    for (const type of LISTING_TYPES) {
      const scopes = [`experiment/${EXP}`, `room/${ROOM}`];
      if (type !== 'participants' && type !== 'rooms') scopes.push(`participant/${p.id}?roomId=${p.roomId}`);
      counts[type] = [];
      for (const scope of scopes) {
        const res = await get(`/data/${type}/${scope}`);
        expect(res.status, `${type} ${scope}`).toBe(200);
        expect(res.body.metadata.dataType).toBe(type);
        counts[type]?.push(res.body.metadata.pagination.total);
      }
    }
    // 4 rooms x 3 participants; per participant: 30 events, 30 continuous, 3 sparse, 2 recordings,
    // 4 chat, 4 video-chat, 6 sync, 4 components, 30 eye-tracking samples.
    expect(counts).toEqual({
      events: [360, 90, 30],
      recordings: [24, 6, 2],
      videochat: [48, 12, 4],
      chat: [48, 12, 4],
      'ratings/continuous': [360, 90, 30],
      'ratings/sparse': [36, 9, 3],
      sync: [72, 18, 6],
      components: [48, 12, 4],
      eyetracking: [360, 90, 30],
      participants: [12, 3],
      rooms: [4, 1],
    });
  });

  it('records carry experimentId, a room (roomId or legacy sessionId) and participantId', async () => {
    const res = await get(`/data/events/experiment/${EXP}`);
    const legacy = res.body.data.filter((r) => 'sessionId' in r && !('roomId' in r));
    expect(legacy.length).toBeGreaterThan(20);
    expect(legacy.length).toBeLessThan(100);
    for (const r of res.body.data) {
      expect(r.experimentId).toBe(EXP);
      expect(typeof (r.roomId ?? r.sessionId)).toBe('string');
      expect(typeof r.participantId).toBe('string');
    }
  });

  it('seeds every completion code, every event category and negative onsets', async () => {
    const participants = await get(`/data/participants/experiment/${EXP}`);
    expect(new Set(participants.body.data.map((p) => p.completionCode))).toEqual(new Set(COMPLETION_CODES));
    const events = await get(`/data/events/experiment/${EXP}`);
    expect(new Set(events.body.data.map((e) => e.category))).toEqual(new Set(EVENT_CATEGORIES));
    expect(events.body.data.filter((e) => Number(e.onset) < 0).length).toBeGreaterThan(0);
    const recordings = await get(`/data/recordings/room/${ROOM}`);
    expect(new Set(recordings.body.data.map((r) => (r.metadata as { type: string }).type))).toEqual(new Set(['video', 'audio']));
    expect(String(recordings.body.data[0]?.downloadPath)).toMatch(/^\/data\/recordings\/download\/room_movie01_001\/rec_/);
  });

  it('spaces continuous ratings 100-500 ms apart', async () => {
    const p = await firstParticipant();
    const res = await get(`/data/ratings/continuous/participant/${p.id}?roomId=${p.roomId}`);
    const gaps = res.body.data.slice(1).map((r, i) => Date.parse(String(r.timestamp)) - Date.parse(String(res.body.data[i]?.timestamp)));
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(100);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(500);
  });

  it('is deterministic for a seed and different for another', async () => {
    const again = await startSimulator({ rateLimit: NO_RATE_LIMIT });
    const other = await startSimulator({ seed: 7, rateLimit: NO_RATE_LIMIT });
    try {
      const a = await get(`/data/events/room/${ROOM}`);
      const b = await call<Envelope>(`${again.url}/data/events/room/${ROOM}`, { key: FULL });
      const c = await call<Envelope>(`${other.url}/data/events/room/${ROOM}`, { key: FULL });
      expect(b.body.data).toEqual(a.body.data);
      expect(c.body.data).not.toEqual(a.body.data);
    } finally {
      await Promise.all([again.close(), other.close()]);
    }
  });
});

describe('query parameters', () => {
  it('filters by time range (inclusive) on the type instant', async () => {
    const all = await get(`/data/events/room/${ROOM}`);
    const times = all.body.data.map((e) => String(e.timestamp));
    const start = times[20] ?? '';
    const end = times[39] ?? '';
    const res = await get(`/data/events/room/${ROOM}?startTime=${start}&endTime=${end}`);
    expect(res.body.data.map((e) => e.timestamp)).toEqual(times.slice(20, 40));
    expect(res.body.metadata.query).toMatchObject({ startTime: start, endTime: end });
  });

  it('filters by each type-specific parameter', async () => {
    const media = await get(`/data/events/experiment/${EXP}?category=media`);
    expect(media.body.data.length).toBeGreaterThan(0);
    expect(new Set(media.body.data.map((e) => e.category))).toEqual(new Set(['media']));

    const all = await get(`/data/components/experiment/${EXP}`);
    const done = await get(`/data/components/experiment/${EXP}?completed=true&componentType=ShowVideo&stateId=state_welcome`);
    expect(done.body.data).toEqual(
      all.body.data.filter((c) => c.completed === true && c.componentType === 'ShowVideo' && c.stateId === 'state_welcome'),
    );
    expect(done.body.metadata.query).toMatchObject({ completed: true, componentType: 'ShowVideo', stateId: 'state_welcome' });

    const success = await get(`/data/participants/experiment/${EXP}?completionCode=SUCCESS`);
    expect(success.body.data.map((p) => p.completionCode)).toEqual(['SUCCESS', 'SUCCESS']);

    const deployment = await get(`/data/rooms/experiment/${EXP}?deploymentId=dep_movie01_b`);
    expect(deployment.body.data.map((r) => r.id)).toEqual(['room_movie01_002', 'room_movie01_004']);
  });

  it('aggregates sync metrics into windows', async () => {
    const p = await firstParticipant();
    const raw = await get(`/data/sync/participant/${p.id}?roomId=${p.roomId}`);
    const agg = await get(`/data/sync/participant/${p.id}?roomId=${p.roomId}&aggregationWindow=3600000`);
    const samples = agg.body.data.reduce((n, r) => n + Number(r.sampleCount), 0);
    expect(samples).toBe(raw.body.metadata.pagination.total);
    expect(agg.body.data.length).toBeLessThan(raw.body.data.length);
    expect(agg.body.data[0]).toMatchObject({ aggregationWindow: 3600000, participantId: p.id });
  });

  it('sorts by the type sort fields in both orders, ties broken stably', async () => {
    const asc = await get(`/data/events/room/${ROOM}?sort=onset&order=asc`);
    const onsets = asc.body.data.map((e) => Number(e.onset));
    expect(onsets).toEqual([...onsets].sort((a, b) => a - b));
    const desc = await get(`/data/events/room/${ROOM}?order=desc`);
    const byTime = await get(`/data/events/room/${ROOM}`);
    expect(desc.body.data).toEqual([...byTime.body.data].reverse());
    const byType = await get(`/data/events/room/${ROOM}?sort=eventType&order=desc`);
    const types = byType.body.data.map((e) => String(e.eventType));
    expect(types).toEqual([...types].sort().reverse());
    const participants = await get(`/data/participants/experiment/${EXP}?sort=completionCode`);
    const codes = participants.body.data.map((p) => String(p.completionCode));
    expect(codes).toEqual([...codes].sort());
  });

  it('answers CSV with a header row and NDJSON one record a line', async () => {
    const json = await get(`/data/chat/room/${ROOM}?limit=3`);
    const csv = await call(`${sim.url}/data/chat/room/${ROOM}?limit=3&format=csv`, { key: FULL });
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = csv.text.trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]?.split(',')).toContain('messageId');
    expect(lines[1]).toContain(String(json.body.data[0]?.messageId));
    const nd = await call(`${sim.url}/data/chat/room/${ROOM}?limit=3&format=ndjson`, { key: FULL });
    expect(nd.headers.get('content-type')).toBe('application/x-ndjson');
    expect(
      nd.text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual(json.body.data);
  });

  it.each([
    ['startTime=invalid-date', 'startTime', 'invalid-date', 'ISO 8601 timestamp'],
    ['endTime=2024-13-45', 'endTime', '2024-13-45', 'ISO 8601 timestamp'],
    ['limit=5000', 'limit', '5000', 'integer between 1 and 1000'],
    ['limit=0', 'limit', '0', 'integer between 1 and 1000'],
    ['limit=ten', 'limit', 'ten', 'integer between 1 and 1000'],
    ['offset=-1', 'offset', '-1', 'integer >= 0'],
    ['order=up', 'order', 'up', 'one of asc, desc'],
    ['format=xml', 'format', 'xml', 'one of json, csv, ndjson'],
    ['sort=colour', 'sort', 'colour', 'one of timestamp, onset, eventType, category, participantId, id'],
    ['limit=1&limit=2', 'limit', '1,2', 'a single value'],
  ])('rejects %s with 400 INVALID_PARAMETER', async (query, parameter, value, expected) => {
    const res = await get(`/data/events/room/${ROOM}?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.status).toBe('error');
    expect(res.body.error).toEqual({
      code: 'INVALID_PARAMETER',
      message: `Invalid value for parameter '${parameter}'`,
      details: { parameter, value, expected },
    });
  });

  it('rejects a filter the data type does not have, bad booleans and windows', async () => {
    expect((await get(`/data/recordings/room/${ROOM}?category=media`)).body.error?.code).toBe('INVALID_PARAMETER');
    expect((await get(`/data/components/room/${ROOM}?completed=yes`)).body.error?.details).toMatchObject({ parameter: 'completed' });
    expect((await get(`/data/sync/room/${ROOM}?aggregationWindow=5`)).body.error?.details).toMatchObject({
      parameter: 'aggregationWindow',
    });
    expect((await get(`/data/participants/room/${ROOM}?completionCode=WINNER`)).status).toBe(400);
  });

  it('needs roomId at participant scope and has no participant scope for participants and rooms', async () => {
    const p = await firstParticipant();
    const missing = await get(`/data/events/participant/${p.id}`);
    expect(missing.status).toBe(400);
    expect(missing.body.error?.details).toMatchObject({ parameter: 'roomId' });
    for (const type of ['participants', 'rooms']) {
      const res = await get(`/data/${type}/participant/${p.id}?roomId=${p.roomId}`);
      expect(res.status).toBe(400);
      expect(res.body.error?.details).toMatchObject({ parameter: 'scope', value: 'participant' });
    }
  });

  it('rejects unknown data types and scopes with 400, unknown ids with 404', async () => {
    const type = await get(`/data/heartbeats/room/${ROOM}`);
    expect(type.status).toBe(400);
    expect(type.body.error?.details).toMatchObject({ parameter: 'dataType', value: 'heartbeats' });
    const scope = await get(`/data/events/galaxy/${ROOM}`);
    expect(scope.status).toBe(400);
    expect(scope.body.error?.details).toMatchObject({ parameter: 'scope', value: 'galaxy' });
    expect((await get('/data/events/room/room_nope')).body.error?.code).toBe('NOT_FOUND');
    expect((await get('/data/events/experiment/exp_nope')).status).toBe(404);
    expect((await get(`/data/events/participant/ppt_nope?roomId=${ROOM}`)).status).toBe(404);
    expect((await get('/data/events/participant/ppt_nope?roomId=room_nope')).status).toBe(404);
    expect((await get('/nothing/here')).status).toBe(404);
    const method = await call<Envelope>(`${sim.url}/data/events/room/${ROOM}`, { key: FULL, method: 'DELETE' });
    expect(method.status).toBe(405);
    expect(method.body.error?.code).toBe('METHOD_NOT_ALLOWED');
  });
});

describe('keys and scopes', () => {
  it('answers 401 without a key, with an unknown key, and with only a Bearer header', async () => {
    const none = await get(`/data/events/room/${ROOM}`, null);
    expect(none.status).toBe(401);
    expect(none.body.error?.code).toBe('UNAUTHORIZED');
    const unknown = await get(`/data/events/room/${ROOM}`, 'hst_test_nope');
    expect(unknown.status).toBe(401);
    expect(unknown.body.error).toEqual({ code: 'AUTHENTICATION_ERROR', message: 'Invalid or expired API key', details: {} });
    const bearer = await call<Envelope>(`${sim.url}/data/events/room/${ROOM}`, { headers: { authorization: `Bearer ${FULL}` } });
    expect(bearer.status).toBe(401);
    expect(bearer.body.error?.message).toMatch(/X-API-Key/);
  });

  it('has the demo keys of DESIGN.md with exactly their scopes', () => {
    expect(DEMO_KEYS.map((k) => [k.key, k.scopes])).toEqual([
      ['hst_test_demo_full', ['*']],
      ['hst_test_demo_readonly', ['read:*']],
      ['hst_test_demo_events', ['read:events', 'read:experiments']],
      ['hst_test_demo_other', ['*']],
    ]);
  });

  it('answers 403 with required and provided scopes for a missing scope', async () => {
    const res = await get(`/data/recordings/room/${ROOM}`, EVENTS_ONLY);
    expect(res.status).toBe(403);
    expect(res.body.error).toEqual({
      code: 'FORBIDDEN',
      message: 'Insufficient scopes. Required: read:recordings',
      details: { required: ['read:recordings'], provided: ['read:events', 'read:experiments'] },
    });
    expect((await get(`/data/events/room/${ROOM}`, EVENTS_ONLY)).status).toBe(200);
    expect((await get(`/data/recordings/room/${ROOM}`, READONLY)).status).toBe(200);
    const write = await call<Envelope>(`${sim.url}/experiments`, { key: READONLY, body: { name: 'x' } });
    expect(write.status).toBe(403);
    expect(write.body.error?.details).toEqual({ required: ['write:experiments'], provided: ['read:*'] });
  });

  it("hides another user's experiments", async () => {
    expect((await get(`/data/events/experiment/${EXP}`, OTHER)).status).toBe(403);
    expect((await get(`/data/events/room/${ROOM}`, OTHER)).status).toBe(403);
    expect((await get(`/experiments/${EXP}`, OTHER)).body.error?.code).toBe('FORBIDDEN');
    expect((await get('/data/events/experiment/exp_other01', OTHER)).status).toBe(200);
    expect((await get('/data/events/experiment/exp_other01', FULL)).status).toBe(403);
  });

  it('checks access with authentication only', async () => {
    const mine = await call<{ data: unknown }>(`${sim.url}/data/check-access/experiment/${EXP}`, { key: EVENTS_ONLY });
    expect(mine.body.data).toEqual({ canView: true, canExport: false });
    const full = await call<{ data: unknown }>(`${sim.url}/data/check-access/experiment/${EXP}`, { key: READONLY });
    expect(full.body.data).toEqual({ canView: true, canExport: true });
    const theirs = await call<{ data: unknown }>(`${sim.url}/data/check-access/experiment/${EXP}`, { key: OTHER });
    expect(theirs.body.data).toEqual({ canView: false, canExport: false });
    expect((await get('/data/check-access/experiment/exp_nope')).status).toBe(404);
  });
});

describe('recording events', () => {
  it('stores a batch of 1-100 events, readable afterwards', async () => {
    const own = await ownSimulator();
    const p = await firstParticipant(own);
    const before = await get(`/data/events/participant/${p.id}?roomId=${p.roomId}`, FULL, own);
    const events = Array.from({ length: 100 }, (_, i) => ({
      experimentId: EXP,
      roomId: p.roomId,
      participantId: p.id,
      eventType: 'custom.marker',
      category: 'system',
      timestamp: new Date(Date.UTC(2030, 0, 1, 0, 0, i)).toISOString(),
      content: `marker ${i}`,
    }));
    const res = await call<{ data: { recorded: number; eventIds: string[] }[] }>(`${own.url}/data/events/batch`, {
      key: FULL,
      body: { events },
    });
    expect(res.status).toBe(201);
    expect(res.body.data[0]?.recorded).toBe(100);
    expect(new Set(res.body.data[0]?.eventIds).size).toBe(100);
    const after = await get(`/data/events/participant/${p.id}?roomId=${p.roomId}&startTime=2030-01-01T00:00:00Z`, FULL, own);
    expect(after.body.metadata.pagination.total).toBe(100);
    expect(after.body.data.map((e) => e.content)).toEqual(events.map((e) => e.content));
    expect(after.body.data[0]).toMatchObject({ eventType: 'custom.marker', roomId: p.roomId, experimentId: EXP });
    const total = await get(`/data/events/participant/${p.id}?roomId=${p.roomId}`, FULL, own);
    expect(total.body.metadata.pagination.total).toBe(before.body.metadata.pagination.total + 100);
  });

  it('rejects empty, oversized and malformed batches without storing anything', async () => {
    const p = await firstParticipant();
    const before = (await get(`/data/events/room/${ROOM}?limit=1`)).body.metadata.pagination.total;
    const post = (body: unknown, raw?: string) =>
      call<Envelope>(`${sim.url}/data/events/batch`, raw === undefined ? { key: FULL, body } : { key: FULL, rawBody: raw, method: 'POST' });
    const ok = { experimentId: EXP, roomId: p.roomId, participantId: p.id, eventType: 'x.y' };
    expect((await post({ events: [] })).body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { count: 0, max: 100 } });
    expect((await post({ events: Array(101).fill(ok) })).body.error?.details).toMatchObject({ count: 101 });
    expect((await post({ nope: 1 })).body.error?.code).toBe('VALIDATION_ERROR');
    expect((await post(undefined, '{not json')).body.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      message: 'The request body is not valid JSON',
    });
    const mixed = await post({
      events: [ok, { ...ok, participantId: 'ppt_ghost' }, { ...ok, eventType: 5 }, { ...ok, timestamp: 'yesterday' }],
    });
    expect(mixed.status).toBe(400);
    expect(mixed.body.error?.details).toEqual({
      errors: [
        { index: 1, field: 'participantId', message: `Participant ppt_ghost is not in room ${p.roomId}` },
        { index: 2, field: 'eventType', message: 'eventType must be a non-empty string' },
        { index: 3, field: 'timestamp', message: 'timestamp must be an ISO 8601 timestamp' },
      ],
    });
    expect((await get(`/data/events/room/${ROOM}?limit=1`)).body.metadata.pagination.total).toBe(before);
    const readonly = await call<Envelope>(`${sim.url}/data/events/batch`, { key: READONLY, body: { events: [ok] } });
    expect(readonly.body.error?.details).toEqual({ required: ['write:events'], provided: ['read:*'] });
    const big = await call<Envelope>(`${sim.url}/data/events/batch`, {
      key: FULL,
      rawBody: `{"events":"${'x'.repeat(1_100_000)}"}`,
      method: 'POST',
    });
    expect(big.status).toBe(413);
  });
});

describe('experiment management', () => {
  it('lists the key user experiments with search and paging', async () => {
    const res = await get('/experiments');
    expect(res.body.data.map((e) => e.id)).toEqual(['exp_movie01', 'exp_joint02']);
    expect(res.body.data[0]).toMatchObject({ name: 'Movie Watching Study', roomCount: 4, participantCount: 12, ownerId: 'user_demo' });
    expect(res.body.metadata.pagination).toEqual({ total: 2, returned: 2, hasMore: false, limit: 50, offset: 0 });
    expect((await get('/experiments?search=joint')).body.data.map((e) => e.id)).toEqual(['exp_joint02']);
    expect((await get('/experiments?limit=1')).body.metadata.pagination).toEqual({
      total: 2,
      returned: 1,
      hasMore: true,
      limit: 1,
      offset: 0,
      nextOffset: 1,
    });
    expect((await get('/experiments', OTHER)).body.data.map((e) => e.id)).toEqual(['exp_other01']);
    expect((await get('/experiments?limit=-3')).status).toBe(400);
  });

  it('gets an experiment, its config and its export', async () => {
    const one = await get(`/experiments/${EXP}`);
    expect(one.body.data).toHaveLength(1);
    expect(one.body.data[0]).toMatchObject({ id: EXP, name: 'Movie Watching Study', requiredParticipants: 3 });
    const config = await get(`/experiments/${EXP}/config`);
    expect(Object.keys(config.body.data[0] ?? {})).toEqual(['experimentId', 'states', 'roles', 'settings', 'requiredParticipants']);
    const exported = await get(`/experiments/${EXP}/export`);
    expect(Object.keys(exported.body.data[0] ?? {})).toEqual(['experiment', 'mediaAssets']);
    expect(exported.body.data[0]).toMatchObject({ experiment: { name: 'Movie Watching Study' }, mediaAssets: [] });
    expect((await get('/experiments/exp_nope')).status).toBe(404);
  });

  it('creates, validates, updates and soft-deletes', async () => {
    const own = await ownSimulator();
    const bad = await call<Envelope>(`${own.url}/experiments`, { key: FULL, body: { description: 'no name' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toEqual({
      code: 'VALIDATION_ERROR',
      message: 'The experiment is not valid',
      details: { errors: [{ field: 'name', message: 'name is required and must be a non-empty string' }] },
    });
    const created = await call<Envelope>(`${own.url}/experiments`, {
      key: FULL,
      body: { name: 'New study', states: [{ id: 's1', name: 'One' }] },
    });
    expect(created.status).toBe(201);
    const id = String(created.body.data[0]?.id);
    expect(created.body.data[0]).toMatchObject({ name: 'New study', roomCount: 0, participantCount: 0, ownerId: 'user_demo' });

    const valid = await call<{ data: unknown[] }>(`${own.url}/experiments/validate`, { key: FULL, body: { name: 'ok' } });
    expect(valid.body.data).toEqual([{ valid: true }]);
    const invalid = await call<{ data: unknown[] }>(`${own.url}/experiments/validate`, {
      key: FULL,
      body: {
        name: '',
        states: [
          { id: 'a', name: 'A' },
          { id: 'a', name: 'B' },
        ],
      },
    });
    expect(invalid.body.data).toEqual([
      {
        valid: false,
        errors: [
          { field: 'name', message: 'name is required and must be a non-empty string' },
          { field: 'states[1].id', message: 'duplicate state id a' },
        ],
      },
    ]);

    const updated = await call<Envelope>(`${own.url}/experiments/${id}`, {
      key: FULL,
      method: 'PUT',
      body: { description: 'now described' },
    });
    expect(updated.body.data[0]).toMatchObject({ id, name: 'New study', description: 'now described' });
    const readOnly = await call<Envelope>(`${own.url}/experiments/${id}`, { key: FULL, method: 'PUT', body: { ownerId: 'me' } });
    expect(readOnly.body.error?.details).toEqual({ errors: [{ field: 'ownerId', message: 'ownerId is read-only' }] });

    const deleted = await call<Envelope>(`${own.url}/experiments/${id}`, { key: FULL, method: 'DELETE' });
    expect(deleted.body.data[0]).toMatchObject({ id, deleted: true });
    expect((await get(`/experiments/${id}`, FULL, own)).status).toBe(404);
  });

  it('refuses to delete an experiment with data unless skipDataCheck=true', async () => {
    const own = await ownSimulator();
    const refused = await call<Envelope>(`${own.url}/experiments/exp_joint02`, { key: FULL, method: 'DELETE' });
    expect(refused.status).toBe(400);
    expect(refused.body.error?.details).toEqual({ roomCount: 1, participantCount: 3 });
    expect((await call(`${own.url}/experiments/exp_joint02?skipDataCheck=maybe`, { key: FULL, method: 'DELETE' })).status).toBe(400);
    expect((await call(`${own.url}/experiments/exp_joint02`, { key: READONLY, method: 'DELETE' })).status).toBe(403);
    const forced = await call<Envelope>(`${own.url}/experiments/exp_joint02?skipDataCheck=true`, { key: FULL, method: 'DELETE' });
    expect(forced.status).toBe(200);
    expect((await get('/data/events/experiment/exp_joint02', FULL, own)).status).toBe(404);
  });
});

describe('observability', () => {
  it('counts requests per path and key, never recording the key itself', async () => {
    sim.stats.reset();
    await get(`/data/events/room/${ROOM}?limit=1`);
    await get(`/data/events/room/${ROOM}?limit=2`, READONLY);
    await get(`/data/events/room/${ROOM}`, 'hst_test_secret_value');
    expect(sim.stats.total).toBe(3);
    expect(sim.stats.byPath()).toEqual({ [`/api/v3/data/events/room/${ROOM}`]: 3 });
    expect(sim.stats.byKey()).toEqual({ demo_full: 1, demo_readonly: 1, unknown: 1 });
    const admin = await call<{ total: number; byKey: Record<string, number> }>(`${sim.origin}/_admin/stats`);
    expect(admin.body.total).toBe(3);
    expect(admin.text).not.toContain('hst_test');
    await call(`${sim.origin}/_admin/reset`, { method: 'POST' });
    expect(sim.stats.total).toBe(0);
  });
});

describe('the public guides client examples', () => {
  it('quick start, participant download and paging by nextOffset work as the guides expect', async () => {
    // JavaScript guide, quick start: GET /data/events/room/{id}?limit=10 with X-API-Key.
    const quick = await fetch(`${sim.url}/data/events/room/${ROOM}?limit=10`, { headers: { 'X-API-Key': FULL } });
    expect(quick.ok).toBe(true);
    const events = ((await quick.json()) as Envelope).data;
    expect(events).toHaveLength(10);
    expect(events.every((e) => typeof e.onset === 'number')).toBe(true);

    // "Download events for one participant": URL searchParams roomId + limit, following hasMore/nextOffset.
    const p = await firstParticipant();
    const collected: Record<string, unknown>[] = [];
    let offset: number | undefined = 0;
    while (offset !== undefined) {
      const url = new URL(`${sim.url}/data/events/participant/${p.id}`);
      url.searchParams.set('roomId', p.roomId);
      url.searchParams.set('limit', '7');
      url.searchParams.set('offset', String(offset));
      const page = (await (await fetch(url, { headers: { 'X-API-Key': FULL } })).json()) as Envelope;
      collected.push(...page.data);
      offset = page.metadata.pagination.hasMore ? page.metadata.pagination.nextOffset : undefined;
    }
    const whole = await get(`/data/events/participant/${p.id}?roomId=${p.roomId}`);
    expect(collected).toEqual(whole.body.data);
  });
});
