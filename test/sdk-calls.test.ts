/**
 * Every upstream call the official Python SDK makes (hyperstudyio/hyperstudy-pythonsdk @1559ab7, v0.4.1:
 * src/hyperstudy/client.py, experiments.py, personas.py, _pagination.py, _http.py), sent to the simulator
 * exactly as the SDK sends it, and what the SDK reads from each answer asserted.
 *
 * As `requests` sends them: `X-API-Key` and `Accept: application/json` on every call, `Content-Type:
 * application/json` only with a `json=` body (stop, retry and duplicate send none), parameters whose value
 * is `None` left out, integers as decimal strings. `_http.py` raises on `status: "error"` and on a non-2xx
 * status, and iterates `metadata._warnings`; `_pagination.py` reads `metadata.pagination.total`, `hasMore`
 * and `nextOffset` and pages at 1000 (experiments at 50); the single-object readers take `data[0]` when
 * `data` is a non-empty list, else `data`.
 */
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../src/simulator/server.ts';
import { FULL, NO_RATE_LIMIT, simulatorPerTest } from './helpers/simulator.ts';

type Row = Record<string, unknown>;
type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** An id (a recording's `downloadPath` for `download`) that a call's answer names, for later calls' paths. */
type Saved = 'experiment' | 'persona' | 'deployment' | 'room' | 'download';

/** What the SDK does with the answer. */
type Reads =
  /** `fetch_all_pages`: every page from `offset` by `nextOffset` while `hasMore`; all rows = `pagination.total`. */
  | { rows: number; pages: number }
  /** `body.get("data", [])` as a list (handed to pandas) of this many rows. */
  | { list: number }
  /** `data[0]` if `data` is a non-empty list, else `data`, whose `keys` the SDK or its caller indexes. */
  | { record: readonly string[] }
  /** `body.get("data", {})` as an object, with these keys. */
  | { object: readonly string[] }
  /** The whole body, not an envelope (`health`), with these keys. */
  | { body: readonly string[] }
  /** Nothing but success (`stop_room`, `delete_persona`, `delete_experiment`). */
  | { nothing: true };

interface SdkCall {
  /** The SDK method as a caller writes it. */
  sdk: string;
  method: Method;
  /** Under the base URL; `:experiment`, `:persona`, `:deployment`, `:room`, `:download` are what an earlier call saved. */
  path: string;
  params?: Record<string, string>;
  body?: Row;
  status?: number;
  reads: Reads;
  /** Keys every row carries that the SDK reads from rows (a list: any one of them, as its fallbacks read). */
  rowKeys?: readonly (string | readonly string[])[];
  /** Keys of `metadata` the SDK reads. */
  metadataKeys?: readonly string[];
  /** Keeps the first row's id (the first `downloadPath`) for later calls' paths. */
  saves?: Saved;
}

/** A call the simulator answers as the docs say, not as the SDK expects; named in docs/simulator.md. */
interface RefusedCall extends Omit<SdkCall, 'reads'> {
  refusal: { status: number; code: string; expected: string };
  why: string;
}

const EXP = 'exp_movie01';
const ROOM = 'room_movie01_001';
const PPT = 'ppt_jcg2tag4r3';
const PILOT = 'exp_joint02';
const PILOT_ROOM = 'room_joint02_001';
/** The pilot's AI participant (seeded with 100 events a participant). */
const AGENT = 'ppt_njxmiguwyd';

/** `_fetch_data` with `limit=None`: `offset` first, then the filters, then `limit` set by `fetch_all_pages`. */
const paged = (extra: Record<string, string> = {}): Record<string, string> => ({ offset: '0', ...extra, limit: '1000' });
const SCOPES = [
  { scope: 'experiment', id: EXP, params: {} },
  { scope: 'room', id: ROOM, params: {} },
  { scope: 'participant', id: PPT, params: { roomId: ROOM } },
] as const;

/** `get_<type>(scope_id, scope=…)` for each data type and scope, paged, with the rows each answer totals. */
const DATA_TYPES: readonly {
  sdk: string;
  path: string;
  rows: readonly [number, number, number];
  category?: string;
  rowKeys?: readonly string[];
}[] = [
  { sdk: 'get_events', path: 'events', rows: [1200, 300, 100] },
  { sdk: 'get_recordings', path: 'recordings', rows: [24, 6, 2] },
  { sdk: 'get_chat', path: 'chat', rows: [156, 39, 13] },
  { sdk: 'get_videochat', path: 'videochat', rows: [156, 39, 13] },
  { sdk: 'get_sync', path: 'sync', rows: [240, 60, 20] },
  { sdk: 'get_ratings(kind="continuous")', path: 'ratings/continuous', rows: [1200, 300, 100] },
  { sdk: 'get_ratings(kind="sparse")', path: 'ratings/sparse', rows: [120, 30, 10] },
  { sdk: 'get_eyetracking', path: 'eyetracking', rows: [1200, 300, 100] },
  { sdk: 'get_components', path: 'components', rows: [156, 39, 13] },
  { sdk: 'get_questionnaire', path: 'events', rows: [189, 39, 14], category: 'questionnaire' },
  // get_instructions and get_consent send the same request and filter eventType client-side.
  { sdk: 'get_instructions', path: 'events', rows: [197, 40, 20], category: 'pre_experiment', rowKeys: ['eventType'] },
  { sdk: 'get_consent', path: 'events', rows: [197, 40, 20], category: 'pre_experiment', rowKeys: ['eventType'] },
];

const DATA_CALLS: SdkCall[] = DATA_TYPES.flatMap((type) =>
  SCOPES.map((s, i) => ({
    sdk: `${type.sdk}(${s.id}, scope="${s.scope}"${s.scope === 'participant' ? `, room_id="${ROOM}"` : ''})`,
    method: 'GET' as const,
    path: `/data/${type.path}/${s.scope}/${s.id}`,
    params: paged({ ...s.params, ...(type.category === undefined ? {} : { category: type.category }) }),
    reads: { rows: type.rows[i] ?? 0, pages: Math.max(1, Math.ceil((type.rows[i] ?? 0) / 1000)) },
    ...(type.rowKeys === undefined ? {} : { rowKeys: type.rowKeys }),
  })),
);

const READ_CALLS: SdkCall[] = [
  ...DATA_CALLS,
  {
    sdk: `get_participants(${EXP})`,
    method: 'GET',
    path: `/data/participants/experiment/${EXP}`,
    params: paged(),
    reads: { rows: 12, pages: 1 },
  },
  {
    sdk: `get_participants(${ROOM}, scope="room")`,
    method: 'GET',
    path: `/data/participants/room/${ROOM}`,
    params: paged(),
    reads: { rows: 3, pages: 1 },
  },
  { sdk: `get_rooms(${EXP})`, method: 'GET', path: `/data/rooms/experiment/${EXP}`, params: paged(), reads: { rows: 4, pages: 1 } },
  {
    sdk: `get_rooms(${ROOM}, scope="room")`,
    method: 'GET',
    path: `/data/rooms/room/${ROOM}`,
    params: paged(),
    reads: { rows: 1, pages: 1 },
  },
  {
    sdk: `get_events(${EXP}, deployment_id=…, start_time=…, end_time=…, category="component", sort="onset", order="desc", limit=5)`,
    method: 'GET',
    path: `/data/events/experiment/${EXP}`,
    params: {
      offset: '0',
      deploymentId: 'dep_movie01_a',
      startTime: '2024-10-01T00:00:00Z',
      endTime: '2024-12-31T00:00:00Z',
      category: 'component',
      sort: 'onset',
      order: 'desc',
      limit: '5',
    },
    reads: { list: 5 },
  },
  {
    sdk: `get_sync(${ROOM}, scope="room", aggregation_window=1000)`,
    method: 'GET',
    path: `/data/sync/room/${ROOM}`,
    params: { offset: '0', aggregationWindow: '1000', limit: '1000' },
    reads: { rows: 60, pages: 1 },
  },
  {
    sdk: `get_variables(${ROOM})`,
    method: 'GET',
    path: `/data/variables/room/${ROOM}`,
    reads: { list: 11 },
    metadataKeys: ['timeline', 'variableNames', 'matrixColumns', 'droppedWrites', 'mode'],
  },
  {
    sdk: `get_counts(${PPT}, ${ROOM})`,
    method: 'GET',
    path: `/data/counts/participant/${PPT}`,
    params: { roomId: ROOM },
    reads: { record: ['counts', 'hasData'] },
  },
  {
    sdk: `get_agent_decisions(${PILOT})`,
    method: 'GET',
    path: `/data/agent-decisions/experiment/${PILOT}`,
    reads: { list: 33 },
    rowKeys: ['participantId'],
    metadataKeys: ['truncated'],
  },
  {
    sdk: `get_agent_decisions(${PILOT_ROOM}, scope="room", detail=True, limit=5000)`,
    method: 'GET',
    path: `/data/agent-decisions/room/${PILOT_ROOM}`,
    params: { detail: 'true', limit: '5000' },
    reads: { list: 33 },
    rowKeys: ['participantId'],
    metadataKeys: ['truncated'],
  },
  {
    sdk: `get_all_data(participant, room_id="${PILOT_ROOM}"): get_agent_decisions(room, scope="room", participant_id=…)`,
    method: 'GET',
    path: `/data/agent-decisions/room/${PILOT_ROOM}`,
    reads: { list: 33 },
    rowKeys: ['participantId'],
    metadataKeys: ['truncated'],
  },
  {
    sdk: `get_agent_decision(${PILOT_ROOM}, "${AGENT}_1")`,
    method: 'GET',
    path: `/data/agent-decisions/room/${PILOT_ROOM}/decision/${AGENT}_1`,
    reads: { object: ['id', 'participantId', 'prompt', 'reasoning', 'chain', 'peerModelSnapshot', 'predictionUpdate'] },
  },
  { sdk: `get_agent_runs(${PILOT})`, method: 'GET', path: `/data/agent-runs/experiment/${PILOT}`, reads: { list: 1 } },
  {
    sdk: 'download_recordings("room_movie01_002", scope="room", output_dir=…): the listing',
    method: 'GET',
    path: '/data/recordings/room/room_movie01_002',
    params: paged(),
    reads: { rows: 6, pages: 1 },
    // build_filename, the recording_type filter and _download_url_for.
    rowKeys: [
      ['participantName', 'participantId'],
      ['recordingId', 'egressId'],
      'metadata',
      'format',
      ['downloadPath', 'downloadUrl', 'url'],
    ],
    saves: 'download',
  },
  { sdk: 'download_recordings(…): a row’s downloadPath', method: 'GET', path: ':download', reads: { object: ['url'] } },
  { sdk: 'list_deployments()', method: 'GET', path: '/deployments', reads: { list: 5 } },
  {
    sdk: `list_deployments(experiment_id="${PILOT}", status="active")`,
    method: 'GET',
    path: '/deployments',
    params: { experimentId: PILOT, status: 'active' },
    reads: { list: 2 },
  },
  {
    sdk: 'get_deployment("dep_joint02_a")',
    method: 'GET',
    path: '/deployments/dep_joint02_a',
    reads: { record: ['id', 'experimentId', 'status'] },
  },
  { sdk: 'get_deployment_sessions("dep_joint02_a")', method: 'GET', path: '/deployments/dep_joint02_a/sessions', reads: { list: 1 } },
  {
    sdk: 'get_agent_spend("dep_joint02_agents")',
    method: 'GET',
    path: '/deployments/dep_joint02_agents/agent-spend',
    reads: { object: ['total', 'perRoom'] },
  },
  { sdk: 'list_personas()', method: 'GET', path: '/personas', reads: { list: 2 } },
  { sdk: 'get_persona("psn_demo_partner")', method: 'GET', path: '/personas/psn_demo_partner', reads: { object: ['id', 'name'] } },
  {
    sdk: 'get_cognition_catalog()',
    method: 'GET',
    path: '/agent-cognition/catalog',
    reads: { record: ['abilities', 'recipes', 'offlineRecipes'] },
  },
  { sdk: 'list_experiments()', method: 'GET', path: '/experiments', params: { offset: '0', limit: '50' }, reads: { rows: 2, pages: 1 } },
  {
    sdk: 'list_experiments(search="movie", limit=10)',
    method: 'GET',
    path: '/experiments',
    params: { offset: '0', search: 'movie', limit: '10' },
    reads: { list: 1 },
  },
  { sdk: `get_experiment(${EXP})`, method: 'GET', path: `/experiments/${EXP}`, reads: { record: ['id', 'name'] } },
  { sdk: `get_experiment_config(${EXP})`, method: 'GET', path: `/experiments/${EXP}/config`, reads: { record: ['states'] } },
  { sdk: `export_experiment(${EXP})`, method: 'GET', path: `/experiments/${EXP}/export`, reads: { record: ['experiment', 'mediaAssets'] } },
  { sdk: 'health()', method: 'GET', path: '/health', reads: { body: ['status', 'version', 'timestamp'] } },
];

const EXPERIMENT = {
  name: 'SDK builder study',
  requiredParticipants: 2,
  roles: { p1: { name: 'Participant', participantCount: 1, mode: 'human' }, bot: { mode: 'agent', personaId: 'psn_demo_partner' } },
  states: [{ id: 's1', name: 'Watch', focusComponent: { id: 'a1b2c3d4', type: 'showvideo', config: { src: 'clip.mp4' } } }],
  runtime: 'v2',
  agentConfig: { roleOverrides: { bot: { guidance: 'Be brief.' } }, seed: 3 },
};

/** The writes, in order, on a simulator of their own (later ones use what earlier ones created). */
const WRITE_CALLS: SdkCall[] = [
  { sdk: 'validate_experiment(experiment)', method: 'POST', path: '/experiments/validate', body: EXPERIMENT, reads: { record: ['valid'] } },
  {
    sdk: 'create_experiment(experiment=experiment)',
    method: 'POST',
    path: '/experiments',
    body: EXPERIMENT,
    status: 201,
    reads: { record: ['id', 'name'] },
    saves: 'experiment',
  },
  {
    sdk: 'update_experiment(id, description="v2")',
    method: 'PUT',
    path: '/experiments/:experiment',
    body: { description: 'v2' },
    reads: { record: ['id'] },
  },
  { sdk: 'delete_experiment(id)', method: 'DELETE', path: '/experiments/:experiment', reads: { nothing: true } },
  {
    sdk: `delete_experiment(${EXP}, skip_data_check=True)`,
    method: 'DELETE',
    path: `/experiments/${EXP}`,
    params: { skipDataCheck: 'true' },
    reads: { nothing: true },
  },
  {
    sdk: `create_deployment(${PILOT}, config={name, type: "agent-only", agentDeployment})`,
    method: 'POST',
    path: '/deployments',
    body: { experimentId: PILOT, config: { name: 'SDK wave', type: 'agent-only', agentDeployment: { rooms: 1, budgetUsd: 5 } } },
    status: 201,
    reads: { object: ['id', 'type', 'status'] },
    saves: 'deployment',
  },
  {
    sdk: 'run_more(id, rooms=1, budget_usd=2.5)',
    method: 'POST',
    path: '/deployments/:deployment/run-more',
    body: { rooms: 1, budgetUsd: 2.5 },
    status: 202,
    reads: { object: ['batchId', 'requestedRooms'] },
  },
  { sdk: 'get_deployment_sessions(id)', method: 'GET', path: '/deployments/:deployment/sessions', reads: { list: 2 }, saves: 'room' },
  { sdk: 'stop_room(id, room)', method: 'POST', path: '/deployments/:deployment/rooms/:room/stop', reads: { nothing: true } },
  {
    sdk: 'retry_room(dep_joint02_agents, spawn-failed room)',
    method: 'POST',
    path: '/deployments/dep_joint02_agents/rooms/room_joint02_spawn01/retry',
    status: 202,
    reads: { object: ['batchId', 'requestedRooms'] },
  },
  {
    sdk: 'create_persona(name="Confederate 2", provider="anthropic")',
    method: 'POST',
    path: '/personas',
    body: { name: 'Confederate 2', provider: 'anthropic' },
    status: 201,
    reads: { object: ['id', 'name'] },
    saves: 'persona',
  },
  {
    sdk: 'update_persona(id, temperature=0.2)',
    method: 'PUT',
    path: '/personas/:persona',
    body: { temperature: 0.2 },
    reads: { object: ['id', 'temperature'] },
  },
  { sdk: 'duplicate_persona(id)', method: 'POST', path: '/personas/:persona/duplicate', status: 201, reads: { object: ['id', 'name'] } },
  { sdk: 'delete_persona(id)', method: 'DELETE', path: '/personas/:persona', reads: { nothing: true } },
];

const REFUSED_CALLS: RefusedCall[] = [
  {
    sdk: `get_participants(${PPT}, scope="participant", room_id="${ROOM}")`,
    method: 'GET',
    path: `/data/participants/participant/${PPT}`,
    params: paged({ roomId: ROOM }),
    refusal: { status: 400, code: 'INVALID_PARAMETER', expected: 'one of experiment, room (participants has no participant scope)' },
    why: 'the docs: participants have experiment and room scope only, the participant scope is a 400',
  },
  {
    sdk: `get_rooms(${PPT}, scope="participant")`,
    method: 'GET',
    path: `/data/rooms/participant/${PPT}`,
    params: paged(),
    refusal: { status: 400, code: 'INVALID_PARAMETER', expected: 'one of experiment, room (rooms has no participant scope)' },
    why: 'the docs: rooms are listed at experiment scope; a participant is no scope of rooms',
  },
];

/** Sends one call as `requests` would and returns the HTTP status and parsed body. */
async function send(base: string, call: Omit<SdkCall, 'reads'>, ids: Record<string, string> = {}): Promise<{ status: number; body: Row }> {
  const url = new URL(
    `${base}${call.path.replace(/:(experiment|persona|deployment|room|download)\b/g, (_, name: string) => ids[name] ?? '')}`,
  );
  for (const [name, value] of Object.entries(call.params ?? {})) url.searchParams.append(name, value);
  const headers: Record<string, string> = { 'X-API-Key': FULL, Accept: 'application/json' };
  if (call.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(url, { method: call.method, headers, body: call.body === undefined ? undefined : JSON.stringify(call.body) });
  return { status: res.status, body: (await res.json()) as Row };
}

function envelope(body: Row): { data: unknown; metadata: Row } {
  const metadata = (body.metadata ?? {}) as Row;
  return { data: body.data, metadata };
}

/** `data[0]` if `data` is a non-empty list, else `data` (the SDK's single-object readers). */
function firstOrSelf(data: unknown): unknown {
  return Array.isArray(data) && data.length > 0 ? data[0] : data;
}

/** The rows' and metadata's keys the SDK reads, missing ones listed (none, when the answer is as the SDK reads it). */
function missingKeys(call: SdkCall, rows: readonly Row[], metadata: Row): string[] {
  const missing = new Set<string>();
  for (const key of call.metadataKeys ?? []) if (!(key in metadata)) missing.add(`metadata.${key}`);
  for (const row of rows)
    for (const key of call.rowKeys ?? []) {
      const anyOf = typeof key === 'string' ? [key] : key;
      if (!anyOf.some((k) => row[k] !== undefined && row[k] !== null)) missing.add(anyOf.join('|'));
    }
  return [...missing];
}

function keep(ids: Record<string, string>, saves: Saved | undefined, rows: readonly Row[]): void {
  if (saves === 'download') ids.download = String(rows.find((r) => typeof r.downloadPath === 'string')?.downloadPath);
  else if (saves !== undefined) ids[saves] = String(rows[0]?.id);
}

/** What `_http.py` checks on every answer, then what the call's reader takes; returns a short account. */
async function readAsSdk(base: string, call: SdkCall, ids: Record<string, string>): Promise<Row> {
  const first = await send(base, call, ids);
  const reads = call.reads;
  if ('body' in reads) {
    expect([first.status, reads.body.filter((k) => !(k in first.body)), first.body.status], call.sdk).toEqual([200, [], 'healthy']);
    return { keys: reads.body.length };
  }
  expect([first.status, first.body.status, first.body.error], call.sdk).toEqual([call.status ?? 200, 'success', undefined]);
  const { data, metadata } = envelope(first.body);
  if (metadata._warnings !== undefined) expect(Array.isArray(metadata._warnings), call.sdk).toBe(true);
  if ('rows' in reads) {
    const rows: unknown[] = [];
    let body = first.body;
    let offset = 0;
    let pages = 1;
    const pageSize = Number(call.params?.limit);
    for (; ; pages++) {
      const { data: pageData, metadata: pageMeta } = envelope(body);
      expect(Array.isArray(pageData), call.sdk).toBe(true);
      rows.push(...(pageData as unknown[]));
      const pagination = pageMeta.pagination as { total: number; hasMore: boolean; nextOffset?: number };
      expect(typeof pagination.total, call.sdk).toBe('number');
      expect(typeof pagination.hasMore, call.sdk).toBe('boolean');
      if (!pagination.hasMore) {
        expect(rows.length, call.sdk).toBe(pagination.total);
        break;
      }
      offset = pagination.nextOffset ?? offset + pageSize;
      body = (await send(base, { ...call, params: { ...call.params, offset: String(offset) } })).body;
      expect(body.status, call.sdk).toBe('success');
      expect(pages, call.sdk).toBeLessThan(20);
    }
    expect(missingKeys(call, rows as Row[], metadata), call.sdk).toEqual([]);
    keep(ids, call.saves, rows as Row[]);
    return { rows: rows.length, pages };
  }
  if ('list' in reads) {
    expect(Array.isArray(data), call.sdk).toBe(true);
    const rows = data as Row[];
    expect(rows.length, call.sdk).toBe(reads.list);
    expect(missingKeys(call, rows, metadata), call.sdk).toEqual([]);
    keep(ids, call.saves, rows);
    return { rows: rows.length };
  }
  if ('record' in reads || 'object' in reads) {
    const value = 'record' in reads ? firstOrSelf(data) : data;
    const keys = 'record' in reads ? reads.record : reads.object;
    expect(value !== null && typeof value === 'object' && !Array.isArray(value), call.sdk).toBe(true);
    const record = value as Row;
    expect(
      keys.filter((k) => !(k in record)),
      call.sdk,
    ).toEqual([]);
    keep(ids, call.saves, [record]);
    return { keys: keys.length };
  }
  return {};
}

let sim: Simulator;
beforeAll(async () => {
  // 100 events a participant: an experiment's events, continuous ratings and gaze samples take two pages.
  sim = await startSimulator({ eventsPerParticipant: 100, rateLimit: NO_RATE_LIMIT });
});
afterAll(() => sim.close());
const ownSimulator = simulatorPerTest();

describe("the SDK's calls against the simulator", () => {
  it('lists 81 calls: 65 reads and a writing script of 14 answered as the SDK reads them, 2 answered as the docs say', () => {
    expect([READ_CALLS.length, WRITE_CALLS.length, REFUSED_CALLS.length]).toEqual([65, 14, 2]);
  });

  it('answers every read as the SDK reads it, with the rows its pages total', async () => {
    const got: Record<string, Row> = {};
    const ids: Record<string, string> = {};
    for (const call of READ_CALLS) got[call.sdk] = await readAsSdk(sim.url, call, ids);
    const expected = Object.fromEntries(
      READ_CALLS.map((call) => [call.sdk, 'rows' in call.reads ? { rows: call.reads.rows, pages: call.reads.pages } : got[call.sdk]]),
    );
    expect(got).toEqual(expected);
  });

  it('answers every write as the SDK reads it, in the order a script would make them', async () => {
    const own = await ownSimulator();
    const ids: Record<string, string> = {};
    for (const call of WRITE_CALLS) await readAsSdk(own.url, call, ids);
    expect(Object.keys(ids).sort()).toEqual(['deployment', 'experiment', 'persona', 'room']);
    // What the writes left: the created experiment and the seeded one deleted, the persona gone, its copy kept.
    const get = (path: string) => send(own.url, { sdk: path, method: 'GET', path });
    expect((await get(`/experiments/${ids.experiment ?? ''}`)).status).toBe(404);
    expect((await get(`/experiments/${EXP}`)).status).toBe(404);
    expect((await get(`/personas/${ids.persona ?? ''}`)).status).toBe(404);
    const personas = (await get('/personas')).body.data as Row[];
    expect(personas.map((p) => p.name)).toContain('Confederate 2 (copy)');
  });

  it('answers the calls where the SDK and the docs disagree as the docs say', async () => {
    for (const call of REFUSED_CALLS) {
      const res = await send(sim.url, call);
      expect([res.status, res.body.error], call.sdk).toEqual([
        call.refusal.status,
        {
          code: call.refusal.code,
          message: "Invalid value for parameter 'scope'",
          details: { parameter: 'scope', value: 'participant', expected: call.refusal.expected },
        },
      ]);
    }
  });
});
