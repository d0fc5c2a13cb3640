import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointOf } from '../src/simulator/api.ts';
import type { JsonObject } from '../src/simulator/model.ts';
import { startSimulator, type Simulator } from '../src/simulator/server.ts';
import {
  acceptedParams,
  DATA_TYPE_PATHS,
  LISTING_TYPES,
  matchDataType,
  SIMULATOR_DATA_TYPES,
  type DataTypePath,
} from '../src/simulator/spec.ts';
import { call } from './helpers/http.ts';
import { FULL, NO_RATE_LIMIT } from './helpers/simulator.ts';

type Rows = { data: JsonObject[] };

let sim: Simulator;
beforeAll(async () => {
  // Eight rooms in the primary experiment give the joint-attention pilot two rooms: one completed agent
  // run and one orphaned.
  sim = await startSimulator({ rooms: 8, rateLimit: NO_RATE_LIMIT });
});
afterAll(() => sim.close());

const get = async (path: string): Promise<JsonObject[]> => (await call<Rows>(`${sim.url}${path}`, { key: FULL })).body.data;

/** Every row the simulator serves of a type, from the store or (for types without pages) over HTTP. */
async function rowsOf(type: DataTypePath): Promise<JsonObject[]> {
  const experiments = ['exp_movie01', 'exp_joint02'];
  switch (type) {
    case 'variables':
      return [...sim.store.variables.values()].flatMap((v) => v.writes);
    case 'counts': {
      const p = [...sim.store.participants.values()][0];
      return get(`/data/counts/participant/${p?.id}?roomId=${p?.roomId}`);
    }
    case 'agent-decisions':
      return (await Promise.all(experiments.map((e) => get(`/data/agent-decisions/experiment/${e}?detail=true`)))).flat();
    case 'agent-runs':
      return (await Promise.all(experiments.map((e) => get(`/data/agent-runs/experiment/${e}`)))).flat();
    case 'sync':
      return [
        ...[...(sim.store.types.get('sync')?.byExperiment.values() ?? [])].flat().map((s) => s.record),
        ...(await get('/data/sync/experiment/exp_movie01?aggregationWindow=60000')),
      ];
    default:
      return [...(sim.store.types.get(type)?.byExperiment.values() ?? [])].flat().map((s) => s.record);
  }
}

describe('the simulator spec (SIMULATOR_DATA_TYPES)', () => {
  it('has one spec per upstream data type, keyed by its path', () => {
    expect(DATA_TYPE_PATHS).toEqual([
      'events',
      'recordings',
      'videochat',
      'chat',
      'ratings/continuous',
      'ratings/sparse',
      'sync',
      'components',
      'eyetracking',
      'participants',
      'rooms',
      'variables',
      'counts',
      'agent-decisions',
      'agent-runs',
    ]);
    for (const path of DATA_TYPE_PATHS) expect(SIMULATOR_DATA_TYPES[path].path).toBe(path);
    expect(LISTING_TYPES).toEqual(DATA_TYPE_PATHS.filter((p) => SIMULATOR_DATA_TYPES[p].paginated));
  });

  it('states scopes, key scopes, page limits and pagination per type', () => {
    const summary = Object.fromEntries(
      DATA_TYPE_PATHS.map((p) => {
        const s = SIMULATOR_DATA_TYPES[p];
        return [p, [s.scopes.join('|'), s.requiredScope, s.maxLimit, s.paginated, s.dataType]];
      }),
    );
    expect(summary).toEqual({
      events: ['experiment|room|participant', 'read:events', 1000, true, 'events'],
      recordings: ['experiment|room|participant', 'read:recordings', 1000, true, 'recordings'],
      videochat: ['experiment|room|participant', 'read:videochat', 1000, true, 'videochat'],
      chat: ['experiment|room|participant', 'read:chat', 1000, true, 'chat'],
      'ratings/continuous': ['experiment|room|participant', 'read:ratings', 1000, true, 'ratings/continuous'],
      'ratings/sparse': ['experiment|room|participant', 'read:ratings', 1000, true, 'ratings/sparse'],
      sync: ['experiment|room|participant', 'read:sync', 1000, true, 'sync'],
      components: ['experiment|room|participant', 'read:components', 1000, true, 'components'],
      eyetracking: ['experiment|room|participant', 'read:eyetracking', 1000, true, 'eyetracking'],
      participants: ['experiment|room', 'read:events', 1000, true, 'participants'],
      rooms: ['experiment|room', 'read:events', 5000, true, 'rooms'],
      variables: ['room', 'read:events', null, false, 'variables'],
      counts: ['participant', 'read:events', null, false, 'counts'],
      'agent-decisions': ['experiment|room', 'read:events', null, false, 'agentDecisions'],
      'agent-runs': ['experiment', 'read:events', null, false, 'agentRuns'],
    });
  });

  it('lists each type’s filters with their kind, its sorts and its time field', () => {
    const filters = Object.fromEntries(DATA_TYPE_PATHS.map((p) => [p, SIMULATOR_DATA_TYPES[p].params]));
    expect(filters).toEqual({
      events: [{ name: 'category', kind: 'string' }],
      recordings: [],
      videochat: [],
      chat: [],
      'ratings/continuous': [],
      'ratings/sparse': [],
      sync: [{ name: 'aggregationWindow', kind: 'int', min: 100, max: 3_600_000 }],
      components: [
        { name: 'componentType', kind: 'string' },
        { name: 'completed', kind: 'bool' },
        { name: 'stateId', kind: 'string' },
      ],
      eyetracking: [],
      participants: [
        {
          name: 'completionCode',
          kind: 'enum',
          values: ['SUCCESS', 'TIMEOUT', 'TECHNICAL', 'NOCONSENT', 'ABANDONED', 'IN_PROGRESS', 'COMPLETED_NO_CODE'],
        },
      ],
      rooms: [],
      variables: [],
      counts: [],
      'agent-decisions': [
        { name: 'detail', kind: 'bool', default: false },
        { name: 'limit', kind: 'int', min: 1, max: 5000, default: 5000 },
      ],
      'agent-runs': [],
    });
    expect(SIMULATOR_DATA_TYPES.eyetracking.sorts).toEqual(['onset', 'confidence', 'participantId']);
    expect(SIMULATOR_DATA_TYPES.recordings).toMatchObject({ defaultSort: 'startTime', timeField: 'startTime' });
    expect(SIMULATOR_DATA_TYPES.rooms).toMatchObject({ defaultSort: 'timestamp', timeField: 'createdAt' });
    expect(acceptedParams(SIMULATOR_DATA_TYPES.counts, 'participant')).toEqual(['roomId']);
    expect(acceptedParams(SIMULATOR_DATA_TYPES['agent-decisions'], 'room')).toEqual(['detail', 'limit']);
    expect(acceptedParams(SIMULATOR_DATA_TYPES.variables, 'room')).toEqual([]);
  });

  it('matches a data path to its type by the longest name', () => {
    expect(matchDataType(['ratings', 'sparse', 'room', 'r'])).toEqual({ type: 'ratings/sparse', length: 2 });
    expect(matchDataType(['agent-decisions', 'room', 'r'])).toEqual({ type: 'agent-decisions', length: 1 });
    expect(matchDataType(['ratings', 'room', 'r'])).toBeNull();
    expect(matchDataType(['heartbeats'])).toBeNull();
  });

  for (const type of DATA_TYPE_PATHS) {
    it(`${type}: every generated row's top-level keys are within recordFields, and every field occurs`, async () => {
      const rows = await rowsOf(type);
      expect(rows.length).toBeGreaterThan(0);
      const seen = new Set(rows.flatMap((r) => Object.keys(r)));
      const fields: readonly string[] = SIMULATOR_DATA_TYPES[type].recordFields;
      expect([...seen].filter((k) => !fields.includes(k))).toEqual([]);
      expect(fields.filter((k) => !seen.has(k))).toEqual([]);
    });
  }

  it('keeps the legacy sessionId on about one row in seven of events, chat and sparse ratings, and nowhere else', async () => {
    for (const type of DATA_TYPE_PATHS) {
      const legacy = (await rowsOf(type)).filter((r) => 'sessionId' in r);
      const fields: readonly string[] = SIMULATOR_DATA_TYPES[type].recordFields;
      expect(fields.includes('sessionId'), type).toBe(legacy.length > 0);
      for (const r of legacy) expect(r.roomId, type).toBeUndefined();
    }
  });
});

describe('rate-limit endpoints', () => {
  it.each([
    ['GET', '/data/events/room/room_movie01_001', 'GET /data/events/room/:id'],
    ['GET', '/data/ratings/sparse/experiment/exp_movie01', 'GET /data/ratings/sparse/experiment/:id'],
    ['GET', '/data/eyetracking/participant/ppt_x', 'GET /data/eyetracking/participant/:id'],
    ['GET', '/data/variables/room/room_x', 'GET /data/variables/room/:id'],
    ['GET', '/data/counts/participant/ppt_x', 'GET /data/counts/participant/:id'],
    ['GET', '/data/agent-decisions/experiment/exp_x', 'GET /data/agent-decisions/experiment/:id'],
    ['GET', '/data/agent-decisions/room/room_x/decision/ppt_x_3', 'GET /data/agent-decisions/room/:roomId/decision/:decisionId'],
    ['GET', '/data/agent-runs/experiment/exp_x', 'GET /data/agent-runs/experiment/:id'],
    ['GET', '/data/recordings/download/room_x/rec_y', 'GET /data/recordings/download/:roomId/:recordingId'],
    ['GET', '/data/check-access/experiment/exp_x', 'GET /data/check-access/experiment/:id'],
    ['POST', '/data/events/batch', 'POST /data/events/batch'],
    ['GET', '/experiments', 'GET /experiments'],
    ['GET', '/experiments/shared', 'GET /experiments/shared'],
    ['POST', '/experiments/validate', 'POST /experiments/validate'],
    ['PUT', '/experiments/exp_x', 'PUT /experiments/:id'],
    ['GET', '/experiments/exp_x/export', 'GET /experiments/:id/export'],
    ['GET', '/deployments', 'GET /deployments'],
    ['GET', '/deployments/dep_x', 'GET /deployments/:id'],
    ['GET', '/deployments/dep_x/sessions', 'GET /deployments/:id/sessions'],
    ['GET', '/deployments/dep_x/agent-spend', 'GET /deployments/:id/agent-spend'],
    ['POST', '/deployments/dep_x/run-more', 'POST /deployments/:id/run-more'],
    ['POST', '/deployments/dep_x/rooms/room_y/stop', 'POST /deployments/:id/rooms/:roomId/stop'],
    ['POST', '/deployments/dep_x/rooms/room_y/retry', 'POST /deployments/:id/rooms/:roomId/retry'],
    ['GET', '/personas', 'GET /personas'],
    ['PUT', '/personas/psn_x', 'PUT /personas/:id'],
    ['POST', '/personas/psn_x/duplicate', 'POST /personas/:id/duplicate'],
    ['GET', '/agent-cognition/catalog', 'GET /agent-cognition/catalog'],
    ['GET', '/nothing/here', 'GET /nothing/here'],
  ])('%s %s counts as %s', (method, path, endpoint) => {
    expect(endpointOf(method, path.split('/').filter(Boolean))).toBe(endpoint);
  });

  it('limits each new route template per minute, across ids', async () => {
    const limited = await startSimulator({ rateLimit: { enabled: true, perHour: 1000, perMinute: 2 } });
    try {
      const status = async (path: string): Promise<number> => (await call(`${limited.url}${path}`, { key: FULL })).status;
      expect(await status('/deployments/dep_movie01_a/sessions')).toBe(200);
      expect(await status('/deployments/dep_movie01_b/sessions')).toBe(200);
      expect(await status('/deployments/dep_joint02_a/sessions')).toBe(429);
      expect(await status('/deployments/dep_joint02_a')).toBe(200);
      expect(await status('/personas/psn_demo_partner')).toBe(200);
    } finally {
      await limited.close();
    }
  });
});
