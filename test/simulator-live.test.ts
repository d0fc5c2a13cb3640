import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { describeSimulator, parseSimulatorArgs } from '../src/simulator/cli.ts';
import { DEFAULT_LIVE, LIVE_TYPES, type LiveChange, type LiveMode, type LiveOptions, type LiveRecordType } from '../src/simulator/live.ts';
import { startSimulator, type Simulator, type SimulatorOptions } from '../src/simulator/server.ts';
import { SIMULATOR_DATA_TYPES } from '../src/simulator/spec.ts';
import { call } from './helpers/http.ts';
import { FULL, NO_RATE_LIMIT } from './helpers/simulator.ts';

const EXP = 'exp_movie01';
/** The seeded room of exp_movie01 that is active (its third participant is in progress). */
const ACTIVE = 'room_movie01_002';
const T0 = Date.UTC(2026, 0, 1, 12);
const iso = (ms: number): string => new Date(ms).toISOString();

type Row = Record<string, unknown>;
interface Envelope {
  data: Row[];
  metadata: { pagination: { total: number; returned: number; hasMore: boolean }; [field: string]: unknown };
}
type RecordChange = Extract<LiveChange, { kind: 'record' }>;

const ID_FIELD: Record<LiveRecordType, string> = { events: 'id', chat: 'messageId', 'ratings/sparse': 'ratingId' };

const sims: Simulator[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(sims.splice(0).map((s) => s.close()));
});

/** A simulator in live mode, paused at T0 unless `live` says otherwise: only `tick()` moves it. */
async function start(live: Partial<LiveOptions> = {}, extra: Partial<SimulatorOptions> = {}) {
  const sim = await startSimulator({
    rateLimit: NO_RATE_LIMIT,
    live: { paused: true, now: () => T0, ...live },
    ...extra,
  });
  sims.push(sim);
  const control: LiveMode | null = sim.live;
  if (!control) throw new Error('live mode is off');
  const get = (path: string) => call<Envelope>(`${sim.url}${path}`, { key: FULL });
  return { sim, live: control, get };
}

const records = (changes: readonly LiveChange[], filter: Partial<RecordChange> = {}): RecordChange[] =>
  changes.filter(
    (c): c is RecordChange =>
      c.kind === 'record' && Object.entries(filter).every(([k, v]) => (c as unknown as Record<string, unknown>)[k] === v),
  );

/** The ids of a listing, every page of `limit` fetched by offset until hasMore is false. */
async function allIds(get: (path: string) => Promise<{ body: Envelope }>, path: string, type: LiveRecordType, limit = 1000) {
  const ids: string[] = [];
  for (let offset = 0; ; offset += limit) {
    const page = (await get(`${path}${path.includes('?') ? '&' : '?'}limit=${limit}&offset=${offset}`)).body;
    ids.push(...page.data.map((r) => String(r[ID_FIELD[type]])));
    if (!page.metadata.pagination.hasMore) return ids;
  }
}

/** Listed rows then live records, stably sorted by time: the (time, seq) order the listings promise. */
function expectedOrder(listed: Row[], type: LiveRecordType, added: readonly { id: string; time: number }[]): string[] {
  const rows = [
    ...listed.map((r) => ({ id: String(r[ID_FIELD[type]]), time: Date.parse(String(r.timestamp)) })),
    ...added.map((c) => ({ id: c.id, time: c.time })),
  ];
  return rows.sort((a, b) => a.time - b.time).map((r) => r.id);
}

describe('live records', () => {
  it('appends exactly `rate` records a second to the active rooms, listed in order at every scope', async () => {
    const { live, get } = await start({ rate: 20, roomEveryMs: 0, lateRate: 0, sharedRate: 0 });
    expect(live.activeRooms()).toEqual([
      { roomId: ACTIVE, endsAt: T0 + 120_000 },
      { roomId: 'room_joint02_001', endsAt: T0 + 120_000 },
    ]);
    const before = (await get(`/data/events/room/${ACTIVE}`)).body.data;
    expect(before).toHaveLength(90);
    const changes = live.tick(20); // 5 s at 20 records/s
    expect(live.now).toBe(T0 + 5_000);
    expect(live.counts()).toEqual({
      ticks: 20,
      records: { events: 56, chat: 22, 'ratings/sparse': 22 },
      late: 0,
      shared: 0,
      roomsStarted: 0,
      roomsEnded: 0,
      participantsJoined: 0,
      participantsCompleted: 0,
    });
    expect(changes.filter((c) => c.kind !== 'record')).toEqual([]);
    for (const c of records(changes)) {
      expect(c.time).toBeGreaterThan(T0);
      expect(c.time).toBeLessThanOrEqual(T0 + 5_000);
    }

    const roomEvents = records(changes, { type: 'events', roomId: ACTIVE });
    expect(roomEvents).toHaveLength(36);
    const after = await get(`/data/events/room/${ACTIVE}`);
    expect(after.body.metadata.pagination.total).toBe(126);
    expect(after.body.data.map((r) => r.id)).toEqual(expectedOrder(before, 'events', roomEvents));
    const last = after.body.data.at(-1);
    expect(last).toMatchObject({ experimentId: EXP, roomId: ACTIVE, timestamp: iso(roomEvents.at(-1)?.time ?? 0) });

    // The same records at experiment and participant scope, and in the participant's counts.
    const participant = String(roomEvents[0]?.participantId);
    const atExperiment = await get(`/data/events/experiment/${EXP}?startTime=${iso(T0)}`);
    const inTimeOrder = expectedOrder([], 'events', roomEvents);
    expect(atExperiment.body.data.map((r) => r.id)).toEqual(inTimeOrder);
    const atParticipant = await get(`/data/events/participant/${participant}?roomId=${ACTIVE}&startTime=${iso(T0)}`);
    expect(atParticipant.body.data.map((r) => r.id)).toEqual(inTimeOrder);
    const counts = await get(`/data/counts/participant/${participant}?roomId=${ACTIVE}`);
    expect(counts.body.data[0]?.counts).toMatchObject({
      events: 30 + 36,
      textchat: 4 + records(changes, { type: 'chat', roomId: ACTIVE }).length,
      sparse_ratings: 3 + records(changes, { type: 'ratings/sparse', roomId: ACTIVE }).length,
    });
    for (const type of LIVE_TYPES) {
      const res = await get(`/data/${type}/experiment/${EXP}?startTime=${iso(T0)}`);
      expect(res.body.data.map((r) => r[ID_FIELD[type]])).toEqual(expectedOrder([], type, records(changes, { type, experimentId: EXP })));
    }
  });

  it('writes records in the seeded shapes, every field one the spec lists', async () => {
    const { sim, live, get } = await start({ rate: 40, roomEveryMs: 1_000 });
    live.tick(40);
    for (const type of LIVE_TYPES) {
      const rows = (await get(`/data/${type}/experiment/${EXP}?startTime=${iso(T0)}`)).body.data;
      expect(rows.length, type).toBeGreaterThan(10);
      for (const row of rows) {
        for (const field of Object.keys(row)) expect(SIMULATOR_DATA_TYPES[type].recordFields, `${type}.${field}`).toContain(field);
        const startedAt = sim.store.rooms.get(String(row.roomId))?.startedAt ?? Number.NaN;
        expect(row.onset).toBe(Date.parse(String(row.timestamp)) - startedAt);
      }
    }
  });

  it('reaches every filter, sort and format as batch-written events do', async () => {
    const { sim, live, get } = await start({ rate: 20, roomEveryMs: 0, lateRate: 0, sharedRate: 0 });
    const changes = live.tick(8);
    const participant = String(records(changes, { roomId: ACTIVE })[0]?.participantId);
    // A batch event between the live ones is placed among them by its timestamp.
    const posted = await call<{ data: { eventIds: string[] }[] }>(`${sim.url}/data/events/batch`, {
      key: FULL,
      body: {
        events: [{ experimentId: EXP, roomId: ACTIVE, participantId: participant, eventType: 'custom.mark', timestamp: iso(T0 + 1_000) }],
      },
    });
    expect(posted.status).toBe(201);
    const added = records(changes, { type: 'events', roomId: ACTIVE });
    const postedId = String(posted.body.data[0]?.eventIds[0]);
    const expected = expectedOrder([], 'events', [...added, { id: postedId, time: T0 + 1_000 }]);
    const path = `/data/events/room/${ACTIVE}?startTime=${iso(T0)}`;
    expect((await get(path)).body.data.map((r) => r.id)).toEqual(expected);
    expect((await get(`${path}&order=desc`)).body.data.map((r) => r.id)).toEqual([...expected].reverse());

    const ndjson = await call(`${sim.url}${path}&format=ndjson`, { key: FULL });
    expect(
      ndjson.text
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as Row).id),
    ).toEqual(expected);
    expect(ndjson.headers.get('x-total-count')).toBe(String(expected.length));
    const csv = await call(`${sim.url}${path}&format=csv`, { key: FULL });
    expect(csv.text.trim().split('\n')).toHaveLength(expected.length + 1);

    const category = String((await get(path)).body.data[0]?.category);
    const byCategory = await get(`${path}&category=${category}`);
    expect(byCategory.body.data.every((r) => r.category === category)).toBe(true);
    expect(byCategory.body.metadata.pagination.total).toBe((await get(path)).body.data.filter((r) => r.category === category).length);
    const deployment = sim.store.rooms.get(ACTIVE)?.deploymentId;
    const byDeployment = await get(`/data/events/experiment/${EXP}?startTime=${iso(T0)}&deploymentId=${deployment}`);
    expect(byDeployment.body.data.map((r) => r.id)).toEqual(expected);
  });
});

describe('shared timestamps and late records', () => {
  const OPTIONS: Partial<LiveOptions> = { rate: 40, roomEveryMs: 0, lateRate: 0.3, sharedRate: 0.5, lateMs: 300 };

  it('keep every listing in (time, seq) order, by offset pages of any size', async () => {
    const { live, get } = await start(OPTIONS);
    const before = (await get(`/data/events/room/room_joint02_001`)).body.data;
    const changes = live.tick(20);
    expect(live.counts()).toMatchObject({ records: { events: 134, chat: 42, 'ratings/sparse': 24 }, late: 72, shared: 128 });
    const added = records(changes, { type: 'events', roomId: 'room_joint02_001' });
    expect(added).toHaveLength(87);
    const expected = expectedOrder(before, 'events', added);
    for (const limit of [1000, 7, 1]) expect(await allIds(get, `/data/events/room/room_joint02_001`, 'events', limit)).toEqual(expected);
  });

  it('give each shared timestamp its whole group in a startTime/endTime window', async () => {
    const { live, get } = await start(OPTIONS);
    const changes = records(live.tick(20), { roomId: ACTIVE, type: 'events' });
    const shared = changes.filter((c) => c.shared);
    expect(shared.length).toBe(30);
    const instants = [...new Set(shared.map((c) => c.time))];
    for (const t of instants) {
      const window = await get(`/data/events/room/${ACTIVE}?startTime=${iso(t)}&endTime=${iso(t)}`);
      expect(window.body.data.map((r) => r.id)).toEqual(changes.filter((c) => c.time === t).map((c) => c.id));
    }
  });

  it('arrive within lateMs of the clock before their tick: a poller overlapping by lateMs misses none, a naive one does', async () => {
    const { live, get } = await start(OPTIONS);
    const path = `/data/events/room/${ACTIVE}`;
    const listed = (await get(path)).body.data;
    const seen = new Set(listed.map((r) => String(r.id)));
    const seenTimes = new Set(listed.map((r) => Date.parse(String(r.timestamp))));
    let newest = Math.max(...seenTimes);
    let missedByNaive = 0;
    let twins = 0;
    for (let i = 0; i < 20; i++) {
      const clockBefore = live.now;
      const tickRecords = records(live.tick(1));
      for (const c of tickRecords) {
        expect(c.time).toBeGreaterThanOrEqual(clockBefore - 300);
        expect(c.time).toBeLessThanOrEqual(live.now);
        expect(c.late).toBe(c.time <= clockBefore);
      }
      const added = tickRecords.filter((c) => c.roomId === ACTIVE && c.type === 'events');
      // Late records sharing the timestamp of a record listed before their tick: the hardest case.
      twins += added.filter((c) => c.late && seenTimes.has(c.time)).length;
      const overlapping = (await get(`${path}?startTime=${iso(newest - 300)}`)).body.data;
      const fresh = overlapping.filter((r) => !seen.has(String(r.id)));
      expect(fresh.map((r) => r.id).sort()).toEqual(added.map((c) => c.id).sort());
      const naive = (await get(`${path}?startTime=${iso(newest + 1)}`)).body.data.map((r) => String(r.id));
      missedByNaive += added.filter((c) => !naive.includes(c.id)).length;
      for (const r of fresh) {
        seen.add(String(r.id));
        seenTimes.add(Date.parse(String(r.timestamp)));
        newest = Math.max(newest, Date.parse(String(r.timestamp)));
      }
    }
    expect(missedByNaive).toBe(6);
    expect(twins).toBe(2);
  });

  it('are off when asked: lateMs 0 and sharedRate 0 give one timestamp per record, each after the last', async () => {
    const { live } = await start({ rate: 40, roomEveryMs: 0, lateMs: 0, sharedRate: 0 });
    const changes = records(live.tick(20));
    expect(changes).toHaveLength(200);
    expect(changes.filter((c) => c.late || c.shared)).toEqual([]);
    expect(live.counts()).toMatchObject({ late: 0, shared: 0 });
  });
});

describe('rooms over time', () => {
  it('starts rooms whose participants join, and ends rooms whose participants complete, in every listing', async () => {
    const { sim, live, get } = await start({ rate: 0, roomEveryMs: 10_000, roomDurationMs: 30_000 });
    const roomsPath = `/data/rooms/experiment/${EXP}`;
    expect((await get(roomsPath)).body.metadata.pagination.total).toBe(4);

    const first = live.tick(40); // to T0 + 10 s: the first room starts, its first participant joins
    expect(first.map((c) => c.kind)).toEqual(['room-started', 'participant-joined']);
    expect(first[0]).toEqual({ kind: 'room-started', experimentId: EXP, roomId: 'room_movie01_005', time: T0 + 10_000 });
    const rooms = await get(roomsPath);
    expect(rooms.body.data.at(-1)).toEqual({
      id: 'room_movie01_005',
      experimentId: EXP,
      deploymentId: 'dep_movie01_a',
      deploymentName: 'Lab pilot',
      status: 'active',
      participantCount: 1,
      createdAt: iso(T0 + 10_000),
      startedAt: iso(T0 + 10_000),
      endedAt: null,
    });

    const joining = live.tick(40); // to T0 + 20 s: the second room starts, the rest of the first room joins
    const joined = joining.filter((c) => c.kind === 'participant-joined' && c.roomId === 'room_movie01_005');
    expect(joined).toHaveLength(2);
    const people = (await get(`/data/participants/room/room_movie01_005`)).body.data;
    expect(people.map((p) => [p.role, p.status, p.completionCode, p.completedAt])).toEqual([
      ['speaker', 'active', 'IN_PROGRESS', null],
      ['listener', 'active', 'IN_PROGRESS', null],
      ['listener', 'active', 'IN_PROGRESS', null],
    ]);
    expect(people.slice(1).map((p) => p.joinedAt)).toEqual(joined.map((c) => iso(c.time)));
    expect((await get(roomsPath)).body.data.at(-2)?.participantCount).toBe(3);
    const newcomers = (await get(`/data/participants/experiment/${EXP}?startTime=${iso(T0)}`)).body.data;
    expect(newcomers.map((p) => p.email)).toEqual([...new Set(newcomers.map((p) => p.email))]);
    expect(newcomers).toHaveLength(4);
    const experiment = await call<{ data: Row[] }>(`${sim.url}/experiments/${EXP}`, { key: FULL });
    expect(experiment.body.data[0]).toMatchObject({ roomCount: 6, participantCount: 12 + 3 + 1 });
    const inProgress = await get(`/data/participants/experiment/${EXP}?completionCode=IN_PROGRESS`);
    expect(inProgress.body.data.map((p) => p.roomId)).toEqual([
      ACTIVE,
      'room_movie01_005',
      'room_movie01_005',
      'room_movie01_005',
      'room_movie01_006',
    ]);

    const ending = live.tick(40); // to T0 + 30 s: the seeded active rooms end (found at T0, they run 30 s)
    const ended = ending.filter((c) => c.kind === 'room-ended');
    expect(ended).toEqual([
      { kind: 'room-ended', experimentId: EXP, roomId: ACTIVE, time: T0 + 30_000 },
      { kind: 'room-ended', experimentId: 'exp_joint02', roomId: 'room_joint02_001', time: T0 + 30_000 },
    ]);
    const room2 = (await get(`/data/rooms/room/${ACTIVE}`)).body.data[0];
    expect(room2).toMatchObject({ status: 'completed', endedAt: iso(T0 + 30_000) });
    const completed = ending.filter(
      (c): c is Extract<LiveChange, { kind: 'participant-completed' }> => c.kind === 'participant-completed' && c.roomId === ACTIVE,
    );
    expect(completed).toHaveLength(1);
    const done = (await get(`/data/participants/room/${ACTIVE}`)).body.data.find((p) => p.id === completed[0]?.participantId);
    expect(done).toMatchObject({ status: 'completed', completionCode: 'SUCCESS', completedAt: iso(T0 + 30_000) });
    expect(completed[0]).toMatchObject({ completionCode: 'SUCCESS', time: T0 + 30_000 });

    live.tick(40); // to T0 + 40 s: the first live room ends after its 30 s
    const room5 = (await get(`/data/rooms/room/room_movie01_005`)).body.data[0];
    expect(room5).toMatchObject({ status: 'completed', endedAt: iso(T0 + 40_000), participantCount: 3 });
    const codes = (await get(`/data/participants/room/room_movie01_005`)).body.data.map((p) => [p.status, p.completionCode, p.completedAt]);
    expect(codes).toEqual([
      ['completed', 'SUCCESS', iso(T0 + 40_000)],
      ['completed', 'SUCCESS', iso(T0 + 40_000)],
      ['completed', 'SUCCESS', iso(T0 + 40_000)],
    ]);
    const byEnd = (await get(`${roomsPath}?sort=endedAt`)).body.data.map((r) => [r.id, r.endedAt]);
    expect(byEnd.slice(-5)).toEqual([
      [ACTIVE, iso(T0 + 30_000)],
      ['room_movie01_005', iso(T0 + 40_000)],
      ['room_movie01_006', null],
      ['room_movie01_007', null],
      ['room_movie01_008', null],
    ]);
    expect(live.counts()).toMatchObject({ roomsStarted: 4, roomsEnded: 3, participantsCompleted: 5 });
    const sessions = await call<{ data: Row[] }>(`${sim.url}/deployments/dep_movie01_a/sessions`, { key: FULL });
    expect(sessions.body.data.map((s) => [s.id, s.status])).toContainEqual(['room_movie01_005', 'completed']);
  });

  it('starts and ends rooms on demand, at the live clock', async () => {
    const { live, get } = await start({ rate: 0, roomEveryMs: 0 });
    live.tick(4);
    const roomId = live.startRoom();
    expect(roomId).toBe('room_movie01_005');
    expect((await get(`/data/rooms/room/${roomId}`)).body.data[0]).toMatchObject({ status: 'active', createdAt: iso(T0 + 1_000) });
    live.endRoom(roomId);
    expect((await get(`/data/rooms/room/${roomId}`)).body.data[0]).toMatchObject({ status: 'completed', endedAt: iso(T0 + 1_000) });
    expect(() => live.endRoom(roomId)).toThrow('live.endRoom: room room_movie01_005 is not active (completed)');
    expect(() => live.startRoom('exp_nope')).toThrow('live.startRoom: no experiment exp_nope');
  });

  it('appends to agent rooms a deployment starts, plans their end 20 minutes on, and leaves rooms the API stopped', async () => {
    const { sim, live } = await start({ rate: 40, roomEveryMs: 0 });
    const more = await call(`${sim.url}/deployments/dep_joint02_agents/run-more`, { key: FULL, body: { rooms: 1, budgetUsd: 1 } });
    expect(more.status).toBe(202);
    // The seeded agent deployment has one failed spawn, so its first room is the second.
    const agentRoom = 'room_joint02_agents_002';
    const before = records(live.tick(4));
    expect(live.activeRooms().map((r) => r.roomId)).toEqual([ACTIVE, 'room_joint02_001', agentRoom]);
    expect(before.filter((c) => c.roomId === agentRoom).length).toBe(11);
    // Agent rooms are planned to run 20 minutes from their spawn (the API's clock).
    const spawned = sim.store.rooms.get(agentRoom)?.startedAt ?? Number.NaN;
    expect(live.activeRooms()[2]?.endsAt).toBe(spawned + 20 * 60_000);
    const stop = await call(`${sim.url}/deployments/dep_joint02_agents/rooms/${agentRoom}/stop`, { key: FULL, method: 'POST' });
    expect(stop.status).toBe(200);
    const after = records(live.tick(20));
    expect(after.filter((c) => c.roomId === agentRoom)).toEqual([]);
    expect(live.activeRooms().map((r) => r.roomId)).toEqual([ACTIVE, 'room_joint02_001']);
  });
});

describe('determinism', () => {
  it('gives the same live data for a seed and a clock, other data for another seed, and leaves the seeded data alone', async () => {
    const a = await start({ rate: 30, roomEveryMs: 2_000, roomDurationMs: 6_000 });
    const b = await start({ rate: 30, roomEveryMs: 2_000, roomDurationMs: 6_000 });
    const c = await start({ rate: 30, roomEveryMs: 2_000, roomDurationMs: 6_000 }, { seed: 7 });
    const plain = await startSimulator({ rateLimit: NO_RATE_LIMIT });
    sims.push(plain);
    const seeded = (await call<Envelope>(`${plain.url}/data/events/experiment/${EXP}`, { key: FULL })).body.data;
    expect((await a.get(`/data/events/experiment/${EXP}`)).body.data).toEqual(seeded);

    const changesA = a.live.tick(60);
    expect(b.live.tick(60)).toEqual(changesA);
    const ids = (changes: LiveChange[]) => records(changes).map((r) => r.id);
    expect(ids(c.live.tick(60))).not.toEqual(ids(changesA));
    for (const path of [`/data/events/experiment/${EXP}`, `/data/participants/experiment/${EXP}`, `/data/rooms/experiment/${EXP}`]) {
      const [left, right] = await Promise.all([a.get(path), b.get(path)]);
      expect(left.body.data, path).toEqual(right.body.data);
    }
    expect((await a.get(`/data/events/experiment/${EXP}?endTime=${iso(T0)}`)).body.data).toEqual(seeded);
  });
});

describe('control', () => {
  it('ticks from its timer at the clock, pauses, resumes from the clock, tells listeners, and close() clears everything', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    let clock = T0;
    const { sim, live } = await start({ paused: false, now: () => clock, rate: 8, roomEveryMs: 0 });
    const heard: LiveChange[][] = [];
    const unsubscribe = live.onChange((changes) => heard.push([...changes]));
    expect(live.state).toBe('running');

    clock += 1_000;
    vi.advanceTimersByTime(250); // one timer call catches up the four ticks the clock moved
    expect(live.counts()).toMatchObject({ ticks: 4, records: { events: 5, chat: 1, 'ratings/sparse': 2 } });
    expect(live.now).toBe(T0 + 1_000);
    expect(heard.flat()).toHaveLength(8);

    live.pause();
    clock += 1_000;
    vi.advanceTimersByTime(1_000);
    expect(live.counts().ticks).toBe(4);
    live.resume(); // the paused second is skipped
    expect(live.now).toBe(T0 + 2_000);
    clock += 500;
    vi.advanceTimersByTime(250);
    expect(live.counts().ticks).toBe(6);
    expect(records(heard.flat()).every((c) => c.time <= T0 + 1_000 || c.time > T0 + 2_000 - 300)).toBe(true);

    live.tick(1); // manual ticks are heard too
    expect(heard).toHaveLength(7);
    unsubscribe();
    live.tick(1);
    expect(heard).toHaveLength(7);
    await sim.close();
    sims.splice(sims.indexOf(sim), 1);
    expect(live.state).toBe('stopped');
    expect(vi.getTimerCount()).toBe(0);
    expect(() => live.tick()).toThrow('live.tick: the live mode is stopped');
    clock += 10_000;
    vi.advanceTimersByTime(10_000);
    expect(live.counts().ticks).toBe(8);
  });

  it('never keeps a process alive', () => {
    const script = [
      "import { generate, DEFAULT_GENERATE } from './src/simulator/generate.ts';",
      "import { LiveMode } from './src/simulator/live.ts';",
      'const live = new LiveMode(generate(DEFAULT_GENERATE), 42, { tickMs: 10 });',
      'console.log(live.state);',
    ].join('\n');
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url),
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(child.stderr).toBe('');
    expect(child.stdout).toBe('running\n');
    expect(child.status).toBe(0);
  });

  it('is not a request: nothing in /_admin/stats, nothing new in API metadata', async () => {
    const { sim, live, get } = await start({ rate: 40, roomEveryMs: 1_000 });
    const quiet = (await get(`/data/events/room/${ACTIVE}`)).body.metadata;
    live.tick(40);
    const busy = (await get(`/data/events/room/${ACTIVE}`)).body.metadata;
    expect(Object.keys(busy)).toEqual(Object.keys(quiet));
    const stats = await call<{ total: number; byPath: Record<string, number> }>(`${sim.origin}/_admin/stats`);
    expect(stats.body.total).toBe(2);
    expect(stats.body.byPath).toEqual({ [`/api/v3/data/events/room/${ACTIVE}`]: 2 });
  });

  it('refuses bad options by name', async () => {
    await expect(startSimulator({ live: { rate: -1 } })).rejects.toThrow('live.rate must be a number from 0 to 100000, got -1');
    await expect(startSimulator({ live: { tickMs: 2.5 } })).rejects.toThrow('live.tickMs must be an integer from 10 to 60000, got 2.5');
    await expect(startSimulator({ live: { experimentIds: ['exp_nope'] } })).rejects.toThrow('live.experimentIds: no experiment exp_nope');
  });
});

describe('command line', () => {
  it('turns live mode on with --live, with defaults and flags', () => {
    expect(parseSimulatorArgs([]).live).toBeNull();
    expect(parseSimulatorArgs(['--live']).live).toEqual({ rate: 5, lateMs: 300, roomEveryMs: 30_000, roomDurationMs: 120_000 });
    expect(
      parseSimulatorArgs(['--live', '--live-rate', '10', '--live-late-ms', '0', '--live-room-every-ms', '0', '--live-room-ms', '5000'])
        .live,
    ).toEqual({ rate: 10, lateMs: 0, roomEveryMs: 0, roomDurationMs: 5_000 });
    expect(parseSimulatorArgs(['--live', '--live-rate', '0.5']).live?.rate).toBe(0.5);
    expect(DEFAULT_LIVE).toMatchObject({ rate: 5, lateMs: 300, tickMs: 250, experimentIds: [EXP] });
  });

  it.each([
    [['--live-rate', '10'], '--live-rate needs --live'],
    [['--live-late-ms', '10'], '--live-late-ms needs --live'],
    [['--live', '--live-rate', 'fast'], "--live-rate must be a number from 0 to 10000, got 'fast'"],
    [['--live', '--live-rate', '20000'], "--live-rate must be a number from 0 to 10000, got '20000'"],
    [['--live', '--live-late-ms', '1.5'], "--live-late-ms must be an integer from 0 to 60000, got '1.5'"],
    [['--live', '--live-room-ms', '10'], "--live-room-ms must be an integer from 1000 to 86400000, got '10'"],
    [['--live=yes'], "Option '--live' does not take an argument"],
  ])('rejects %j', (argv, message) => {
    expect(() => parseSimulatorArgs(argv)).toThrow(message);
  });

  it('says in the banner whether live mode is on', () => {
    expect(describeSimulator('http://x/api/v3', parseSimulatorArgs([]))).toContain('  live: off (--live appends');
    expect(describeSimulator('http://x/api/v3', parseSimulatorArgs(['--live', '--live-rate', '10']))).toContain(
      '  live: ON: 10 records/s (events, chat, sparse ratings) in active rooms, some sharing a timestamp, some up to 300 ms late;\n' +
        '        a new room every 30 s in exp_movie01, each running 120 s',
    );
  });
});
