/** The simulator's data model: the records the HyperStudy API v3 serves, as plain JSON objects. */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export const DATA_TYPES = [
  'events',
  'recordings',
  'videochat',
  'chat',
  'ratings/continuous',
  'ratings/sparse',
  'sync',
  'components',
  'participants',
  'rooms',
] as const;
export type DataType = (typeof DATA_TYPES)[number];

export const SCOPES = ['experiment', 'room', 'participant'] as const;
export type Scope = (typeof SCOPES)[number];

export const EVENT_CATEGORIES = ['component', 'state', 'media', 'pre_experiment', 'questionnaire', 'system'] as const;

export const COMPLETION_CODES = ['SUCCESS', 'TIMEOUT', 'TECHNICAL', 'NOCONSENT', 'ABANDONED', 'IN_PROGRESS', 'COMPLETED_NO_CODE'] as const;

export const COMPONENT_TYPES = ['ShowVideo', 'ShowImage', 'TextInput', 'VASRating', 'LikertScale', 'MultipleChoice'] as const;

/**
 * A stored record and where it belongs. `record` is exactly what the API serves; the other fields are
 * the simulator's index keys (older records carry `sessionId` instead of `roomId`, so the room is kept
 * here rather than read back from the record).
 */
export interface Stored {
  seq: number;
  experimentId: string;
  roomId: string;
  participantId: string | null;
  deploymentId: string;
  /** The instant the time filters and the default sort use. */
  time: number;
  record: JsonObject;
}

export interface Experiment {
  id: string;
  ownerId: string;
  deleted: boolean;
  record: JsonObject;
}

export interface ApiKey {
  key: string;
  /** A label safe to show in stats and logs in place of the key. */
  name: string;
  userId: string;
  scopes: string[];
}

export interface User {
  id: string;
  email: string;
}
