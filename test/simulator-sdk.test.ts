import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../src/simulator/server.ts';
import { call } from './helpers/http.ts';
import { FULL, NO_RATE_LIMIT, EVENTS_ONLY, OTHER, simulatorPerTest } from './helpers/simulator.ts';

const RECORDINGS_ONLY = 'hst_test_recordings_only';
const EXP = 'exp_movie01';
const PILOT = 'exp_joint02';

type Row = Record<string, unknown>;
interface Envelope<D = Row[]> {
  status: string;
  data: D;
  metadata: Row & { pagination: { total: number; returned: number; hasMore: boolean; nextOffset?: number } };
  error?: { code: string; message: string; details: Row };
}

let sim: Simulator;
beforeAll(async () => {
  // 100 events a participant: an experiment's events, ratings and gaze samples take two pages of 1000.
  sim = await startSimulator({
    eventsPerParticipant: 100,
    rateLimit: NO_RATE_LIMIT,
    extraKeys: [{ key: RECORDINGS_ONLY, name: 'recordings_only', userId: 'user_demo', scopes: ['read:recordings'] }],
  });
});
afterAll(() => sim.close());
/** For the tests that write: what they write is not in the other tests' data. */
const ownSimulator = simulatorPerTest();

/** A request as the SDK (requests) sends it: the key header and the given query parameters, nothing else. */
async function sdk<D = Row[]>(
  path: string,
  params: Record<string, string> = {},
  init: { key?: string; headers?: Record<string, string> } = {},
) {
  const url = new URL(`${sim.url}${path}`);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  const res = await fetch(url, { headers: { 'X-API-Key': init.key ?? FULL, ...init.headers } });
  return { status: res.status, body: (await res.json()) as Envelope<D> };
}

describe("the public Python guide's get_all_data", () => {
  it('pages every data type of an experiment with limit=1000, following nextOffset until hasMore is false', async () => {
    const types = [
      'events',
      'recordings',
      'videochat',
      'chat',
      'ratings/continuous',
      'ratings/sparse',
      'sync',
      'components',
      'eyetracking',
    ];
    const collected: Record<string, number> = {};
    const pages: Record<string, number> = {};
    for (const type of types) {
      const rows: Row[] = [];
      let offset = 0;
      let total: number;
      for (;;) {
        const res = await sdk(`/data/${type}/experiment/${EXP}`, { limit: '1000', offset: String(offset) });
        expect(res.status, type).toBe(200);
        rows.push(...res.body.data);
        total = res.body.metadata.pagination.total;
        pages[type] = (pages[type] ?? 0) + 1;
        if (!res.body.metadata.pagination.hasMore) break;
        offset = res.body.metadata.pagination.nextOffset ?? Number.NaN;
      }
      expect(rows.length, type).toBe(total);
      collected[type] = rows.length;
    }
    // 4 rooms x 3 participants x (100 events, 100 continuous, 10 sparse, 2 recordings, 13 chat,
    // 13 video-chat, 20 sync, 13 components, 100 gaze samples).
    expect(collected).toEqual({
      events: 1200,
      recordings: 24,
      videochat: 156,
      chat: 156,
      'ratings/continuous': 1200,
      'ratings/sparse': 120,
      sync: 240,
      components: 156,
      eyetracking: 1200,
    });
    expect(pages).toMatchObject({ events: 2, 'ratings/continuous': 2, eyetracking: 2, recordings: 1 });
  });
});

describe("the SDK's call shapes", () => {
  it('eye-tracking: a participant with roomId, paged at 1000', async () => {
    const p = (await sdk('/data/participants/room/room_movie01_001')).body.data[0];
    const res = await sdk(`/data/eyetracking/participant/${String(p?.id)}`, { roomId: 'room_movie01_001', limit: '1000', offset: '0' });
    expect(res.body.metadata.pagination).toEqual({ total: 100, returned: 100, hasMore: false, limit: 1000, offset: 0 });
    expect(res.body.metadata.query).toEqual({
      startTime: null,
      endTime: null,
      roomId: 'room_movie01_001',
      limit: 1000,
      offset: 0,
      sort: 'timestamp',
      order: 'asc',
    });
  });

  it('variables, counts, agent decisions (detail, limit), agent runs and a decision: each in one call', async () => {
    expect((await sdk(`/data/variables/room/room_joint02_001`)).status).toBe(200);
    const runs = await sdk(`/data/agent-runs/experiment/${PILOT}`);
    expect(runs.body.data).toHaveLength(1);
    const agent = String(runs.body.data[0]?.participantId);
    const counts = await sdk(`/data/counts/participant/${agent}`, { roomId: 'room_joint02_001' });
    expect(counts.body.data[0]?.counts).toMatchObject({ events: 100, textchat: 13, eyetracking: 100 });
    for (const scope of [`experiment/${PILOT}`, 'room/room_joint02_001']) {
      const decisions = await sdk(`/data/agent-decisions/${scope}`, { detail: 'true', limit: '5000' });
      expect(decisions.body.metadata).toMatchObject({ dataType: 'agentDecisions', truncated: false });
      expect(decisions.body.data.filter((d) => d._type === 'decision').every((d) => typeof d.reasoning === 'string')).toBe(true);
    }
    const detail = await sdk<Row>(`/data/agent-decisions/room/room_joint02_001/decision/${agent}_1`);
    expect(detail.body.data).toMatchObject({ id: `${agent}_1`, participantId: agent, seq: 1, chain: expect.any(Array) });
  });

  it('recording download: the row’s downloadPath under the base URL, then the URL without the key', async () => {
    const row = (await sdk('/data/recordings/room/room_movie01_002')).body.data.find((r) => typeof r.downloadPath === 'string');
    const res = await sdk<{ url: string }>(String(row?.downloadPath));
    expect(res.body.status).toBe('success');
    expect(new URL(res.body.data.url).searchParams.get('X-Goog-Expires')).toBe('300');
  });

  it('deployments: list with experimentId and status, get, sessions, agent spend', async () => {
    const list = await sdk('/deployments', { experimentId: PILOT, status: 'active' });
    expect(list.body.data.map((d) => d.id)).toEqual(['dep_joint02_a', 'dep_joint02_agents']);
    expect((await sdk<Row>('/deployments/dep_joint02_a')).body.data).toMatchObject({ id: 'dep_joint02_a', participantCount: 3 });
    expect((await sdk('/deployments/dep_joint02_a/sessions')).body.data.map((s) => s.id)).toEqual(['room_joint02_001']);
    expect((await sdk<Row>('/deployments/dep_joint02_a/agent-spend')).body.data).toEqual({
      total: expect.any(Number),
      perRoom: { room_joint02_001: expect.any(Number) },
    });
  });

  it('deployment writes: create, run-more, stop (no body), retry (no body)', async () => {
    const own = await ownSimulator();
    const json = (method: string, path: string, body?: unknown) =>
      fetch(`${own.url}${path}`, {
        method,
        headers: { 'X-API-Key': FULL, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as Envelope<Row> }));
    const created = await json('POST', '/deployments', {
      experimentId: PILOT,
      config: { name: 'SDK wave', type: 'agent-only', agentDeployment: { rooms: 1, budgetUsd: 5 } },
    });
    expect(created.status).toBe(201);
    const id = String(created.body.data.id);
    expect((await json('POST', `/deployments/${id}/run-more`, { rooms: 1, budgetUsd: 2.5 })).status).toBe(202);
    expect((await json('POST', `/deployments/${id}/rooms/room_${id.slice(4)}_001/stop`)).body.data).toEqual({ stopped: true });
    expect((await json('POST', '/deployments/dep_joint02_agents/rooms/room_joint02_spawn01/retry')).status).toBe(202);
  });

  it('personas and the cognition catalog', async () => {
    expect((await sdk('/personas')).body.data.map((p) => p.id)).toEqual(['psn_demo_confederate', 'psn_demo_partner']);
    expect((await sdk<Row>('/personas/psn_demo_partner')).body.data.name).toBe('Curious partner');
    expect(Object.keys((await sdk('/agent-cognition/catalog')).body.data[0] ?? {})).toEqual(['abilities', 'recipes', 'offlineRecipes']);
  });
});

describe('experiments shared with an organisation', () => {
  it('lists what other organisations shared with the X-Organization-Id organisation, paged', async () => {
    const res = await sdk('/experiments/shared', {}, { headers: { 'X-Organization-Id': 'org_demo' } });
    expect(res.body.data).toEqual([
      {
        id: 'exp_other01',
        name: 'Private Replication',
        description: "Another lab's experiment, not visible to the demo user.",
        ownerId: 'user_other',
        ownerOrganizationId: 'org_other',
        accessType: 'shared',
        permissions: ['view'],
        dataPermissions: ['view'],
        sharedAt: '2024-10-02T08:00:00.000Z',
        expiresAt: null,
        roomCount: 1,
        participantCount: 3,
      },
    ]);
    expect(res.body.metadata.pagination).toEqual({ total: 1, returned: 1, hasMore: false, limit: 50, offset: 0 });
    const second = await sdk('/experiments/shared', { limit: '1', offset: '1' }, { headers: { 'X-Organization-Id': 'org_demo' } });
    expect(second.body.data).toEqual([]);
    expect(second.body.metadata.pagination).toEqual({ total: 1, returned: 0, hasMore: false, limit: 1, offset: 1 });
    const bad = await sdk('/experiments/shared', { limit: '0' }, { headers: { 'X-Organization-Id': 'org_demo' } });
    expect(bad.body.error?.details).toEqual({ parameter: 'limit', value: '0', expected: 'integer between 1 and 100' });
    const theirs = await sdk('/experiments/shared', {}, { key: OTHER, headers: { 'X-Organization-Id': 'org_other' } });
    expect(theirs.body.data).toEqual([]);
    // Its data is read as the organisation (test/simulator-shared.test.ts); without the header it stays the owner's.
    expect((await sdk(`/data/events/experiment/exp_other01`)).status).toBe(403);
  });

  it('needs the header (400), membership of the organisation (403) and read:experiments', async () => {
    const missing = await sdk('/experiments/shared');
    expect(missing.status).toBe(400);
    expect(missing.body.error).toEqual({
      code: 'VALIDATION_ERROR',
      message: 'The X-Organization-Id header is required',
      details: { header: 'X-Organization-Id', expected: 'the id of an organization you belong to' },
    });
    expect((await sdk('/experiments/shared', {}, { headers: { 'X-Organization-Id': ' ' } })).status).toBe(400);
    const foreign = await sdk('/experiments/shared', {}, { headers: { 'X-Organization-Id': 'org_other' } });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error).toEqual({
      code: 'FORBIDDEN',
      message: 'You are not a member of this organization',
      details: { resource: 'organization', id: 'org_other' },
    });
    expect((await sdk('/experiments/shared', {}, { headers: { 'X-Organization-Id': 'org_nope' } })).status).toBe(403);
    expect((await sdk('/experiments/shared', {}, { key: EVENTS_ONLY, headers: { 'X-Organization-Id': 'org_demo' } })).status).toBe(200);
    expect((await sdk('/experiments/shared', {}, { key: RECORDINGS_ONLY, headers: { 'X-Organization-Id': 'org_demo' } })).status).toBe(403);
  });

  it('records the X-Organization-Id each request carried in the request stats', async () => {
    sim.stats.reset();
    await sdk('/experiments/shared', {}, { headers: { 'X-Organization-Id': 'org_demo' } });
    await sdk('/experiments');
    expect(sim.stats.requests.map((r) => [r.path, r.organizationId])).toEqual([
      ['/api/v3/experiments/shared', 'org_demo'],
      ['/api/v3/experiments', null],
    ]);
  });
});

describe('experiments in the SDK schema', () => {
  const sdkExperiment = {
    name: 'SDK study',
    description: 'Written by the SDK',
    requiredParticipants: 2,
    randomizeStates: false,
    variables: { condition: 'A' },
    waitingRoomConfig: { maxWaitTimeMs: 60000, countdownTimeMs: 5000 },
    disconnectTimeout: { enabled: true, durationMs: 30000, autoReconnectDelay: 1000 },
    completionScreenDurationMs: 3000,
    consentFormEnabled: true,
    consentFormTitle: 'Consent',
    consentFormContent: 'Do you agree?',
    instructionsPages: [{ title: 'Welcome', content: 'Hello' }],
    postExperimentQuestionnaire: { enabled: true, questions: [] },
    roles: { p1: { name: 'Participant', participantCount: 1, mode: 'human' }, bot: { mode: 'agent', personaId: 'psn_demo_partner' } },
    globalComponents: { videochat: { enabled: true }, textchat: {} },
    states: [
      { id: 's1', focusComponent: { id: 'a1b2c3d4', type: 'showvideo', config: { src: 'clip.mp4' } } },
      {
        id: 's2',
        name: 'Rate',
        order: 1,
        transitionRules: { type: 'timer', durationMs: 10000 },
        globalComponentsVisibility: { videochat: false },
        focusComponent: { type: 'vasrating', config: {} },
      },
    ],
    runtime: 'v2',
    agentConfig: { roleOverrides: { bot: { guidance: 'Be brief.', examples: ['Fine.'] } }, pacing: {}, seed: 3 },
    laterPlatformField: { kept: true },
  };

  it('accepts an experiment as the SDK writes it (only name required, extra keys kept)', async () => {
    const own = await ownSimulator();
    const valid = await call<Envelope>(`${own.url}/experiments/validate`, { key: FULL, body: sdkExperiment });
    expect(valid.body.data).toEqual([{ valid: true }]);
    expect((await call<Envelope>(`${own.url}/experiments/validate`, { key: FULL, body: { name: 'x' } })).body.data).toEqual([
      { valid: true },
    ]);
    const created = await call<Envelope>(`${own.url}/experiments`, { key: FULL, body: sdkExperiment });
    expect(created.status).toBe(201);
    expect(created.body.data[0]).toMatchObject({ runtime: 'v2', laterPlatformField: { kept: true }, roles: sdkExperiment.roles });
  });

  it('reports each schema violation with its field path', async () => {
    const res = await call<Envelope>(`${sim.url}/experiments/validate`, {
      key: FULL,
      body: {
        name: 'Broken',
        requiredParticipants: 0,
        instructionsPages: [{ title: 3, content: 'x' }],
        roles: { bot: { mode: 'robot', personaId: '' }, odd: 'x' },
        globalComponents: { hologram: {} },
        states: [
          { name: 'No id' },
          { id: 's2', focusComponent: { type: 'ShowVideo', config: 'x' } },
          { id: 's3', focusComponent: { config: {} }, transitionRules: { durationMs: -1 } },
          { id: 's2' },
        ],
        runtime: 'v3',
        agentConfig: { seed: 'x', roleOverrides: { bot: 'Be brief.', p1: { objective: 3, examples: 'x' } } },
      },
    });
    expect(res.body.data).toEqual([
      {
        valid: false,
        errors: [
          { field: 'requiredParticipants', message: 'requiredParticipants must be a positive integer' },
          { field: 'instructionsPages[0].title', message: 'title must be a string' },
          { field: 'roles.bot.mode', message: 'mode must be one of human, agent' },
          { field: 'roles.bot.personaId', message: 'personaId must be a non-empty string' },
          { field: 'roles.odd', message: 'a role must be an object' },
          {
            field: 'globalComponents.hologram',
            message:
              'unknown global component; one of continuousrating, videochat, textchat, sparserating, scannerpulserecorder, gazeoverlay',
          },
          { field: 'states[0].id', message: 'id is required and must be a non-empty string' },
          {
            field: 'states[1].focusComponent.type',
            message:
              'type must be one of showtext, showimage, showvideo, vasrating, textinput, multiplechoice, waiting, code, continuousrating, videochat, textchat, rapidrate, audiorecording, sparserating, trigger, ranking, scannerpulserecorder, likertscale, gazeoverlay',
          },
          { field: 'states[1].focusComponent.config', message: 'config must be an object' },
          { field: 'states[2].transitionRules.durationMs', message: 'durationMs must be an integer >= 0' },
          { field: 'states[2].focusComponent.type', message: 'type is required' },
          { field: 'states[3].id', message: 'duplicate state id s2' },
          { field: 'runtime', message: 'runtime must be one of v1, v2' },
          {
            field: 'agentConfig.roleOverrides.bot',
            message: 'a prompt override must be an object with persona, objective, guidance, additionalInstructions, examples',
          },
          { field: 'agentConfig.roleOverrides.p1.objective', message: 'objective must be a string' },
          { field: 'agentConfig.roleOverrides.p1.examples', message: 'examples must be an array of strings' },
          { field: 'agentConfig.seed', message: 'seed must be an integer >= 0' },
        ],
      },
    ]);
    const create = await call<Envelope>(`${sim.url}/experiments`, { key: FULL, body: { name: 'x', states: [{ name: 'No id' }] } });
    expect(create.body.error).toEqual({
      code: 'VALIDATION_ERROR',
      message: 'The experiment is not valid',
      details: { errors: [{ field: 'states[0].id', message: 'id is required and must be a non-empty string' }] },
    });
  });

  it('seeds experiments in the current shape: states with a focus component, roles with name and participantCount', async () => {
    const pilot = (await sdk(`/experiments/${PILOT}`)).body.data[0];
    expect(pilot).toMatchObject({
      runtime: 'v2',
      roles: {
        speaker: { name: 'Speaker', participantCount: 1 },
        listener: { name: 'Listener', participantCount: 2 },
        partner: { name: 'AI partner', participantCount: 1, mode: 'agent', personaId: 'psn_demo_partner' },
      },
    });
    const movie = (await sdk(`/experiments/${EXP}`)).body.data[0];
    expect(movie?.roles).toEqual({
      speaker: { name: 'Speaker', participantCount: 1 },
      listener: { name: 'Listener', participantCount: 2 },
    });
    expect(movie).not.toHaveProperty('runtime');
    expect((movie?.states as unknown[]).slice(2, 4)).toEqual([
      {
        id: 'state_instructions',
        name: 'Instructions',
        order: 2,
        focusComponent: {
          id: 'cmp_instructions_1',
          type: 'textinput',
          config: { prompt: 'Describe the film', outputVariable: 'description' },
        },
      },
      {
        id: 'state_movie',
        name: 'Movie',
        order: 3,
        focusComponent: { id: 'cmp_movie_1', type: 'vasrating', config: { prompt: 'How engaging was it?', outputVariable: 'engagement' } },
        transitionRules: { type: 'timed', durationMs: 600_000 },
      },
    ]);
    // Every seeded experiment passes the schema the simulator checks writes against.
    for (const seeded of [pilot, movie]) {
      const {
        id: _id,
        ownerId: _o,
        ownerEmail: _e,
        createdAt: _c,
        updatedAt: _u,
        roomCount: _r,
        participantCount: _p,
        ...definition
      } = seeded ?? {};
      const checked = await call<Envelope>(`${sim.url}/experiments/validate`, { key: FULL, body: definition });
      expect(checked.body.data).toEqual([{ valid: true }]);
    }
  });
});
