import type { AgentRun, Deployment, Experiment, Persona, RoomVariables, Share, Stored, StoredType, User } from './model.ts';

const byTimeThenSeq = (a: Stored, b: Stored): number => a.time - b.time || a.seq - b.seq;

/** Inserts into a list kept in (time, seq) order. */
function insertSorted(list: Stored[], item: Stored): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const probe = list[mid];
    if (probe !== undefined && byTimeThenSeq(probe, item) < 0) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, item);
}

function push(map: Map<string, Stored[]>, key: string, item: Stored): void {
  const list = map.get(key);
  if (list) insertSorted(list, item);
  else map.set(key, [item]);
}

export const participantKey = (roomId: string, participantId: string): string => `${roomId}\u0000${participantId}`;

/**
 * One data type's records, indexed by experiment, room and participant so that a scoped query reads
 * only its own records. Every list is kept in (time, seq) order, the default sort.
 */
export class TypeIndex {
  readonly byExperiment = new Map<string, Stored[]>();
  readonly byRoom = new Map<string, Stored[]>();
  readonly byParticipant = new Map<string, Stored[]>();

  /** The three lists a record belongs to: its experiment's, its room's and (when it has one) its participant's. */
  #lists(item: Stored): [Map<string, Stored[]>, string][] {
    const lists: [Map<string, Stored[]>, string][] = [
      [this.byExperiment, item.experimentId],
      [this.byRoom, item.roomId],
    ];
    if (item.participantId !== null) lists.push([this.byParticipant, participantKey(item.roomId, item.participantId)]);
    return lists;
  }

  insert(item: Stored): void {
    for (const [map, key] of this.#lists(item)) push(map, key, item);
  }

  /** Bulk load: append unsorted, then sort each list once. */
  load(items: Stored[]): void {
    for (const item of items) {
      for (const [map, key] of this.#lists(item)) {
        const list = map.get(key);
        if (list) list.push(item);
        else map.set(key, [item]);
      }
    }
    for (const map of [this.byExperiment, this.byRoom, this.byParticipant]) {
      for (const list of map.values()) list.sort(byTimeThenSeq);
    }
  }
}

export interface RoomInfo {
  id: string;
  experimentId: string;
  deploymentId: string;
  startedAt: number;
  /** When the session ends (or ended); an active room's planned end. */
  endsAt: number;
}

export interface ParticipantInfo {
  id: string;
  roomId: string;
  experimentId: string;
}

/** Everything the simulator serves, with the indexes its queries use. */
export class DataStore {
  readonly experiments = new Map<string, Experiment>();
  readonly rooms = new Map<string, RoomInfo>();
  /** Keyed by `participantKey(roomId, participantId)`. */
  readonly participants = new Map<string, ParticipantInfo>();
  readonly types = new Map<StoredType, TypeIndex>();
  readonly users = new Map<string, User>();
  readonly deployments = new Map<string, Deployment>();
  readonly personas = new Map<string, Persona>();
  readonly shares: Share[] = [];
  /** Agent runs by room id. */
  readonly agentRuns = new Map<string, AgentRun[]>();
  /** Variable write logs by room id. */
  readonly variables = new Map<string, RoomVariables>();
  #seq = 0;

  nextSeq(): number {
    return this.#seq++;
  }

  /**
   * Appends one record to a type's indexes, in (time, seq) order: the one way records are added after the
   * seeded data set is loaded (`POST /data/events/batch`, agent deployments, the live mode).
   */
  append(type: StoredType, item: Omit<Stored, 'seq'>): Stored {
    const stored: Stored = { ...item, seq: this.nextSeq() };
    this.index(type).insert(stored);
    return stored;
  }

  index(type: StoredType): TypeIndex {
    let index = this.types.get(type);
    if (!index) {
      index = new TypeIndex();
      this.types.set(type, index);
    }
    return index;
  }

  /** The number of live (not deleted) rooms and participants of an experiment. */
  countsOf(experimentId: string): { roomCount: number; participantCount: number } {
    return {
      roomCount: this.index('rooms').byExperiment.get(experimentId)?.length ?? 0,
      participantCount: this.index('participants').byExperiment.get(experimentId)?.length ?? 0,
    };
  }

  /** The earliest room start of an experiment (its first state's start), as `processing.firstStateStartedAt`. */
  firstStateStartedAt(experimentId: string): number | null {
    let first: number | null = null;
    for (const room of this.index('rooms').byExperiment.get(experimentId) ?? []) {
      const info = this.rooms.get(room.roomId);
      if (info && (first === null || info.startedAt < first)) first = info.startedAt;
    }
    return first;
  }

  /** The stored room record (the rooms listing row) of a room. */
  roomRecord(roomId: string): Stored | undefined {
    return this.index('rooms').byRoom.get(roomId)?.[0];
  }
}
