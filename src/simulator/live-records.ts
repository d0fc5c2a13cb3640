/**
 * The records the live mode appends (events, chat messages, sparse ratings) and the people who join its
 * rooms, in the seeded data's shapes. Every value is drawn from the live mode's own random stream.
 */
import { stateAt } from './agents.ts';
import type { Joiner } from './lifecycle.ts';
import { stateComponents, type JsonObject, type Stored } from './model.ts';
import type { Random } from './random.ts';
import { eventFields, sparseRatingFields } from './record-shapes.ts';
import { participantKey, type DataStore, type RoomInfo } from './store.ts';

const iso = (ms: number): string => new Date(ms).toISOString();

/** The data types the live mode appends to. */
export const LIVE_TYPES = ['events', 'chat', 'ratings/sparse'] as const;
export type LiveRecordType = (typeof LIVE_TYPES)[number];

/** How likely each type is for a group of records: mostly events, some chat, few sparse ratings. */
const TYPE_WEIGHTS: readonly [LiveRecordType, number][] = [
  ['events', 0.6],
  ['chat', 0.25],
  ['ratings/sparse', 0.15],
];

export function pickType(rng: Random): LiveRecordType {
  let x = rng.next();
  for (const [type, weight] of TYPE_WEIGHTS) {
    if (x < weight) return type;
    x -= weight;
  }
  return 'events';
}

const EVENT_TYPES: readonly [string, readonly string[]][] = [
  ['component', ['component.show', 'component.response', 'component.complete']],
  ['state', ['state.enter', 'state.exit']],
  ['media', ['media.play', 'media.pause']],
  ['communication', ['chat.message_sent', 'videochat.joined']],
  ['sync', ['sync.drift_corrected']],
  ['system', ['system.heartbeat']],
];
const NAMES = ['Ada', 'Ben', 'Chloe', 'Dev', 'Elif', 'Femi', 'Greta', 'Hiro', 'Ines', 'Jon', 'Kemal', 'Lena', 'Mo', 'Nia'];
const CHAT_LINES = ['hi!', 'can you see the video?', 'that was funny', 'ready', 'ok, next', 'wait for me', 'agreed'];
const DROP_CODES = ['TIMEOUT', 'TECHNICAL', 'ABANDONED'] as const;

/** A participant who joins a live room; `n` numbers them for their e-mail address. */
export function livePerson(rng: Random, n: number, role: string): Joiner {
  const first = rng.pick(NAMES);
  return {
    id: `ppt_${rng.id(10)}`,
    email: `${first.toLowerCase()}.live${n}@example.org`,
    name: `${first} ${String.fromCharCode(65 + rng.int(0, 25))}.`,
    role,
  };
}

/** The code a participant still in progress completes with when the live mode ends their room. */
export const completionCode = (rng: Random): string => (rng.chance(0.8) ? 'SUCCESS' : rng.pick(DROP_CODES));

/** Where and when one live record is made. */
export interface LiveSlot {
  rng: Random;
  store: DataStore;
  room: RoomInfo;
  /** The participant (their participants-listing record) the record belongs to. */
  participant: Stored;
  /** Everyone who joined the room. */
  people: readonly Stored[];
  time: number;
}

function stateOf(slot: LiveSlot): { id: string; name: string; components: JsonObject[] } {
  const states = (slot.store.experiments.get(slot.room.experimentId)?.record.states as JsonObject[] | undefined) ?? [];
  const s = stateAt(states, slot.room.startedAt, slot.room.endsAt, slot.time);
  return { id: String(s.id), name: String(s.name ?? s.id), components: stateComponents(s) };
}

const base = (slot: LiveSlot): { participantId: string; experimentId: string; roomId: string } => ({
  participantId: String(slot.participant.participantId),
  experimentId: slot.room.experimentId,
  roomId: slot.room.id,
});

export function liveEvent(slot: LiveSlot): JsonObject {
  const { rng, time, room } = slot;
  const [category, types] = rng.pick(EVENT_TYPES);
  const eventType = rng.pick(types);
  const s = stateOf(slot);
  const { participantId, experimentId, roomId } = base(slot);
  return {
    id: `evt_${rng.id(14)}`,
    timestamp: iso(time),
    onset: time - room.startedAt,
    experimentId,
    roomId,
    participantId,
    eventType,
    category,
    ...eventFields(rng, {
      eventType,
      category,
      state: s,
      role: slot.participant.record.role,
      withResponse: eventType === 'component.response',
    }),
  };
}

export function liveChat(slot: LiveSlot): JsonObject {
  const { participantId, experimentId, roomId } = base(slot);
  return {
    messageId: `msg_${slot.rng.id(12)}`,
    senderId: participantId,
    senderName: slot.participant.record.name ?? null,
    participantId,
    experimentId,
    roomId,
    content: slot.rng.pick(CHAT_LINES),
    timestamp: iso(slot.time),
    recipientIds: slot.people.filter((p) => p.participantId !== participantId).map((p) => String(p.participantId)),
    onset: slot.time - slot.room.startedAt,
  };
}

/** A sparse rating in the SDK 0.2.2 fixture's shape; `previousRatings` holds the participant's earlier ones. */
export function liveSparseRating(slot: LiveSlot): JsonObject {
  const { rng, time, room } = slot;
  const { participantId, experimentId, roomId } = base(slot);
  const earlier = slot.store.index('ratings/sparse').byParticipant.get(participantKey(roomId, participantId)) ?? [];
  const previous: JsonObject = {};
  for (const r of earlier) previous[String(r.record.stimulusId)] = r.record.rawValue ?? null;
  const i = earlier.length;
  const likert = i % 2 === 1;
  const scale = likert ? { min: 1, max: 7 } : { min: 0, max: 100 };
  const raw = rng.int(scale.min, scale.max);
  const onset = time - room.startedAt;
  const responseTime = rng.int(400, 9_000);
  const clockOffsetApplied = rng.int(-250, 250);
  const stimulusTime = rng.int(5_000, 120_000);
  const stimulusId = `stimulus_${1 + (i % 3)}`;
  const ratingEndOnset = onset + responseTime;
  const mediaPauseOnset = onset - rng.int(50, 400);
  const mediaResumeOnset = ratingEndOnset + rng.int(100, 600);
  const ratingId = `rat_${rng.id(12)}`;
  return {
    ratingId,
    participantId,
    experimentId,
    roomId,
    ...sparseRatingFields(rng, {
      i,
      raw,
      onset,
      roomStartedAt: room.startedAt,
      clockOffsetApplied,
      responseTime,
      stimulusTime,
      stimulusId,
      mediaPauseOnset,
      mediaResumeOnset,
      previous,
    }),
  };
}

export const LIVE_BUILDERS: Record<LiveRecordType, (slot: LiveSlot) => JsonObject> = {
  events: liveEvent,
  chat: liveChat,
  'ratings/sparse': liveSparseRating,
};
