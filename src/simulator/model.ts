/** The simulator's data model: the records the HyperStudy API v3 serves, as plain JSON objects. */

import type { ListingType } from './spec.ts';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** Every event category the docs and the SDK show; the API treats categories as an open set. */
export const EVENT_CATEGORIES = [
  'component',
  'state',
  'media',
  'pre_experiment',
  'post_experiment',
  'questionnaire',
  'system',
  'communication',
  'sync',
  'scanner',
  'sparse_rating',
] as const;

export const COMPONENT_TYPES = ['ShowVideo', 'ShowImage', 'TextInput', 'VASRating', 'LikertScale', 'MultipleChoice'] as const;

/** The focus component types of the SDK's experiment schema. */
export const FOCUS_COMPONENT_TYPES = [
  'showtext',
  'showimage',
  'showvideo',
  'vasrating',
  'textinput',
  'multiplechoice',
  'waiting',
  'code',
  'continuousrating',
  'videochat',
  'textchat',
  'rapidrate',
  'audiorecording',
  'sparserating',
  'trigger',
  'ranking',
  'scannerpulserecorder',
  'likertscale',
  'gazeoverlay',
] as const;

/**
 * The component a state shows, as the data listings name it: the state's `focusComponent` (the SDK's
 * lower-case type) with the type the records carry (`ShowVideo`, …). Empty for a state without one.
 */
export function stateComponents(state: JsonObject): JsonObject[] {
  const focus = state.focusComponent;
  if (focus === null || typeof focus !== 'object' || Array.isArray(focus)) return [];
  const type = String(focus.type);
  return [{ id: String(focus.id), type: COMPONENT_TYPES.find((t) => t.toLowerCase() === type) ?? type }];
}

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

export type StoredType = ListingType;

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
  name: string;
  organizationId: string;
}

export const DEPLOYMENT_STATUSES = ['active', 'paused', 'completed', 'archived'] as const;

export interface Deployment {
  id: string;
  experimentId: string;
  ownerId: string;
  name: string;
  /** `lab`, `online` (the seeded human deployments) or `agent-only`. */
  type: string;
  status: (typeof DEPLOYMENT_STATUSES)[number];
  createdAt: number;
  updatedAt: number;
  maxParticipants: number | null;
  /** The agent budget cap in USD (agent-only deployments). */
  budgetUsd: number | null;
  /** Rooms whose spawn failed, by room id: they never became rooms, but can be retried once. */
  spawnFailures: Map<string, { createdAt: number; retried: boolean }>;
}

export const PERSONA_VISIBILITIES = ['private', 'organization', 'public'] as const;

export interface Persona {
  id: string;
  ownerId: string;
  visibility: (typeof PERSONA_VISIBILITIES)[number];
  deleted: boolean;
  record: JsonObject;
}

/**
 * An experiment another organisation shared with an organisation. Experiment and data permissions are
 * granted apart (the docs: sharing an experiment does not share its data).
 */
export interface Share {
  experimentId: string;
  organizationId: string;
  /** On the experiment: `view`, `edit`, `duplicate`. */
  permissions: string[];
  /** On its data: `view`, `export`. */
  dataPermissions: string[];
  sharedAt: number;
  /** When the access ends (ms), or null. */
  expiresAt: number | null;
}

/** One agent participant's run and its decisions (each with its detail fields). */
export interface AgentRun {
  run: JsonObject;
  decisions: JsonObject[];
}

/** A room's variable write log and the writes the server's cross-checks refused. */
export interface RoomVariables {
  writes: JsonObject[];
  droppedWrites: JsonObject[];
}
