/**
 * Rooms that open, participants who join and rooms that end after the seeded data set is loaded. Agent
 * deployments (create, run-more, stop) and the live mode both go through these, so the rooms and
 * participants listings, counts and agent runs stay consistent whoever changed them.
 */
import type { Deployment, Stored } from './model.ts';
import { participantKey, type DataStore } from './store.ts';

const iso = (ms: number): string => new Date(ms).toISOString();

/** A participant's status for a completion code, as the seeded data maps them. */
export function statusOfCode(code: string): 'active' | 'completed' | 'dropped' {
  if (code === 'IN_PROGRESS') return 'active';
  return code === 'SUCCESS' || code === 'COMPLETED_NO_CODE' ? 'completed' : 'dropped';
}

export interface NewRoom {
  roomId: string;
  experimentId: string;
  deployment: Deployment;
  /** When it is created and starts. */
  at: number;
  /** Its planned end. */
  endsAt: number;
}

/** Opens a room, active and still empty; returns its rooms-listing record. */
export function openRoom(store: DataStore, room: NewRoom): Stored {
  const { roomId, experimentId, deployment, at, endsAt } = room;
  store.rooms.set(roomId, { id: roomId, experimentId, deploymentId: deployment.id, startedAt: at, endsAt });
  return store.append('rooms', {
    experimentId,
    roomId,
    deploymentId: deployment.id,
    participantId: null,
    time: at,
    record: {
      id: roomId,
      experimentId,
      deploymentId: deployment.id,
      deploymentName: deployment.name,
      status: 'active',
      participantCount: 0,
      createdAt: iso(at),
      startedAt: iso(at),
      endedAt: null,
    },
  });
}

export interface Joiner {
  id: string;
  email: string | null;
  name: string;
  role: string;
}

/** A participant joins a room, in progress; the room's participantCount grows. Returns the participants-listing record. */
export function joinRoom(store: DataStore, roomId: string, person: Joiner, at: number): Stored {
  const info = store.rooms.get(roomId);
  const room = store.roomRecord(roomId);
  if (!info || !room) throw new Error(`joinRoom: no room ${roomId}`);
  store.participants.set(participantKey(roomId, person.id), { id: person.id, roomId, experimentId: info.experimentId });
  room.record = { ...room.record, participantCount: Number(room.record.participantCount ?? 0) + 1 };
  return store.append('participants', {
    experimentId: info.experimentId,
    roomId,
    deploymentId: info.deploymentId,
    participantId: person.id,
    time: at,
    record: {
      id: person.id,
      email: person.email,
      name: person.name,
      role: person.role,
      status: 'active',
      completionCode: 'IN_PROGRESS',
      joinedAt: iso(at),
      completedAt: null,
      roomId,
      experimentId: info.experimentId,
      deploymentId: info.deploymentId,
    },
  });
}

/**
 * Ends an active room at `at`: the room is completed, each participant still in progress completes with
 * the code `codeOf` gives it, and the room's agent runs end. Returns the participants it completed.
 */
export function endRoom(store: DataStore, roomId: string, at: number, codeOf: (participant: Stored) => string): Stored[] {
  const room = store.roomRecord(roomId);
  if (!room) throw new Error(`endRoom: no room ${roomId}`);
  room.record = { ...room.record, status: 'completed', endedAt: iso(at) };
  const info = store.rooms.get(roomId);
  if (info) info.endsAt = at;
  const completed: Stored[] = [];
  for (const p of store.index('participants').byRoom.get(roomId) ?? []) {
    if (p.record.status !== 'active') continue;
    const code = codeOf(p);
    p.record = { ...p.record, status: statusOfCode(code), completionCode: code, completedAt: iso(at) };
    completed.push(p);
  }
  for (const run of store.agentRuns.get(roomId) ?? []) {
    if (run.run.endedAt === null && run.run.orphaned !== true) run.run = { ...run.run, roomStatus: 'completed', endedAt: iso(at) };
  }
  return completed;
}
