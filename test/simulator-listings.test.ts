import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_CATEGORIES } from '../src/simulator/model.ts';
import { startSimulator, type Simulator } from '../src/simulator/server.ts';
import { call } from './helpers/http.ts';
import { FULL, NO_RATE_LIMIT, READONLY, EVENTS_ONLY, OTHER, simulatorPerTest } from './helpers/simulator.ts';

const EXP = 'exp_movie01';
const ROOM = 'room_movie01_001';

type Row = Record<string, unknown>;
interface Envelope {
  status: string;
  data: Row[];
  metadata: {
    dataType: string;
    scope: string;
    scopeId: string;
    query: Row;
    pagination: { total: number; returned: number; hasMore: boolean; limit: number; offset: number; nextOffset?: number };
    processing: Row;
    _warnings?: string[];
  };
  error?: { code: string; message: string; details: Row };
}

let sim: Simulator;
const get = (path: string, key = FULL) => call<Envelope>(`${sim.url}${path}`, { key });

beforeAll(async () => {
  sim = await startSimulator({ rateLimit: NO_RATE_LIMIT });
});
afterAll(() => sim.close());
/** For the tests that write: what they write is not in the other tests' data. */
const ownSimulator = simulatorPerTest();

async function participantsOf(room: string): Promise<{ id: string; roomId: string }[]> {
  return (await get(`/data/participants/room/${room}`)).body.data.map((p) => ({ id: String(p.id), roomId: String(p.roomId) }));
}

describe('eye-tracking', () => {
  it('lists gaze samples at experiment, room and participant scope: E per participant, time-ordered', async () => {
    const [p] = await participantsOf(ROOM);
    const totals: number[] = [];
    for (const scope of [`experiment/${EXP}`, `room/${ROOM}`, `participant/${p?.id}?roomId=${ROOM}`]) {
      const res = await get(`/data/eyetracking/${scope}`);
      expect(res.status, scope).toBe(200);
      expect(res.body.metadata.dataType).toBe('eyetracking');
      totals.push(res.body.metadata.pagination.total);
      const times = res.body.data.map((r) => Date.parse(String(r.timestamp)));
      expect(times).toEqual([...times].sort((a, b) => a - b));
    }
    expect(totals).toEqual([360, 90, 30]);
  });

  it('carries the documented fields, in range', async () => {
    const res = await get(`/data/eyetracking/experiment/${EXP}`);
    for (const r of res.body.data) {
      expect(Object.keys(r)).toEqual([
        'id',
        'timestamp',
        'onset',
        'experimentId',
        'roomId',
        'participantId',
        'stateId',
        'componentId',
        'x',
        'y',
        'confidence',
        'source',
      ]);
      expect(String(r.id)).toMatch(/^gaze_[a-z0-9]{14}$/);
      expect(r).toMatchObject({ experimentId: EXP, stateId: 'state_movie', componentId: 'cmp_movie_1', source: 'webgazer' });
      for (const field of ['x', 'y', 'confidence']) {
        expect(Number(r[field])).toBeGreaterThanOrEqual(0);
        expect(Number(r[field])).toBeLessThanOrEqual(1);
      }
      const room = sim.store.rooms.get(String(r.roomId));
      expect(Date.parse(String(r.timestamp)) - (room?.startedAt ?? 0)).toBe(r.onset);
    }
    expect(new Set(res.body.data.map((r) => r.id)).size).toBe(360);
  });

  it('sorts by onset, confidence and participantId, filters by time and deployment, pages', async () => {
    const byConfidence = await get(`/data/eyetracking/room/${ROOM}?sort=confidence&order=desc`);
    const conf = byConfidence.body.data.map((r) => Number(r.confidence));
    expect(conf).toEqual([...conf].sort((a, b) => b - a));
    const all = await get(`/data/eyetracking/experiment/${EXP}`);
    const dep = await get(`/data/eyetracking/experiment/${EXP}?deploymentId=dep_movie01_b`);
    expect(dep.body.data).toEqual(all.body.data.filter((r) => ['room_movie01_002', 'room_movie01_004'].includes(String(r.roomId))));
    const start = String(all.body.data[100]?.timestamp);
    const end = String(all.body.data[149]?.timestamp);
    const window = await get(`/data/eyetracking/experiment/${EXP}?startTime=${start}&endTime=${end}`);
    expect(window.body.data).toEqual(all.body.data.slice(100, 150));
    const page = await get(`/data/eyetracking/experiment/${EXP}?limit=100&offset=300`);
    expect(page.body.metadata.pagination).toEqual({ total: 360, returned: 60, hasMore: false, limit: 100, offset: 300 });
    expect(page.body.metadata.query).toEqual({ startTime: null, endTime: null, limit: 100, offset: 300, sort: 'timestamp', order: 'asc' });
  });

  it('refuses bad parameters, other types’ filters and a participant without roomId', async () => {
    const [p] = await participantsOf(ROOM);
    expect((await get(`/data/eyetracking/room/${ROOM}?sort=x`)).body.error).toEqual({
      code: 'INVALID_PARAMETER',
      message: "Invalid value for parameter 'sort'",
      details: { parameter: 'sort', value: 'x', expected: 'one of timestamp, onset, confidence, participantId' },
    });
    expect((await get(`/data/eyetracking/room/${ROOM}?limit=1001`)).body.error?.details).toEqual({
      parameter: 'limit',
      value: '1001',
      expected: 'integer between 1 and 1000',
    });
    expect((await get(`/data/eyetracking/room/${ROOM}?category=media`)).body.error).toEqual({
      code: 'INVALID_PARAMETER',
      message: "Parameter 'category' is not supported for eyetracking",
      details: {
        parameter: 'category',
        value: 'media',
        expected: 'one of startTime, endTime, limit, offset, sort, order, format, deploymentId, roomId',
      },
    });
    const missing = await get(`/data/eyetracking/participant/${p?.id}`);
    expect(missing.status).toBe(400);
    expect(missing.body.error?.details).toEqual({ parameter: 'roomId', value: '', expected: 'the id of the room the participant joined' });
  });

  it('needs read:eyetracking, hides another user’s data and answers 404 for unknown ids', async () => {
    const denied = await get(`/data/eyetracking/room/${ROOM}`, EVENTS_ONLY);
    expect(denied.status).toBe(403);
    expect(denied.body.error).toEqual({
      code: 'FORBIDDEN',
      message: 'Insufficient scopes. Required: read:eyetracking',
      details: { required: ['read:eyetracking'], provided: ['read:events', 'read:experiments'] },
    });
    expect((await get(`/data/eyetracking/room/${ROOM}`, READONLY)).status).toBe(200);
    expect((await get(`/data/eyetracking/experiment/${EXP}`, OTHER)).status).toBe(403);
    expect((await get('/data/eyetracking/room/room_other01_001')).status).toBe(403);
    expect((await get('/data/eyetracking/room/room_nope')).body.error?.code).toBe('NOT_FOUND');
    expect((await get(`/data/eyetracking/participant/ppt_nope?roomId=${ROOM}`)).status).toBe(404);
  });
});

describe('open event categories', () => {
  it('seeds every documented category', async () => {
    const events = await get(`/data/events/experiment/${EXP}`);
    expect([...new Set(events.body.data.map((e) => String(e.category)))].sort()).toEqual([...EVENT_CATEGORIES].sort());
    expect(EVENT_CATEGORIES).toEqual([
      'component',
      'state',
      'media',
      'pre_experiment',
      'post_experiment',
      'questionnaire',
      'system',
      'communication',
      'sync',
      'scanner',
      'sparse_rating',
    ]);
    const post = await get(`/data/events/experiment/${EXP}?category=post_experiment`);
    expect(post.body.metadata.pagination.total).toBe(12);
    expect(new Set(post.body.data.map((e) => String(e.eventType).split('.')[0]))).toEqual(new Set(['questionnaire']));
  });

  it('filters by any non-empty category: an unknown one matches nothing', async () => {
    const res = await get(`/data/events/room/${ROOM}?category=dance`);
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual([]);
    expect(res.body.metadata.pagination.total).toBe(0);
    expect(res.body.metadata.query.category).toBe('dance');
    expect((await get(`/data/events/room/${ROOM}?category=`)).body.error?.details).toEqual({
      parameter: 'category',
      value: '',
      expected: 'a non-empty value',
    });
    expect((await get(`/data/events/room/${ROOM}?category=${'x'.repeat(201)}`)).status).toBe(400);
  });

  it('records events of a new category through the batch route, then filters by it', async () => {
    const own = await ownSimulator();
    const [p] = (await call<Envelope>(`${own.url}/data/participants/room/${ROOM}`, { key: FULL })).body.data;
    const event = { experimentId: EXP, roomId: ROOM, participantId: String(p?.id), eventType: 'eyetracking.calibrated' };
    const ok = await call(`${own.url}/data/events/batch`, {
      key: FULL,
      body: {
        events: [
          { ...event, category: 'calibration' },
          { ...event, category: 'scanner' },
        ],
      },
    });
    expect(ok.status).toBe(201);
    const found = await call<Envelope>(`${own.url}/data/events/room/${ROOM}?category=calibration`, { key: FULL });
    expect(found.body.data.map((e) => [e.category, e.eventType])).toEqual([['calibration', 'eyetracking.calibrated']]);
    const bad = await call<Envelope>(`${own.url}/data/events/batch`, {
      key: FULL,
      body: {
        events: [
          { ...event, category: 'two words' },
          { ...event, category: '' },
          { ...event, category: 'x'.repeat(65) },
        ],
      },
    });
    expect(bad.body.error?.details).toEqual({
      errors: [
        { index: 0, field: 'category', message: 'category must be 1 to 64 letters, digits, or _ . : -' },
        { index: 1, field: 'category', message: 'category must be a non-empty string' },
        { index: 2, field: 'category', message: 'category must be 1 to 64 letters, digits, or _ . : -' },
      ],
    });
  });
});

describe('sparse ratings in the current shape', () => {
  it('carries the fixture fields and no labels or componentId', async () => {
    const res = await get(`/data/ratings/sparse/room/${ROOM}`);
    const row = res.body.data.find((r) => 'roomId' in r);
    expect(Object.keys(row ?? {})).toEqual([
      'ratingId',
      'participantId',
      'experimentId',
      'roomId',
      'stateId',
      'stimulusId',
      'timestamp',
      'stateStartTime',
      'onset',
      'rawOnset',
      'clockOffsetApplied',
      'ratingEndOnset',
      'responseTime',
      'stimulusTime',
      'stateDuration',
      'value',
      'rawValue',
      'scale',
      'confidence',
      'type',
      'metadata',
      'sparseRatingData',
    ]);
    for (const r of res.body.data) {
      expect(Object.keys(r.metadata as Row)).toEqual(['question', 'dimension', 'componentType', 'sampleIndex']);
      expect(Object.keys(r.sparseRatingData as Row)).toEqual([
        'videoId',
        'pauseIndex',
        'videoRelativeTime',
        'pauseTimestamp',
        'componentType',
        'componentData',
        'previousRatings',
        'mediaPauseOnset',
        'mediaResumeOnset',
        'actualPauseDuration',
      ]);
    }
  });

  it('keeps its arithmetic: onset, response time, rescaled value, pause duration', async () => {
    const res = await get(`/data/ratings/sparse/experiment/${EXP}`);
    expect(res.body.data).toHaveLength(36);
    for (const r of res.body.data) {
      const n = (field: string): number => Number(r[field]);
      const scale = r.scale as { min: number; max: number };
      const data = r.sparseRatingData as Row;
      expect(n('onset')).toBe(n('rawOnset') - n('clockOffsetApplied'));
      expect(n('responseTime')).toBe(n('ratingEndOnset') - n('onset'));
      expect(n('value')).toBe((n('rawValue') / scale.max) * 100);
      expect(n('rawValue')).toBeGreaterThanOrEqual(scale.min);
      expect(n('rawValue')).toBeLessThanOrEqual(scale.max);
      expect(r).toMatchObject({ confidence: null, type: 'sparse' });
      expect(Date.parse(String(r.timestamp)) - Date.parse(String(r.stateStartTime))).toBe(n('stimulusTime'));
      expect(n('stateDuration')).toBeGreaterThan(n('stimulusTime') + n('responseTime'));
      expect(data.videoId).toBe(r.stimulusId);
      expect(data.componentData).toEqual({ value: r.rawValue });
      expect(data.pauseIndex).toBe((r.metadata as Row).sampleIndex);
      expect(data.videoRelativeTime).toBe(n('stimulusTime') / 1000);
      expect(Number(data.actualPauseDuration)).toBe(Number(data.mediaResumeOnset) - Number(data.mediaPauseOnset));
      expect(Number(data.mediaPauseOnset)).toBeLessThan(n('onset'));
      expect(Number(data.mediaResumeOnset)).toBeGreaterThan(n('ratingEndOnset'));
    }
    // The legacy sessionId share stays.
    expect(res.body.data.filter((r) => 'sessionId' in r && !('roomId' in r)).length).toBeGreaterThan(0);
  });

  it('lists a participant’s earlier ratings by video on each later one', async () => {
    const [p] = await participantsOf(ROOM);
    const res = await get(`/data/ratings/sparse/participant/${p?.id}?roomId=${ROOM}`);
    const byIndex = [...res.body.data].sort((a, b) => Number((a.metadata as Row).sampleIndex) - Number((b.metadata as Row).sampleIndex));
    expect(byIndex.map((r) => (r.sparseRatingData as Row).previousRatings)).toEqual([
      null,
      { [String(byIndex[0]?.stimulusId)]: byIndex[0]?.rawValue },
      { [String(byIndex[0]?.stimulusId)]: byIndex[0]?.rawValue, [String(byIndex[1]?.stimulusId)]: byIndex[1]?.rawValue },
    ]);
  });
});

describe('recordings and their download links', () => {
  it('lists a downloadPath and fileName, no signed URL, except on about one old row in seven', async () => {
    const res = await get(`/data/recordings/experiment/${EXP}`);
    const current = res.body.data.filter((r) => 'downloadPath' in r);
    const old = res.body.data.filter((r) => !('downloadPath' in r));
    expect([current.length, old.length]).toEqual([21, 3]);
    for (const r of current) {
      expect(r.downloadPath).toBe(`/data/recordings/download/${String(r.roomId)}/${String(r.recordingId)}`);
      expect(r.fileName).toBe(`${String(r.recordingId)}.${String(r.format)}`);
      expect('url' in r || 'downloadUrl' in r).toBe(false);
    }
    for (const r of old) {
      expect(String(r.url)).toBe(
        `https://storage.hyperstudy.io/recordings/${EXP}/${String(r.roomId)}/${String(r.recordingId)}.${String(r.format)}`,
      );
      expect(String(r.downloadUrl)).toMatch(/^https:\/\/storage\.googleapis\.com\/.*X-Goog-Signature=[a-z0-9]{32}$/);
      expect('fileName' in r).toBe(false);
    }
  });

  it('answers a short-lived signed URL at the row’s downloadPath, new on every call', async () => {
    const [row] = (await get(`/data/recordings/room/${ROOM}`)).body.data;
    const first = await call<Row>(`${sim.url}${String(row?.downloadPath)}`, { key: FULL });
    const second = await call<Row>(`${sim.url}${String(row?.downloadPath)}`, { key: READONLY });
    expect(first.status).toBe(200);
    expect(Object.keys(first.body)).toEqual(['status', 'data']);
    const url = String((first.body.data as { url: string }).url);
    expect(url).toMatch(
      new RegExp(
        `^https://storage\\.googleapis\\.com/hyperstudy-recordings/recordings/${EXP}/${ROOM}/${String(row?.recordingId)}\\.mp4\\?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Date=\\d{8}T\\d{6}Z&X-Goog-Expires=300&X-Goog-Signature=[a-z0-9]{64}$`,
      ),
    );
    expect((second.body.data as { url: string }).url).not.toBe(url);
    expect(first.body).toEqual({ status: 'success', data: { url } });
  });

  it('serves old rows too; needs read:recordings; 404 for unknown rooms and recordings, 403 for another user’s', async () => {
    const old = (await get(`/data/recordings/experiment/${EXP}`)).body.data.find((r) => !('downloadPath' in r));
    expect((await get(`/data/recordings/download/${String(old?.roomId)}/${String(old?.recordingId)}`)).status).toBe(200);
    const path = `/data/recordings/download/${String(old?.roomId)}/${String(old?.recordingId)}`;
    expect((await get(path, EVENTS_ONLY)).body.error).toEqual({
      code: 'FORBIDDEN',
      message: 'Insufficient scopes. Required: read:recordings',
      details: { required: ['read:recordings'], provided: ['read:events', 'read:experiments'] },
    });
    expect((await get(path, OTHER)).status).toBe(403);
    expect((await get(`/data/recordings/download/room_nope/${String(old?.recordingId)}`)).body.error).toEqual({
      code: 'NOT_FOUND',
      message: 'Room not found: room_nope',
      details: { resource: 'room', id: 'room_nope' },
    });
    expect((await get(`/data/recordings/download/${ROOM}/rec_nope`)).body.error).toEqual({
      code: 'NOT_FOUND',
      message: 'Recording not found: rec_nope',
      details: { resource: 'recording', id: 'rec_nope', roomId: ROOM },
    });
    expect((await call(`${sim.url}${path}`, { key: FULL, method: 'POST', body: {} })).status).toBe(405);
  });
});

describe('paging signals and limits', () => {
  it('signals CSV and NDJSON paging in headers, with a Link to the next page', async () => {
    for (const format of ['csv', 'ndjson']) {
      const res = await call(`${sim.url}/data/events/room/${ROOM}?format=${format}&limit=40&offset=20`, { key: FULL });
      expect(res.headers.get('x-total-count')).toBe('90');
      expect(res.headers.get('x-has-more')).toBe('true');
      expect(res.headers.get('x-next-offset')).toBe('60');
      expect(res.headers.get('link')).toBe(`</api/v3/data/events/room/${ROOM}?format=${format}&limit=40&offset=60>; rel="next"`);
      const last = await call(`${sim.url}/data/events/room/${ROOM}?format=${format}&limit=40&offset=60`, { key: FULL });
      expect(last.headers.get('x-total-count')).toBe('90');
      expect(last.headers.get('x-has-more')).toBe('false');
      expect(last.headers.get('x-next-offset')).toBeNull();
      expect(last.headers.get('link')).toBeNull();
    }
  });

  it('lets a client follow the Link header through every NDJSON page', async () => {
    const whole = await get(`/data/chat/experiment/${EXP}`);
    const rows: unknown[] = [];
    let next: string | null = `/api/v3/data/chat/experiment/${EXP}?format=ndjson&limit=7`;
    let pages = 0;
    while (next !== null) {
      const res: Awaited<ReturnType<typeof call>> = await call(`${sim.origin}${next}`, { key: FULL });
      rows.push(
        ...res.text
          .split('\n')
          .filter(Boolean)
          .map((l: string) => JSON.parse(l) as unknown),
      );
      next = /^<([^>]+)>; rel="next"$/.exec(res.headers.get('link') ?? '')?.[1] ?? null;
      pages++;
    }
    expect(pages).toBe(7);
    expect(rows).toEqual(whole.body.data);
  });

  it('pages rooms up to 5000 a request; other listings up to 1000', async () => {
    const big = await startSimulator({
      rooms: 1200,
      participantsPerRoom: 1,
      eventsPerParticipant: 1,
      rateLimit: NO_RATE_LIMIT,
    });
    try {
      const rooms = await call<Envelope>(`${big.url}/data/rooms/experiment/${EXP}?limit=5000`, { key: FULL });
      expect(rooms.body.data).toHaveLength(1200);
      expect(rooms.body.metadata.pagination).toEqual({ total: 1200, returned: 1200, hasMore: false, limit: 5000, offset: 0 });
      const byDefault = await call<Envelope>(`${big.url}/data/rooms/experiment/${EXP}`, { key: FULL });
      expect(byDefault.body.metadata.pagination).toMatchObject({ returned: 1000, hasMore: true, limit: 1000, nextOffset: 1000 });
      const over = await call<Envelope>(`${big.url}/data/rooms/experiment/${EXP}?limit=5001`, { key: FULL });
      expect(over.body.error?.details).toEqual({ parameter: 'limit', value: '5001', expected: 'integer between 1 and 5000' });
      const participants = await call<Envelope>(`${big.url}/data/participants/experiment/${EXP}?limit=5000`, { key: FULL });
      expect(participants.body.error?.details).toEqual({ parameter: 'limit', value: '5000', expected: 'integer between 1 and 1000' });
    } finally {
      await big.close();
    }
  });
});

describe('processing metadata and warnings', () => {
  it('reports experimentStartedAt (as the docs show it) and firstStateStartedAt (its newer name), processing time, enriched and the version', async () => {
    const res = await get(`/data/events/room/${ROOM}?limit=1`);
    expect(Object.keys(res.body.metadata.processing)).toEqual([
      'experimentStartedAt',
      'firstStateStartedAt',
      'processingTimeMs',
      'enriched',
      'version',
    ]);
    expect(res.body.metadata.processing).toMatchObject({
      experimentStartedAt: '2024-10-01T09:27:44.541Z',
      firstStateStartedAt: '2024-10-01T09:27:44.541Z',
      enriched: true,
      version: '3.0.0',
    });
    expect(typeof res.body.metadata.processing.processingTimeMs).toBe('number');
  });

  it('warns of a missing index when an experiment-scope listing is sorted by a non-time field', async () => {
    const byOnset = await get(`/data/events/experiment/${EXP}?sort=onset&limit=5`);
    expect(byOnset.body.metadata._warnings).toEqual([
      'MISSING_INDEX: sort by onset at experiment scope is not indexed. Results may be incomplete.',
    ]);
    // The results are complete all the same.
    expect(byOnset.body.metadata.pagination.total).toBe(360);
    const byFileSize = await get(`/data/recordings/experiment/${EXP}?sort=fileSize`);
    expect(byFileSize.body.metadata._warnings).toEqual([
      'MISSING_INDEX: sort by fileSize at experiment scope is not indexed. Results may be incomplete.',
    ]);
    for (const path of [
      `/data/events/experiment/${EXP}`,
      `/data/events/experiment/${EXP}?sort=timestamp&order=desc`,
      `/data/recordings/experiment/${EXP}?sort=startTime`,
      `/data/rooms/experiment/${EXP}?sort=createdAt`,
      `/data/events/room/${ROOM}?sort=onset`,
    ]) {
      expect('_warnings' in (await get(path)).body.metadata, path).toBe(false);
    }
  });
});

describe('authentication errors', () => {
  it('answers UNAUTHORIZED without a key and AUTHENTICATION_ERROR for an invalid one, on every route', async () => {
    for (const path of ['/data/eyetracking/room/room_movie01_001', '/personas', '/deployments', '/experiments/shared']) {
      const none = await call<Envelope>(`${sim.url}${path}`);
      expect(none.status).toBe(401);
      expect(none.body.error).toEqual({ code: 'UNAUTHORIZED', message: 'API key required: send it in the X-API-Key header', details: {} });
      const bad = await call<Envelope>(`${sim.url}${path}`, { key: 'hst_live_revoked' });
      expect(bad.status).toBe(401);
      expect(bad.body.error).toEqual({ code: 'AUTHENTICATION_ERROR', message: 'Invalid or expired API key', details: {} });
    }
  });
});
