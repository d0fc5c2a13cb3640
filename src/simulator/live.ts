/**
 * The live mode: the simulator behaves like a study that is running. On each tick of its clock it appends
 * events, chat messages and sparse ratings to the active rooms, starts rooms (whose participants join over
 * the next seconds) and ends rooms (their participants complete with a completion code). Everything goes
 * through the store's `append` and the room lifecycle, as `POST /data/events/batch` and agent deployments
 * do, so every listing, filter, count and format sees live records at once. It draws from its own random
 * stream: the seeded data is the same with or without it, and a seed and a clock give the same live data.
 *
 * Timestamps. The live clock starts at `now()` and each tick advances it by `tickMs`. A tick from `from` to
 * `to` gives its on-time records timestamps in (from, to], after everything earlier ticks appended. Records
 * come in groups (one room, one type): a `sharedRate` of the groups are bursts of 2 to 4 records with one
 * timestamp, and a `lateRate` of them arrive late, timestamped in [from - lateMs, from], among or before
 * records that were already listed; half of the late groups reuse the newest timestamp already listed for
 * their room and type. So every record's timestamp is at least `lateMs` before the live clock at the tick
 * before it appeared, and never after its own tick. Rooms start, participants join and rooms end on time,
 * at their planned instants within the tick (never late).
 */
import { EXPERIMENT_IDS } from './keys.ts';
import { endRoom, joinRoom, openRoom, type Joiner } from './lifecycle.ts';
import { completionCode, LIVE_BUILDERS, LIVE_TYPES, livePerson, pickType, type LiveRecordType } from './live-records.ts';
import type { Deployment, JsonObject, Stored } from './model.ts';
import { Random } from './random.ts';
import { ROOMS_MAX_LIMIT } from './spec.ts';
import type { DataStore, RoomInfo } from './store.ts';

export { LIVE_TYPES, type LiveRecordType };

export interface LiveOptions {
  /** Records (events, chat messages, sparse ratings) appended per second of live time, over all active rooms. */
  rate: number;
  /** How far before the previous tick's clock a late record's timestamp may lie, in ms (0: no late records). */
  lateMs: number;
  /** The fraction (0–1) of record groups that arrive late. */
  lateRate: number;
  /** The fraction (0–1) of record groups that are bursts of 2–4 records sharing one timestamp (also for joins). */
  sharedRate: number;
  /** The live time one tick covers, in ms; the timer's period. */
  tickMs: number;
  /** A new room starts every this many ms of live time (0: never). The first starts one period after the live mode. */
  roomEveryMs: number;
  /** How long a room the live mode starts runs; a room already active when found ends this long after (unless planned later). */
  roomDurationMs: number;
  /** The experiments new rooms start in (each needs a human deployment); picked at random when several. */
  experimentIds: readonly string[];
  /** Start paused: nothing happens until `tick()` or `resume()`. */
  paused: boolean;
  /** The clock the live time starts at and the timer follows. */
  now: () => number;
}

export const DEFAULT_LIVE: LiveOptions = {
  rate: 5,
  lateMs: 300,
  lateRate: 0.1,
  sharedRate: 0.2,
  tickMs: 250,
  roomEveryMs: 30_000,
  roomDurationMs: 120_000,
  experimentIds: [EXPERIMENT_IDS.primary],
  paused: false,
  now: Date.now,
};

function inRange(name: keyof LiveOptions, value: number, min: number, max: number, integer: boolean): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new RangeError(`live.${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${String(value)}`);
  }
}

/** The live options with their defaults, checked; throws a RangeError naming a bad one. */
export function resolveLiveOptions(partial: Partial<LiveOptions>): LiveOptions {
  const o: LiveOptions = { ...DEFAULT_LIVE, ...partial };
  inRange('rate', o.rate, 0, 100_000, false);
  inRange('lateMs', o.lateMs, 0, 3_600_000, true);
  inRange('lateRate', o.lateRate, 0, 1, false);
  inRange('sharedRate', o.sharedRate, 0, 1, false);
  inRange('tickMs', o.tickMs, 10, 60_000, true);
  inRange('roomEveryMs', o.roomEveryMs, 0, 86_400_000, true);
  inRange('roomDurationMs', o.roomDurationMs, 1, 86_400_000, true);
  return o;
}

interface RoomChange {
  experimentId: string;
  roomId: string;
  time: number;
}

interface ParticipantChange extends RoomChange {
  participantId: string;
  /** `IN_PROGRESS` when joining; the code a participant completed with. */
  completionCode: string;
}

/** One thing the live mode did, as `tick()` returns and `onChange` listeners receive it. */
export type LiveChange =
  | (RoomChange & {
      kind: 'record';
      type: LiveRecordType;
      /** The record's id (`id`, `messageId` or `ratingId`). */
      id: string;
      participantId: string;
      /** Timestamped at or before the previous tick's clock: it may sort before records already listed. */
      late: boolean;
      /** Shares its timestamp with another record of its group. */
      shared: boolean;
    })
  | (RoomChange & { kind: 'room-started' })
  | (RoomChange & { kind: 'room-ended' })
  | (ParticipantChange & { kind: 'participant-joined' })
  | (ParticipantChange & { kind: 'participant-completed' });

/** Totals of what the live mode appended and changed. */
export interface LiveCounts {
  ticks: number;
  records: Record<LiveRecordType, number>;
  late: number;
  shared: number;
  roomsStarted: number;
  roomsEnded: number;
  participantsJoined: number;
  participantsCompleted: number;
}

export type LiveState = 'running' | 'paused' | 'stopped';

interface RoomPlan {
  endsAt: number;
  /** People still to join, in time order. */
  joins: { at: number; person: Joiner }[];
}

const ID_FIELDS: Record<LiveRecordType, string> = { events: 'id', chat: 'messageId', 'ratings/sparse': 'ratingId' };
/** After a stall (a suspended laptop), at most this many ticks catch up; the rest of the gap is skipped. */
const MAX_CATCH_UP = 40;
const iso = (ms: number): string => new Date(ms).toISOString();

export class LiveMode {
  readonly options: Readonly<LiveOptions>;
  readonly #store: DataStore;
  readonly #rng: Random;
  readonly #participantsPerRoom: number;
  readonly #plans = new Map<string, RoomPlan>();
  readonly #listeners = new Set<(changes: readonly LiveChange[]) => void>();
  #counts: LiveCounts = {
    ticks: 0,
    records: { events: 0, chat: 0, 'ratings/sparse': 0 },
    late: 0,
    shared: 0,
    roomsStarted: 0,
    roomsEnded: 0,
    participantsJoined: 0,
    participantsCompleted: 0,
  };
  #now: number;
  #nextRoomAt: number;
  #carry = 0;
  /** People the live mode has planned to join, numbering their e-mail addresses. */
  #people = 0;
  #state: LiveState = 'paused';
  #timer: NodeJS.Timeout | null = null;

  /** `participantsPerRoom` sizes new rooms of experiments that do not state `requiredParticipants`. */
  constructor(store: DataStore, seed: number, options: Partial<LiveOptions> = {}, participantsPerRoom = 3) {
    this.options = resolveLiveOptions(options);
    for (const id of this.options.experimentIds) {
      if (!store.experiments.has(id)) throw new RangeError(`live.experimentIds: no experiment ${id}`);
    }
    this.#store = store;
    this.#rng = new Random(seed ^ 0x11fe);
    this.#participantsPerRoom = participantsPerRoom;
    this.#now = this.options.now();
    this.#nextRoomAt = this.options.roomEveryMs > 0 ? this.#now + this.options.roomEveryMs : Number.POSITIVE_INFINITY;
    this.#discover(this.#now);
    if (!this.options.paused) this.resume();
  }

  /** The live clock: the end of the last tick (ms since the epoch). */
  get now(): number {
    return this.#now;
  }

  get state(): LiveState {
    return this.#state;
  }

  /** Totals so far (a copy). */
  counts(): LiveCounts {
    return { ...this.#counts, records: { ...this.#counts.records } };
  }

  /** The rooms the live mode appends to and will end, with their planned ends. */
  activeRooms(): { roomId: string; endsAt: number }[] {
    return [...this.#plans].map(([roomId, plan]) => ({ roomId, endsAt: plan.endsAt }));
  }

  /** Runs `n` ticks at once, whether running or paused; listeners hear each, and it returns what they did. */
  tick(n = 1): LiveChange[] {
    this.#alive('tick');
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`tick(n): n must be an integer >= 0, got ${n}`);
    const out: LiveChange[] = [];
    for (let i = 0; i < n; i++) {
      const changes = this.#step();
      this.#publish(changes);
      for (const change of changes) out.push(change);
    }
    return out;
  }

  /** Stops the timer; the live clock stands still until `resume()` (ticks still run on demand). */
  pause(): void {
    this.#alive('pause');
    this.#disarm();
    this.#state = 'paused';
  }

  /**
   * Starts the timer. If the clock has moved on since the live time, the study resumes from the clock:
   * the paused span is skipped, and planned room starts, joins and ends move with it.
   */
  resume(): void {
    this.#alive('resume');
    if (this.#state === 'running') return;
    const clock = this.options.now();
    if (clock > this.#now) this.#shift(clock - this.#now);
    this.#timer = setInterval(() => this.#catchUp(), this.options.tickMs);
    this.#timer.unref();
    this.#state = 'running';
  }

  /** Stops for good (the simulator's `close()` calls it). */
  stop(): void {
    this.#disarm();
    this.#listeners.clear();
    this.#state = 'stopped';
  }

  /** Starts a room now (at the live clock) in an experiment with a human deployment; returns its id. */
  startRoom(experimentId: string = this.options.experimentIds[0] ?? EXPERIMENT_IDS.primary): string {
    this.#alive('startRoom');
    const changes: LiveChange[] = [];
    const roomId = this.#startRoom(experimentId, this.#now, changes);
    if (typeof roomId !== 'string') throw new Error(`live.startRoom: ${roomId.reason}`);
    this.#publish(changes);
    return roomId;
  }

  /** Ends an active room now (at the live clock), as its planned end would. */
  endRoom(roomId: string): void {
    this.#alive('endRoom');
    const status = this.#store.roomRecord(roomId)?.record.status;
    if (status !== 'active')
      throw new Error(`live.endRoom: room ${roomId} is ${status === undefined ? 'unknown' : `not active (${String(status)})`}`);
    const changes: LiveChange[] = [];
    this.#endRoom(roomId, this.#now, changes);
    this.#publish(changes);
  }

  /** Calls `listener` with each tick's (or start/end call's) changes; returns the unsubscribe. */
  onChange(listener: (changes: readonly LiveChange[]) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  #alive(what: string): void {
    if (this.#state === 'stopped') throw new Error(`live.${what}: the live mode is stopped`);
  }

  #disarm(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #catchUp(): void {
    if (this.#state !== 'running') return;
    let steps = Math.floor((this.options.now() - this.#now) / this.options.tickMs);
    if (steps > MAX_CATCH_UP) {
      this.#shift((steps - MAX_CATCH_UP) * this.options.tickMs);
      steps = MAX_CATCH_UP;
    }
    for (let i = 0; i < steps; i++) this.#publish(this.#step());
  }

  /** Moves the live time on by `delta` without a tick: what was planned moves with it. */
  #shift(delta: number): void {
    this.#now += delta;
    this.#nextRoomAt += delta;
    for (const [roomId, plan] of this.#plans) {
      plan.endsAt += delta;
      for (const join of plan.joins) join.at += delta;
      const info = this.#store.rooms.get(roomId);
      if (info) info.endsAt = plan.endsAt;
    }
  }

  #publish(changes: readonly LiveChange[]): void {
    if (changes.length === 0) return;
    for (const listener of [...this.#listeners]) listener(changes);
  }

  /** Plans every active room not yet planned (seeded, or started by an agent deployment); forgets ended ones. */
  #discover(at: number): void {
    const running = (info: RoomInfo): boolean =>
      this.#store.experiments.get(info.experimentId)?.deleted === false && this.#store.roomRecord(info.id)?.record.status === 'active';
    for (const roomId of this.#plans.keys()) {
      const info = this.#store.rooms.get(roomId);
      if (!info || !running(info)) this.#plans.delete(roomId);
    }
    for (const info of this.#store.rooms.values()) {
      if (this.#plans.has(info.id) || !running(info)) continue;
      const endsAt = info.endsAt > at ? info.endsAt : at + this.options.roomDurationMs;
      info.endsAt = endsAt;
      this.#plans.set(info.id, { endsAt, joins: [] });
    }
  }

  #step(): LiveChange[] {
    const { tickMs, roomEveryMs, experimentIds } = this.options;
    const from = this.#now;
    const to = from + tickMs;
    this.#now = to;
    this.#counts.ticks++;
    const changes: LiveChange[] = [];
    this.#discover(from);
    while (this.#nextRoomAt <= to) {
      const at = Math.max(this.#nextRoomAt, from + 1);
      this.#nextRoomAt += roomEveryMs;
      if (experimentIds.length > 0) this.#startRoom(this.#rng.pick(experimentIds), at, changes);
    }
    for (const [roomId, plan] of this.#plans) {
      this.#joinDue(roomId, plan, to, from + 1, changes);
      if (plan.endsAt <= to) this.#endRoom(roomId, Math.max(plan.endsAt, from + 1), changes);
    }
    this.#appendRecords(from, to, changes);
    return changes;
  }

  /** The deployments a new room of the experiment may run in, or why none may start. */
  #deploymentsFor(experimentId: string): Deployment[] | { reason: string } {
    const experiment = this.#store.experiments.get(experimentId);
    if (!experiment || experiment.deleted) return { reason: `no experiment ${experimentId}` };
    if ((this.#store.index('rooms').byExperiment.get(experimentId)?.length ?? 0) >= ROOMS_MAX_LIMIT) {
      return { reason: `experiment ${experimentId} has ${ROOMS_MAX_LIMIT} rooms, the most the API lists` };
    }
    const deployments = [...this.#store.deployments.values()]
      .filter((d) => d.experimentId === experimentId && d.type !== 'agent-only' && (d.status === 'active' || d.status === 'completed'))
      .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
    return deployments.length > 0 ? deployments : { reason: `experiment ${experimentId} has no active or completed human deployment` };
  }

  #startRoom(experimentId: string, at: number, changes: LiveChange[]): string | { reason: string } {
    const store = this.#store;
    const deployments = this.#deploymentsFor(experimentId);
    if (!Array.isArray(deployments)) return deployments;
    const rng = this.#rng;
    const deployment = rng.pick(deployments);
    let n = (store.index('rooms').byExperiment.get(experimentId)?.length ?? 0) + 1;
    while (store.rooms.has(`room_${experimentId.slice(4)}_${String(n).padStart(3, '0')}`)) n++;
    const roomId = `room_${experimentId.slice(4)}_${String(n).padStart(3, '0')}`;
    const endsAt = at + this.options.roomDurationMs;
    openRoom(store, { roomId, experimentId, deployment, at, endsAt });
    deployment.status = 'active';
    deployment.updatedAt = at;
    const states = (store.experiments.get(experimentId)?.record.states as JsonObject[] | undefined) ?? [];
    const stateId = String(states[0]?.id ?? 'state_unknown');
    store.variables.set(roomId, {
      writes: [
        { variable: 'condition', value: rng.pick(['A', 'B']), source: 'seed', persisted: true, stateId, timestamp: iso(at) },
        { variable: 'trialIndex', value: 0, source: 'seed', persisted: true, stateId, timestamp: iso(at) },
      ],
      droppedWrites: [],
    });
    this.#counts.roomsStarted++;
    changes.push({ kind: 'room-started', experimentId, roomId, time: at });
    const required = Number(store.experiments.get(experimentId)?.record.requiredParticipants);
    const size = Number.isInteger(required) && required >= 1 && required <= 100 ? required : this.#participantsPerRoom;
    const plan: RoomPlan = { endsAt, joins: [] };
    let t = at;
    for (let i = 0; i < size; i++) {
      if (i > 0 && !rng.chance(this.options.sharedRate)) t += rng.int(500, 5_000);
      plan.joins.push({ at: t, person: livePerson(rng, ++this.#people, i === 0 ? 'speaker' : 'listener') });
    }
    this.#plans.set(roomId, plan);
    this.#joinDue(roomId, plan, at, at, changes);
    return roomId;
  }

  /** Lets in everyone due by `upTo` (at `floor` at the earliest); nobody joins at or after the room's end. */
  #joinDue(roomId: string, plan: RoomPlan, upTo: number, floor: number, changes: LiveChange[]): void {
    const info = this.#store.rooms.get(roomId);
    if (!info) return;
    for (let next = plan.joins[0]; next !== undefined && next.at <= upTo; next = plan.joins[0]) {
      plan.joins.shift();
      if (next.at >= plan.endsAt) continue;
      const at = Math.max(next.at, floor);
      joinRoom(this.#store, roomId, next.person, at);
      this.#counts.participantsJoined++;
      changes.push({
        kind: 'participant-joined',
        experimentId: info.experimentId,
        roomId,
        participantId: next.person.id,
        time: at,
        completionCode: 'IN_PROGRESS',
      });
    }
  }

  #endRoom(roomId: string, at: number, changes: LiveChange[]): void {
    const store = this.#store;
    const info = store.rooms.get(roomId);
    if (!info) return;
    const completed = endRoom(store, roomId, at, () => completionCode(this.#rng));
    this.#plans.delete(roomId);
    this.#counts.roomsEnded++;
    this.#counts.participantsCompleted += completed.length;
    changes.push({ kind: 'room-ended', experimentId: info.experimentId, roomId, time: at });
    for (const p of completed) {
      changes.push({
        kind: 'participant-completed',
        experimentId: info.experimentId,
        roomId,
        participantId: String(p.participantId),
        time: at,
        completionCode: String(p.record.completionCode),
      });
    }
    // A human deployment is active while one of its rooms is.
    const deployment = store.deployments.get(info.deploymentId);
    if (!deployment || deployment.type === 'agent-only') return;
    const stillActive = (store.index('rooms').byExperiment.get(info.experimentId) ?? []).some(
      (s) => s.deploymentId === deployment.id && s.record.status === 'active',
    );
    if (!stillActive && deployment.status === 'active') deployment.status = 'completed';
    deployment.updatedAt = at;
  }

  /** The newest timestamp of a room's records of a type that were listed before this tick. */
  #newestListed(type: LiveRecordType, roomId: string, appended: ReadonlySet<Stored>): number | null {
    const list = this.#store.index(type).byRoom.get(roomId) ?? [];
    for (let i = list.length - 1; i >= 0; i--) {
      const item = list[i];
      if (item !== undefined && !appended.has(item)) return item.time;
    }
    return null;
  }

  #appendRecords(from: number, to: number, changes: LiveChange[]): void {
    const { rate, tickMs, lateMs, lateRate, sharedRate } = this.options;
    const store = this.#store;
    const rng = this.#rng;
    this.#carry += (rate * tickMs) / 1000;
    let due = Math.floor(this.#carry + 1e-9);
    this.#carry = Math.max(0, this.#carry - due);
    const rooms: { info: RoomInfo; people: Stored[]; active: Stored[] }[] = [];
    for (const roomId of this.#plans.keys()) {
      const info = store.rooms.get(roomId);
      const people = store.index('participants').byRoom.get(roomId) ?? [];
      const active = people.filter((p) => p.record.status === 'active');
      if (info && active.length > 0) rooms.push({ info, people, active });
    }
    if (rooms.length === 0) return;
    const appended = new Set<Stored>();
    while (due > 0) {
      const room = rng.pick(rooms);
      const type = pickType(rng);
      const size = due > 1 && rng.chance(sharedRate) ? Math.min(due, rng.int(2, 4)) : 1;
      let time = rng.int(from + 1, to);
      if (lateMs > 0 && rng.chance(lateRate)) {
        const newest = this.#newestListed(type, room.info.id, appended);
        const twin = rng.chance(0.5);
        time = twin && newest !== null && newest >= from - lateMs && newest <= from ? newest : rng.int(from - lateMs, from);
      }
      const group: Stored[] = [];
      for (let i = 0; i < size; i++) {
        const participant = rng.pick(room.active);
        const t = Math.max(time, participant.time);
        const record = LIVE_BUILDERS[type]({ rng, store, room: room.info, participant, people: room.people, time: t });
        const stored = store.append(type, {
          experimentId: room.info.experimentId,
          roomId: room.info.id,
          participantId: participant.participantId,
          deploymentId: room.info.deploymentId,
          time: t,
          record,
        });
        appended.add(stored);
        group.push(stored);
      }
      for (const s of group) {
        const late = s.time <= from;
        const shared = group.some((other) => other !== s && other.time === s.time);
        this.#counts.records[type]++;
        if (late) this.#counts.late++;
        if (shared) this.#counts.shared++;
        changes.push({
          kind: 'record',
          type,
          id: String(s.record[ID_FIELDS[type]]),
          experimentId: s.experimentId,
          roomId: s.roomId,
          participantId: String(s.participantId),
          time: s.time,
          late,
          shared,
        });
      }
      due -= size;
    }
  }
}
