import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../src/simulator/server.ts';
import { call } from './helpers/http.ts';
import { FULL, NO_RATE_LIMIT, EVENTS_ONLY, OTHER, simulatorPerTest } from './helpers/simulator.ts';

/** A key of the demo user with no read:events, to show the scope these routes need. */
const RECORDINGS_ONLY = 'hst_test_recordings_only';
const PILOT = 'exp_joint02';
const PILOT_ROOM = 'room_joint02_001';

type Row = Record<string, unknown>;
interface Envelope {
  status: string;
  data: Row[];
  metadata: Row & { truncated?: boolean };
  error?: { code: string; message: string; details: Row };
}

let sim: Simulator;
const options = {
  rateLimit: NO_RATE_LIMIT,
  extraKeys: [{ key: RECORDINGS_ONLY, name: 'recordings_only', userId: 'user_demo', scopes: ['read:recordings'] }],
};
const get = (path: string, key = FULL) => call<Envelope>(`${sim.url}${path}`, { key });

beforeAll(async () => {
  // Eight rooms in the primary experiment give the pilot two rooms: a completed agent run and an orphaned one.
  sim = await startSimulator({ ...options, rooms: 8 });
});
afterAll(() => sim.close());
/** For the tests that write (what they write is not in the other tests' data) or need the default data set. */
const ownSimulator = simulatorPerTest();

async function people(room: string): Promise<Row[]> {
  return (await get(`/data/participants/room/${room}`)).body.data;
}

describe('room variables', () => {
  it('answers the time-ordered write log with names, a forward-filled timeline and its columns', async () => {
    const res = await get(`/data/variables/room/${PILOT_ROOM}`);
    expect(res.status).toBe(200);
    const { data, metadata } = res.body;
    expect(Object.keys(metadata)).toEqual([
      'timestamp',
      'dataType',
      'scope',
      'scopeId',
      'variableNames',
      'timeline',
      'matrixColumns',
      'droppedWrites',
      'mode',
    ]);
    expect(metadata).toMatchObject({ dataType: 'variables', scope: 'room', scopeId: PILOT_ROOM, droppedWrites: [], mode: 'replay' });
    expect(data.slice(0, 2).map((w) => [w.variable, w.source, w.persisted])).toEqual([
      ['condition', 'seed', true],
      ['trialIndex', 'seed', true],
    ]);
    for (const w of data) {
      expect(Object.keys(w)).toEqual(['variable', 'value', 'source', 'persisted', 'stateId', 'timestamp']);
      expect(['human', 'seed', 'agent']).toContain(w.source);
    }
    // The pilot's room has an agent, which writes too.
    expect(data.some((w) => w.source === 'agent')).toBe(true);
    const times = data.map((w) => Date.parse(String(w.timestamp)));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    const names = [...new Set(data.map((w) => String(w.variable)))];
    expect(metadata.variableNames).toEqual(names);
    expect(metadata.matrixColumns).toEqual(['stateId', ...names]);
    // One row per state, in the experiment's order, each value the last write up to the end of that state.
    const states = ((await get(`/experiments/${PILOT}`)).body.data[0]?.states as { id: string }[]).map((s) => s.id);
    const timeline = metadata.timeline as Row[];
    expect(timeline.map((r) => r.stateId)).toEqual(states);
    const current: Row = Object.fromEntries(names.map((n) => [n, null]));
    states.forEach((stateId, i) => {
      for (const w of data) if (w.stateId === stateId) current[String(w.variable)] = w.value;
      expect(timeline[i]).toEqual({ stateId, ...current });
    });
    expect(res.body).not.toHaveProperty('metadata.pagination');
  });

  it('shows the writes the server refused in one seeded room only', async () => {
    expect((await get('/data/variables/room/room_movie01_001')).body.metadata.droppedWrites).toEqual([
      { variable: 'score', reason: 'type mismatch: expected a number, got the string "high"' },
    ]);
    expect((await get('/data/variables/room/room_movie01_002')).body.metadata.droppedWrites).toEqual([]);
  });

  it('has room scope only, no parameters, needs read:events, and checks the room', async () => {
    const p = (await people(PILOT_ROOM))[0];
    for (const scope of [`experiment/${PILOT}`, `participant/${String(p?.id)}?roomId=${PILOT_ROOM}`]) {
      const res = await get(`/data/variables/${scope}`);
      expect(res.status).toBe(400);
      expect(res.body.error?.details).toMatchObject({
        parameter: 'scope',
        expected: 'one of room (variables has no ' + scope.split('/')[0] + ' scope)',
      });
    }
    expect((await get(`/data/variables/room/${PILOT_ROOM}?limit=5`)).body.error).toEqual({
      code: 'INVALID_PARAMETER',
      message: "Parameter 'limit' is not supported for variables",
      details: { parameter: 'limit', value: '5', expected: 'no parameters' },
    });
    expect((await get(`/data/variables/room/${PILOT_ROOM}`, EVENTS_ONLY)).status).toBe(200);
    expect((await get(`/data/variables/room/${PILOT_ROOM}`, RECORDINGS_ONLY)).body.error?.details).toEqual({
      required: ['read:events'],
      provided: ['read:recordings'],
    });
    expect((await get(`/data/variables/room/${PILOT_ROOM}`, OTHER)).status).toBe(403);
    expect((await get('/data/variables/room/room_nope')).status).toBe(404);
  });
});

describe('participant counts', () => {
  it('counts each data type of a participant, with has-data flags', async () => {
    const p = (await people('room_movie01_001'))[0];
    const res = await get(`/data/counts/participant/${String(p?.id)}?roomId=room_movie01_001`);
    expect(res.body.data).toEqual([
      {
        participantId: p?.id,
        roomId: 'room_movie01_001',
        counts: {
          events: 30,
          textchat: 4,
          videochat: 4,
          recordings: 2,
          sync: 6,
          components: 4,
          continuous_ratings: 30,
          sparse_ratings: 3,
          eyetracking: 30,
        },
        hasData: {
          events: true,
          textchat: true,
          videochat: true,
          recordings: true,
          sync: true,
          components: true,
          continuous_ratings: true,
          sparse_ratings: true,
          eyetracking: true,
        },
      },
    ]);
    expect(res.body.metadata).toMatchObject({
      dataType: 'counts',
      scope: 'participant',
      scopeId: p?.id,
      query: { roomId: 'room_movie01_001' },
    });
    expect(res.body).not.toHaveProperty('metadata.pagination');
  });

  it('counts events recorded through the batch route, live', async () => {
    const own = await ownSimulator(options);
    const p = (await call<Envelope>(`${own.url}/data/participants/room/${PILOT_ROOM}`, { key: FULL })).body.data[0];
    const path = `${own.url}/data/counts/participant/${String(p?.id)}?roomId=${PILOT_ROOM}`;
    const before = (await call<Envelope>(path, { key: FULL })).body.data[0]?.counts as Record<string, number>;
    const event = { experimentId: PILOT, roomId: PILOT_ROOM, participantId: String(p?.id), eventType: 'custom.marker' };
    await call(`${own.url}/data/events/batch`, { key: FULL, body: { events: Array.from({ length: 5 }, () => event) } });
    const after = (await call<Envelope>(path, { key: FULL })).body.data[0]?.counts as Record<string, number>;
    expect(after).toEqual({ ...before, events: (before.events ?? 0) + 5 });
    expect(before.events).toBe(30);
  });

  it('needs participant scope and roomId, read:events, and a participant of that room', async () => {
    const p = (await people(PILOT_ROOM))[0];
    const missing = await get(`/data/counts/participant/${String(p?.id)}`);
    expect(missing.status).toBe(400);
    expect(missing.body.error?.details).toEqual({ parameter: 'roomId', value: '', expected: 'the id of the room the participant joined' });
    for (const scope of [`room/${PILOT_ROOM}`, `experiment/${PILOT}`]) {
      expect((await get(`/data/counts/${scope}`)).body.error?.details).toMatchObject({ parameter: 'scope' });
    }
    expect((await get(`/data/counts/participant/${String(p?.id)}?roomId=${PILOT_ROOM}&limit=3`)).status).toBe(400);
    expect((await get(`/data/counts/participant/${String(p?.id)}?roomId=${PILOT_ROOM}`, RECORDINGS_ONLY)).status).toBe(403);
    expect((await get(`/data/counts/participant/${String(p?.id)}?roomId=${PILOT_ROOM}`, OTHER)).status).toBe(403);
    expect((await get(`/data/counts/participant/ppt_nope?roomId=${PILOT_ROOM}`)).status).toBe(404);
    expect((await get(`/data/counts/participant/${String(p?.id)}?roomId=room_movie01_001`)).status).toBe(404);
  });
});

describe('agent runs', () => {
  it('lists one run per agent of the pilot: a completed one and an orphaned one whose room failed', async () => {
    const res = await get(`/data/agent-runs/experiment/${PILOT}`);
    expect(res.body.metadata).toMatchObject({ dataType: 'agentRuns', scope: 'experiment', scopeId: PILOT });
    expect(res.body).not.toHaveProperty('metadata.pagination');
    const runs = res.body.data;
    expect(runs.map((r) => [r.roomId, r.roomStatus, r.orphaned, r.endedAt === null])).toEqual([
      ['room_joint02_001', 'completed', false, false],
      ['room_joint02_002', 'failed', true, true],
    ]);
    for (const run of runs) {
      expect(Object.keys(run)).toEqual([
        'id',
        'participantId',
        'roomId',
        'experimentId',
        'personaId',
        'model',
        'provider',
        'seed',
        'totalInputTokens',
        'totalOutputTokens',
        'totalCostUsd',
        'turns',
        'codeCommitSha',
        'roomStatus',
        'orphaned',
        'startedAt',
        'endedAt',
      ]);
      expect(run).toMatchObject({ experimentId: PILOT, personaId: 'psn_demo_partner', model: 'claude-sonnet-4-5', provider: 'anthropic' });
      expect(run.id).toBe(run.participantId);
      expect(String(run.codeCommitSha)).toMatch(/^[0-9a-f]{40}$/);
      // The agent is the room's second participant (in the order they were seeded), listed as it always was.
      const seeded = [...sim.store.participants.values()].filter((p) => p.roomId === run.roomId);
      expect(seeded[1]?.id).toBe(run.participantId);
      const listed = (await people(String(run.roomId))).find((p) => p.id === run.participantId);
      expect(listed).toMatchObject({ role: 'listener', experimentId: PILOT });
      const decisions = (await get(`/data/agent-decisions/room/${String(run.roomId)}`)).body.data.filter((d) => d._type === 'decision');
      expect(run.turns).toBe(decisions.length);
      expect(decisions.length).toBeGreaterThanOrEqual(24);
      expect(decisions.length).toBeLessThanOrEqual(40);
      const input = decisions.reduce((n, d) => n + Number(d.inputTokens), 0);
      const output = decisions.reduce((n, d) => n + Number(d.outputTokens), 0);
      expect([run.totalInputTokens, run.totalOutputTokens]).toEqual([input, output]);
      expect(run.totalCostUsd).toBe(Math.round(((input * 3 + output * 15) / 1e6) * 1e6) / 1e6);
    }
    expect((await get('/data/agent-runs/experiment/exp_movie01')).body.data).toEqual([]);
  });

  it('has experiment scope only, no parameters, and checks the experiment', async () => {
    expect((await get(`/data/agent-runs/room/${PILOT_ROOM}`)).body.error?.details).toEqual({
      parameter: 'scope',
      value: 'room',
      expected: 'one of experiment (agent-runs has no room scope)',
    });
    expect((await get(`/data/agent-runs/experiment/${PILOT}?detail=true`)).status).toBe(400);
    expect((await get(`/data/agent-runs/experiment/${PILOT}`, RECORDINGS_ONLY)).status).toBe(403);
    expect((await get(`/data/agent-runs/experiment/${PILOT}`, OTHER)).status).toBe(403);
    expect((await get('/data/agent-runs/experiment/exp_nope')).status).toBe(404);
  });
});

describe('agent decisions', () => {
  it('lists run and decision rows of a room, by time then seq, without detail by default', async () => {
    const res = await get(`/data/agent-decisions/room/${PILOT_ROOM}`);
    expect(res.body.metadata).toMatchObject({
      dataType: 'agentDecisions',
      scope: 'room',
      scopeId: PILOT_ROOM,
      query: { detail: false, limit: 5000 },
      truncated: false,
    });
    expect(res.body).not.toHaveProperty('metadata.pagination');
    const [run, ...decisions] = res.body.data;
    const runs = (await get(`/data/agent-runs/experiment/${PILOT}`)).body.data;
    const { roomStatus: _s, orphaned: _o, ...runFields } = runs[0] ?? {};
    expect(run).toEqual({ _type: 'run', ...runFields });
    expect(decisions.map((d) => d.seq)).toEqual(decisions.map((_, i) => i + 1));
    for (const d of decisions) {
      expect(Object.keys(d)).toEqual([
        '_type',
        'id',
        'participantId',
        'roomId',
        'experimentId',
        'seq',
        'stateId',
        'stateName',
        'turnKind',
        'action',
        'value',
        'model',
        'provider',
        'latencyMs',
        'inputTokens',
        'outputTokens',
        'timestamp',
      ]);
      expect(d.id).toBe(`${String(d.participantId)}_${String(d.seq)}`);
      expect(d.action).toBe(d.turnKind === 'chat' ? 'send_message' : 'respond');
      expect(typeof d.value).toBe(d.turnKind === 'chat' ? 'string' : 'number');
    }
    const times = decisions.map((d) => Date.parse(String(d.timestamp)));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it('adds prompt, reasoning, chain, peer model and prediction update with detail=true', async () => {
    const plain = (await get(`/data/agent-decisions/room/${PILOT_ROOM}`)).body.data;
    const detailed = (await get(`/data/agent-decisions/room/${PILOT_ROOM}?detail=true`)).body.data;
    expect(detailed.length).toBe(plain.length);
    detailed.forEach((d, i) => {
      if (d._type === 'run') return expect(d).toEqual(plain[i]);
      const { prompt, reasoning, chain, peerModelSnapshot, predictionUpdate, ...rest } = d;
      expect(rest).toEqual(plain[i]);
      expect(typeof prompt).toBe('string');
      expect(typeof reasoning).toBe('string');
      expect((chain as { stage: string }[]).map((c) => c.stage)).toEqual(['goal_infer', 'decide']);
      expect(Object.keys(peerModelSnapshot as Row).length).toBe(2);
      expect(Object.keys(predictionUpdate as Row)).toEqual(['predictionError']);
    });
  });

  it('caps the decisions of each room at limit and says so with truncated', async () => {
    const capped = await get(`/data/agent-decisions/experiment/${PILOT}?limit=5`);
    expect(capped.body.metadata).toMatchObject({ truncated: true, query: { detail: false, limit: 5 } });
    const perRoom = (room: string) => capped.body.data.filter((d) => d.roomId === room);
    for (const room of ['room_joint02_001', 'room_joint02_002']) {
      const all = (await get(`/data/agent-decisions/room/${room}`)).body.data;
      expect(perRoom(room)).toEqual([all[0], ...all.filter((d) => d._type === 'decision').slice(0, 5)]);
    }
    const whole = await get(`/data/agent-decisions/experiment/${PILOT}`);
    expect(whole.body.metadata.truncated).toBe(false);
    const most = Math.max(...['room_joint02_001', 'room_joint02_002'].map((r) => whole.body.data.filter((d) => d.roomId === r).length - 1));
    expect((await get(`/data/agent-decisions/experiment/${PILOT}?limit=${most}`)).body.metadata.truncated).toBe(false);
    expect((await get(`/data/agent-decisions/experiment/${PILOT}?limit=${most - 1}`)).body.metadata.truncated).toBe(true);
    const times = whole.body.data.map((d) => Date.parse(String(d.timestamp ?? d.startedAt)));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect((await get('/data/agent-decisions/experiment/exp_movie01')).body).toMatchObject({ data: [], metadata: { truncated: false } });
  });

  it.each([
    ['detail=yes', 'detail', 'yes', 'one of true, false'],
    ['limit=0', 'limit', '0', 'integer between 1 and 5000'],
    ['limit=5001', 'limit', '5001', 'integer between 1 and 5000'],
    ['limit=many', 'limit', 'many', 'integer between 1 and 5000'],
  ])('rejects %s', async (query, parameter, value, expected) => {
    expect((await get(`/data/agent-decisions/room/${PILOT_ROOM}?${query}`)).body.error).toEqual({
      code: 'INVALID_PARAMETER',
      message: `Invalid value for parameter '${parameter}'`,
      details: { parameter, value, expected },
    });
  });

  it('has no participant scope, needs read:events, and checks the scope', async () => {
    const p = (await people(PILOT_ROOM))[1];
    expect((await get(`/data/agent-decisions/participant/${String(p?.id)}?roomId=${PILOT_ROOM}`)).body.error?.details).toEqual({
      parameter: 'scope',
      value: 'participant',
      expected: 'one of experiment, room (agent-decisions has no participant scope)',
    });
    expect((await get(`/data/agent-decisions/room/${PILOT_ROOM}?offset=5`)).status).toBe(400);
    expect((await get(`/data/agent-decisions/room/${PILOT_ROOM}`, EVENTS_ONLY)).status).toBe(200);
    expect((await get(`/data/agent-decisions/room/${PILOT_ROOM}`, RECORDINGS_ONLY)).status).toBe(403);
    expect((await get(`/data/agent-decisions/experiment/${PILOT}`, OTHER)).status).toBe(403);
    expect((await get('/data/agent-decisions/room/room_nope')).status).toBe(404);
  });

  it('answers one decision with its detail fields as a bare object', async () => {
    const detailed = (await get(`/data/agent-decisions/room/${PILOT_ROOM}?detail=true`)).body.data;
    const third = detailed.find((d) => d.seq === 3);
    const res = await call<{ data: Row; metadata: Row }>(
      `${sim.url}/data/agent-decisions/room/${PILOT_ROOM}/decision/${String(third?.id)}`,
      {
        key: EVENTS_ONLY,
      },
    );
    const { _type, ...fields } = third ?? {};
    expect(_type).toBe('decision');
    expect(res.body.data).toEqual(fields);
    expect(res.body.metadata).toMatchObject({ dataType: 'agentDecision', scope: 'room', scopeId: PILOT_ROOM });
    const missing = await get(`/data/agent-decisions/room/${PILOT_ROOM}/decision/ppt_nope_1`);
    expect(missing.body.error).toEqual({
      code: 'NOT_FOUND',
      message: 'Decision not found: ppt_nope_1',
      details: { resource: 'decision', id: 'ppt_nope_1', roomId: PILOT_ROOM },
    });
    // A decision of another room is not found in this one.
    expect((await get(`/data/agent-decisions/room/room_joint02_002/decision/${String(third?.id)}`)).status).toBe(404);
    expect((await get(`/data/agent-decisions/room/room_nope/decision/${String(third?.id)}`)).status).toBe(404);
    expect((await get(`/data/agent-decisions/room/${PILOT_ROOM}/decision/${String(third?.id)}`, OTHER)).status).toBe(403);
    expect((await get(`/data/agent-decisions/room/${PILOT_ROOM}/decision/${String(third?.id)}`, RECORDINGS_ONLY)).status).toBe(403);
  });
});

describe('the default data set', () => {
  it('keeps the pilot at one room of three participants, its one agent run orphaned', async () => {
    const own = await ownSimulator(options);
    const rooms = await call<Envelope>(`${own.url}/data/rooms/experiment/${PILOT}`, { key: FULL });
    expect(rooms.body.data.map((r) => [r.id, r.participantCount])).toEqual([[PILOT_ROOM, 3]]);
    const runs = await call<Envelope>(`${own.url}/data/agent-runs/experiment/${PILOT}`, { key: FULL });
    expect(runs.body.data.map((r) => [r.roomId, r.roomStatus, r.orphaned, r.endedAt])).toEqual([[PILOT_ROOM, 'failed', true, null]]);
  });
});
