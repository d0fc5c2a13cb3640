/**
 * The data of the newer endpoints, added to a generated data set: eye-tracking samples, room variable
 * logs, AI agents (runs and decisions) in the joint-attention pilot, personas, organisations' shares and
 * an agent-only deployment. Each kind draws from its own random stream, so the older data never shifts.
 */
import { agentRun, stateAt } from './agents.ts';
import { DEMO_USER, EXPERIMENT_IDS, OTHER_USER } from './keys.ts';
import { stateComponents, type JsonObject, type Stored } from './model.ts';
import { newPersona } from './persona-model.ts';
import { Random } from './random.ts';
import type { DataStore, ParticipantInfo, RoomInfo } from './store.ts';

/** The options generate() was called with that matter here. */
interface NewerOptions {
  seed: number;
  eventsPerParticipant: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const DAY = 86_400_000;

/** The room whose variable log shows writes the server refused (`droppedWrites`). */
export const DROPPED_WRITES_ROOM = 'room_movie01_001';
export const AGENT_DEPLOYMENT = 'dep_joint02_agents';
/** The persona the joint-attention pilot's agent role is bound to. */
export const SEEDED_AGENT_PERSONA = 'psn_demo_partner';
/** The room of the agent deployment whose spawn failed (retryable once). */
export const FAILED_SPAWN_ROOM = 'room_joint02_spawn01';

function seedPersonas(store: DataStore): void {
  const at = iso(Date.UTC(2024, 9, 20, 12));
  const seeds: { id: string; ownerId: string; fields: JsonObject }[] = [
    {
      id: SEEDED_AGENT_PERSONA,
      ownerId: DEMO_USER.id,
      fields: {
        name: 'Curious partner',
        description: 'A friendly, curious peer for joint-attention tasks.',
        temperature: 0.7,
        prompt: {
          persona: 'You are a curious university student taking part in a study with a partner.',
          objective: 'Complete each task together; share impressions briefly.',
          guidance: 'Keep messages under 20 words.',
          examples: ['That scene made me jump!'],
          additionalInstructions: '',
        },
        cognition: { recipe: 'social' },
        seed: 7,
      },
    },
    {
      id: 'psn_demo_confederate',
      ownerId: DEMO_USER.id,
      fields: {
        name: 'Lab confederate',
        description: 'A calm confederate the whole lab may use.',
        provider: 'openai',
        model: 'gpt-4.1',
        visibility: 'organization',
        memoryPersistence: 'cross-experiment',
        seedMemories: ['Has taken part in two earlier sessions.'],
        pacing: { minDelayMs: 800, maxDelayMs: 3000 },
      },
    },
    {
      id: 'psn_other_private',
      ownerId: OTHER_USER.id,
      fields: { name: 'Replication confederate', description: "Another lab's private persona.", provider: 'gemini' },
    },
  ];
  for (const seed of seeds) {
    const record = newPersona(seed.fields, { id: seed.id, ownerId: seed.ownerId, now: at });
    const visibility = record.visibility === 'organization' ? 'organization' : record.visibility === 'public' ? 'public' : 'private';
    store.personas.set(seed.id, { id: seed.id, ownerId: seed.ownerId, visibility, deleted: false, record });
  }
}

/** The participants of each room, in the order they were generated (the first is the room's first). */
function participantsByRoom(store: DataStore): Map<string, ParticipantInfo[]> {
  const out = new Map<string, ParticipantInfo[]>();
  for (const p of store.participants.values()) {
    const list = out.get(p.roomId);
    if (list) list.push(p);
    else out.set(p.roomId, [p]);
  }
  return out;
}

function statesOf(store: DataStore, experimentId: string): JsonObject[] {
  return (store.experiments.get(experimentId)?.record.states as JsonObject[] | undefined) ?? [];
}

/** About as many gaze samples per participant as continuous ratings, at roughly 30 Hz during the movie. */
function seedEyetracking(
  store: DataStore,
  rng: Random,
  rooms: RoomInfo[],
  people: Map<string, ParticipantInfo[]>,
  perParticipant: number,
): void {
  const items: Stored[] = [];
  for (const room of rooms) {
    const movie = statesOf(store, room.experimentId).find((s) => s.id === 'state_movie');
    const componentId = String((movie ? stateComponents(movie) : [])[0]?.id ?? 'cmp_movie_1');
    for (const p of people.get(room.id) ?? []) {
      let t = rng.int(120, 240) * 1000;
      let x = 0.5;
      let y = 0.5;
      for (let i = 0; i < perParticipant; i++) {
        t += rng.int(25, 40);
        x = Math.min(1, Math.max(0, x + (rng.next() - 0.5) * 0.08));
        y = Math.min(1, Math.max(0, y + (rng.next() - 0.5) * 0.08));
        items.push({
          seq: store.nextSeq(),
          experimentId: room.experimentId,
          roomId: room.id,
          participantId: p.id,
          deploymentId: room.deploymentId,
          time: room.startedAt + t,
          record: {
            id: `gaze_${rng.id(14)}`,
            timestamp: iso(room.startedAt + t),
            onset: t,
            experimentId: room.experimentId,
            roomId: room.id,
            participantId: p.id,
            stateId: 'state_movie',
            componentId,
            x: Math.round(x * 10_000) / 10_000,
            y: Math.round(y * 10_000) / 10_000,
            confidence: Math.round((0.55 + rng.next() * 0.45) * 1000) / 1000,
            source: 'webgazer',
          },
        });
      }
    }
  }
  store.index('eyetracking').load(items);
}

/** A room's variable write log: seed values first, then human (and agent) writes through the session. */
function seedVariables(store: DataStore, rng: Random, room: RoomInfo, hasAgent: boolean): void {
  const states = statesOf(store, room.experimentId);
  const writes: { t: number; variable: string; value: JsonObject[string]; source: string; persisted: boolean }[] = [
    { t: room.startedAt, variable: 'condition', value: rng.pick(['A', 'B']), source: 'seed', persisted: true },
    { t: room.startedAt, variable: 'trialIndex', value: 0, source: 'seed', persisted: true },
  ];
  const span = room.endsAt - room.startedAt;
  const count = rng.int(6, 12);
  for (let i = 0; i < count; i++) {
    const t = room.startedAt + rng.int(1_000, span);
    const kind = rng.int(0, 2);
    if (kind === 0) writes.push({ t, variable: 'trialIndex', value: 0, source: 'human', persisted: true });
    else if (kind === 1) writes.push({ t, variable: 'partnerReady', value: rng.chance(0.5), source: 'human', persisted: false });
    else writes.push({ t, variable: 'score', value: rng.int(0, 100), source: 'human', persisted: true });
  }
  if (hasAgent) {
    for (let i = 0; i < 3; i++) {
      const t = room.startedAt + rng.int(1_000, span);
      writes.push({ t, variable: 'agentPlan', value: rng.pick(['mirror', 'lead', 'follow']), source: 'agent', persisted: true });
    }
  }
  writes.sort((a, b) => a.t - b.t);
  // Trials only move forward: number the human trialIndex writes in time order.
  let trial = 0;
  for (const w of writes) if (w.variable === 'trialIndex' && w.source === 'human') w.value = ++trial;
  store.variables.set(room.id, {
    writes: writes.map((w) => ({
      variable: w.variable,
      value: w.value,
      source: w.source,
      persisted: w.persisted,
      stateId: String(stateAt(states, room.startedAt, room.endsAt, w.t).id),
      timestamp: iso(w.t),
    })),
    droppedWrites:
      room.id === DROPPED_WRITES_ROOM ? [{ variable: 'score', reason: 'type mismatch: expected a number, got the string "high"' }] : [],
  });
}

/**
 * AI agents in the joint-attention pilot: in each room its second participant is an agent with a run
 * and a few dozen decisions; the run in the pilot's last room is orphaned (its room failed).
 */
function seedAgents(store: DataStore, rng: Random, rooms: RoomInfo[], people: Map<string, ParticipantInfo[]>): void {
  const persona = store.personas.get(SEEDED_AGENT_PERSONA)?.record;
  if (!persona) return;
  rooms.forEach((room, i) => {
    const inRoom = people.get(room.id) ?? [];
    const agent = inRoom[1];
    if (!agent) return;
    const orphaned = i === rooms.length - 1;
    const run = agentRun(
      rng,
      {
        experimentId: room.experimentId,
        roomId: room.id,
        participantId: agent.id,
        peers: inRoom.filter((p) => p.id !== agent.id).map((p) => p.id),
        persona,
        states: statesOf(store, room.experimentId),
        startedAt: room.startedAt,
        endsAt: room.endsAt,
      },
      { decisions: rng.int(24, 40), orphaned, ended: true },
    );
    store.agentRuns.set(room.id, [run]);
  });
}

/** Adds the newer endpoints' data to a generated store. */
export function seedNewerData(store: DataStore, options: NewerOptions): void {
  seedPersonas(store);
  const rooms = [...store.rooms.values()];
  const people = participantsByRoom(store);
  seedEyetracking(store, new Random(options.seed ^ 0xe7e7), rooms, people, options.eventsPerParticipant);
  const joint = rooms.filter((r) => r.experimentId === EXPERIMENT_IDS.secondary);
  seedAgents(store, new Random(options.seed ^ 0xa6e47), joint, people);
  const variablesRng = new Random(options.seed ^ 0x7a81);
  for (const room of rooms) seedVariables(store, variablesRng, room, store.agentRuns.has(room.id));

  const other = store.experiments.get(EXPERIMENT_IDS.other);
  if (other)
    store.shares.push({
      experimentId: other.id,
      organizationId: DEMO_USER.organizationId,
      permissions: ['view'],
      dataPermissions: ['view'],
      sharedAt: Date.UTC(2024, 9, 2, 8),
      expiresAt: null,
    });

  const pilot = store.experiments.get(EXPERIMENT_IDS.secondary);
  if (pilot) {
    const createdAt = Date.parse(String(pilot.record.createdAt)) + 10 * DAY;
    store.deployments.set(AGENT_DEPLOYMENT, {
      id: AGENT_DEPLOYMENT,
      experimentId: pilot.id,
      ownerId: pilot.ownerId,
      name: 'Agent pilot',
      type: 'agent-only',
      status: 'active',
      createdAt,
      updatedAt: createdAt,
      maxParticipants: 1,
      budgetUsd: 10,
      spawnFailures: new Map([[FAILED_SPAWN_ROOM, { createdAt: createdAt + 60_000, retried: false }]]),
    });
  }
}
