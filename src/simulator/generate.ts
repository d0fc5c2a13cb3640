import { SEEDED_AGENT_PERSONA, seedNewerData } from './generate-newer.ts';
import { DEMO_USER, EXPERIMENT_IDS, OTHER_USER, USERS } from './keys.ts';
import { COMPONENT_TYPES, stateComponents, type Deployment, type JsonObject, type Stored, type StoredType, type User } from './model.ts';
import { Random } from './random.ts';
import { eventFields, sparseRatingFields } from './record-shapes.ts';
import { COMPLETION_CODES } from './spec.ts';
import { DataStore } from './store.ts';

export interface GenerateOptions {
  seed: number;
  /** Rooms of the primary experiment; the two smaller experiments get a quarter of that (at least 1). */
  rooms: number;
  participantsPerRoom: number;
  eventsPerParticipant: number;
}

export const DEFAULT_GENERATE: GenerateOptions = { seed: 42, rooms: 4, participantsPerRoom: 3, eventsPerParticipant: 30 };

export { EXPERIMENT_IDS };

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

const iso = (ms: number): string => new Date(ms).toISOString();

/** The categories the first data set drew from; its random stream (and so every seeded value) depends on this list. */
const FIRST_CATEGORIES = ['component', 'state', 'media', 'pre_experiment', 'questionnaire', 'system'] as const;
const EVENT_TYPES: Record<(typeof FIRST_CATEGORIES)[number], readonly string[]> = {
  component: ['component.show', 'component.response', 'component.complete'],
  state: ['state.enter', 'state.exit'],
  media: ['media.play', 'media.pause', 'media.ended'],
  pre_experiment: ['consent.shown', 'consent.accepted', 'instructions.start', 'instructions.complete'],
  questionnaire: ['questionnaire.answer', 'questionnaire.submit'],
  system: ['system.connect', 'system.heartbeat', 'system.disconnect'],
};
/**
 * The categories added later, each with its event types: a participant's events 7 to 11 are relabelled
 * into them (drawing from a separate stream), so every documented category occurs in the data.
 */
const LATER_CATEGORIES: readonly [string, readonly string[]][] = [
  ['post_experiment', ['questionnaire.response', 'questionnaire.completed']],
  ['communication', ['chat.message_sent', 'videochat.joined']],
  ['sync', ['sync.drift_corrected', 'sync.seek']],
  ['scanner', ['scanner.pulse', 'scanner.trigger']],
  ['sparse_rating', ['sparse_rating.shown', 'sparse_rating.submitted']],
];
const NAMES = ['Ada', 'Ben', 'Chloe', 'Dev', 'Elif', 'Femi', 'Greta', 'Hiro', 'Ines', 'Jon', 'Kemal', 'Lena', 'Mo', 'Nia'];
const CHAT_LINES = ['hello!', 'can you hear me?', 'I liked that scene', 'ready when you are', 'ok', 'that was intense', 'next one?'];

/** Turns an event into one of a later category, keeping its id, instant and participant. */
function relabel(record: JsonObject, [category, types]: [string, readonly string[]], extra: Random, stateName: string): void {
  const eventType = extra.pick(types);
  record.eventType = eventType;
  record.category = category;
  record.componentType = null;
  record.componentId = null;
  record.content = `${eventType} (${stateName})`;
  record.duration = category === 'scanner' ? extra.int(1_000, 2_500) : null;
  record.response =
    category === 'post_experiment' || category === 'sparse_rating' ? { value: extra.int(1, 7), responseTime: extra.int(300, 8_000) } : null;
}

interface ExperimentPlan {
  id: string;
  name: string;
  description: string;
  owner: User;
  rooms: number;
  start: number;
}

function experimentStates(rng: Random): JsonObject[] {
  const names = ['Welcome', 'Consent', 'Instructions', 'Movie', 'Rating', 'Questionnaire', 'Debrief'];
  return names.map((name, i) => {
    // Drawn as when a state listed one or two components, so that the seeded records stay the same.
    rng.int(1, 2);
    const type = (COMPONENT_TYPES[i % COMPONENT_TYPES.length] ?? 'ShowVideo').toLowerCase();
    const key = name.toLowerCase();
    return {
      id: `state_${key}`,
      name,
      order: i,
      focusComponent: { id: `cmp_${key}_1`, type, config: FOCUS_CONFIGS[type] ?? {} },
      ...(name === 'Movie' ? { transitionRules: { type: 'timed', durationMs: 600_000 } } : {}),
    };
  });
}

/**
 * The seeded states' focus component configs, as the SDK's factories write them. The video and the image
 * name no media file (their stimuli are chosen per room), so the seeded exports list no media assets.
 */
const FOCUS_CONFIGS: Record<string, JsonObject> = {
  showvideo: { autoplay: true, controls: false },
  showimage: { caption: 'Please read the consent form' },
  textinput: { prompt: 'Describe the film', outputVariable: 'description' },
  vasrating: { prompt: 'How engaging was it?', outputVariable: 'engagement' },
  likertscale: { prompt: 'I enjoyed the film', outputVariable: 'enjoyment', scalePoints: 7 },
  multiplechoice: { prompt: 'Which film?', options: ['A', 'B'], outputVariable: 'film' },
};

/** Builds the seeded data set: three experiments, two users, rooms, participants and all their data. */
export function generate(options: GenerateOptions): DataStore {
  const rng = new Random(options.seed);
  // Fields added to already-seeded records draw from their own stream, so older values never shift.
  const extra = new Random(options.seed ^ 0x5a11ce);
  const store = new DataStore();
  for (const user of USERS) store.users.set(user.id, user);
  const counters = { recordings: 0 };
  const small = Math.max(1, Math.ceil(options.rooms / 4));
  const plans: ExperimentPlan[] = [
    {
      id: EXPERIMENT_IDS.primary,
      name: 'Movie Watching Study',
      description: 'Dyads watch short films and rate their engagement continuously.',
      owner: DEMO_USER,
      rooms: options.rooms,
      start: Date.UTC(2024, 9, 1, 9),
    },
    {
      id: EXPERIMENT_IDS.secondary,
      name: 'Joint Attention Pilot',
      description: 'A pilot of a joint attention task with video chat.',
      owner: DEMO_USER,
      rooms: small,
      start: Date.UTC(2024, 10, 4, 13),
    },
    {
      id: EXPERIMENT_IDS.other,
      name: 'Private Replication',
      description: "Another lab's experiment, not visible to the demo user.",
      owner: OTHER_USER,
      rooms: small,
      start: Date.UTC(2024, 8, 16, 10),
    },
  ];
  const pending = new Map<StoredType, Stored[]>();
  const add = (type: StoredType, item: Omit<Stored, 'seq'>): void => {
    const list = pending.get(type) ?? [];
    list.push({ ...item, seq: store.nextSeq() });
    pending.set(type, list);
  };
  let participantNumber = 0;

  for (const plan of plans) {
    const states = experimentStates(rng);
    const roles: JsonObject = {
      speaker: { name: 'Speaker', participantCount: 1 },
      listener: { name: 'Listener', participantCount: options.participantsPerRoom - 1 },
    };
    // The joint-attention pilot also runs with an AI partner: the SDK's runtime "v2" and an agent role.
    const agentFields: JsonObject =
      plan.id === EXPERIMENT_IDS.secondary
        ? {
            runtime: 'v2',
            roles: { ...roles, partner: { name: 'AI partner', participantCount: 1, mode: 'agent', personaId: SEEDED_AGENT_PERSONA } },
          }
        : {};
    const deployments = [
      { id: `dep_${plan.id.slice(4)}_a`, name: 'Lab pilot', type: 'lab', createdAt: plan.start - 7 * DAY, maxParticipants: 100 },
      { id: `dep_${plan.id.slice(4)}_b`, name: 'Online wave 1', type: 'online', createdAt: plan.start - 6 * DAY, maxParticipants: 500 },
    ];
    const activeDeployments = new Set<string>();
    store.experiments.set(plan.id, {
      id: plan.id,
      ownerId: plan.owner.id,
      deleted: false,
      record: {
        id: plan.id,
        name: plan.name,
        description: plan.description,
        ownerId: plan.owner.id,
        ownerEmail: plan.owner.email,
        createdAt: iso(plan.start - 14 * 24 * 60 * MINUTE),
        updatedAt: iso(plan.start - 2 * 24 * 60 * MINUTE),
        requiredParticipants: options.participantsPerRoom,
        states,
        roles,
        settings: { language: 'en', recording: { video: true, audio: true } },
        ...agentFields,
      },
    });

    for (let r = 0; r < plan.rooms; r++) {
      const roomId = `room_${plan.id.slice(4)}_${String(r + 1).padStart(3, '0')}`;
      const deployment = deployments[r % deployments.length] ?? deployments[0];
      if (!deployment) throw new Error('no deployment');
      const createdAt = plan.start + r * 2 * 60 * MINUTE + rng.int(0, 30 * MINUTE);
      const startedAt = createdAt + rng.int(1, 10) * MINUTE;
      const sessionMs = rng.int(18, 26) * MINUTE;
      const base = { experimentId: plan.id, roomId, deploymentId: deployment.id };
      store.rooms.set(roomId, { id: roomId, experimentId: plan.id, deploymentId: deployment.id, startedAt, endsAt: startedAt + sessionMs });

      const people: { id: string; name: string; role: string; joinedAt: number }[] = [];
      let anyInProgress = false;
      for (let p = 0; p < options.participantsPerRoom; p++) {
        const code = COMPLETION_CODES[participantNumber % COMPLETION_CODES.length] ?? 'SUCCESS';
        participantNumber++;
        const id = `ppt_${rng.id(10)}`;
        const name = `${rng.pick(NAMES)} ${String.fromCharCode(65 + rng.int(0, 25))}.`;
        const role = p === 0 ? 'speaker' : 'listener';
        const joinedAt = createdAt + rng.int(5, 120) * 1000;
        const inProgress = code === 'IN_PROGRESS';
        anyInProgress ||= inProgress;
        people.push({ id, name, role, joinedAt });
        store.participants.set(`${roomId}\u0000${id}`, { id, roomId, experimentId: plan.id });
        add('participants', {
          ...base,
          participantId: id,
          time: joinedAt,
          record: {
            id,
            email: `${name.split(' ')[0]?.toLowerCase()}.${participantNumber}@example.org`,
            name,
            role,
            status: inProgress ? 'active' : code === 'SUCCESS' || code === 'COMPLETED_NO_CODE' ? 'completed' : 'dropped',
            completionCode: code,
            joinedAt: iso(joinedAt),
            completedAt: inProgress ? null : iso(startedAt + sessionMs - rng.int(0, 60) * 1000),
            roomId,
            experimentId: plan.id,
            deploymentId: deployment.id,
          },
        });
      }
      if (anyInProgress) activeDeployments.add(deployment.id);
      add('rooms', {
        ...base,
        participantId: null,
        time: createdAt,
        record: {
          id: roomId,
          experimentId: plan.id,
          deploymentId: deployment.id,
          deploymentName: deployment.name,
          status: anyInProgress ? 'active' : 'completed',
          participantCount: people.length,
          createdAt: iso(createdAt),
          startedAt: iso(startedAt),
          endedAt: anyInProgress ? null : iso(startedAt + sessionMs),
        },
      });

      for (const person of people) {
        generateParticipantData({ rng, extra, counters, add, plan, roomId, base, person, people, states, startedAt, sessionMs, options });
      }
    }
    for (const d of deployments) store.deployments.set(d.id, seededDeployment(d, plan, activeDeployments.has(d.id)));
  }
  for (const [type, items] of pending) store.index(type).load(items);
  seedNewerData(store, options);
  return store;
}

/** A seeded human deployment: active while one of its rooms is. */
function seededDeployment(
  d: { id: string; name: string; type: string; createdAt: number; maxParticipants: number },
  plan: ExperimentPlan,
  active: boolean,
): Deployment {
  return {
    id: d.id,
    experimentId: plan.id,
    ownerId: plan.owner.id,
    name: d.name,
    type: d.type,
    status: active ? 'active' : 'completed',
    createdAt: d.createdAt,
    updatedAt: d.createdAt + DAY,
    maxParticipants: d.maxParticipants,
    budgetUsd: null,
    spawnFailures: new Map(),
  };
}

interface ParticipantContext {
  rng: Random;
  /** The stream for fields added later to already-seeded records. */
  extra: Random;
  counters: { recordings: number };
  add: (type: StoredType, item: Omit<Stored, 'seq'>) => void;
  plan: ExperimentPlan;
  roomId: string;
  base: { experimentId: string; roomId: string; deploymentId: string };
  person: { id: string; name: string; role: string };
  people: readonly { id: string; name: string }[];
  states: JsonObject[];
  startedAt: number;
  sessionMs: number;
  options: GenerateOptions;
}

function generateParticipantData(ctx: ParticipantContext): void {
  const { rng, extra, counters, add, plan, roomId, base, person, people, states, startedAt, sessionMs, options } = ctx;
  const E = options.eventsPerParticipant;
  const participantId = person.id;
  const item = { ...base, participantId };
  // About one record in seven of the older types comes in the legacy shape, with `sessionId`.
  const roomField = (): JsonObject => (rng.chance(0.15) ? { sessionId: roomId } : { roomId });
  const state = (): { id: string; name: string; components: JsonObject[] } => {
    const s = rng.pick(states);
    return { id: String(s.id), name: String(s.name), components: stateComponents(s) };
  };

  for (let i = 0; i < E; i++) {
    const category = i < FIRST_CATEGORIES.length ? FIRST_CATEGORIES[i] : rng.pick(FIRST_CATEGORIES);
    if (!category) continue;
    const onset = category === 'pre_experiment' ? -rng.int(1_000, 120_000) : rng.int(0, sessionMs);
    const time = startedAt + onset;
    const s = state();
    const eventType = rng.pick(EVENT_TYPES[category]);
    const withResponse = category === 'questionnaire' || eventType === 'component.response';
    const record: JsonObject = {
      id: `evt_${rng.id(14)}`,
      timestamp: iso(time),
      onset,
      experimentId: plan.id,
      ...roomField(),
      participantId,
      eventType,
      category,
      ...eventFields(rng, { eventType, category, state: s, role: person.role, withResponse }),
    };
    const later = LATER_CATEGORIES[i - FIRST_CATEGORIES.length];
    if (later) relabel(record, later, extra, s.name);
    add('events', { ...item, time, record });
  }

  let t = rng.int(60, 120) * 1000;
  let value = rng.next();
  for (let i = 0; i < E; i++) {
    t += rng.int(100, 500);
    value = Math.min(1, Math.max(0, value + (rng.next() - 0.5) * 0.1));
    add('ratings/continuous', {
      ...item,
      time: startedAt + t,
      record: {
        participantId,
        experimentId: plan.id,
        roomId,
        timestamp: iso(startedAt + t),
        onset: t,
        value: Math.round(value * 1000) / 1000,
        componentId: 'cmp_rating_1',
        stateId: 'state_rating',
        stimulusId: `stimulus_${1 + (i % 3)}`,
      },
    });
  }

  const sparse = Math.max(2, Math.round(E / 10));
  const previous: JsonObject = {};
  for (let i = 0; i < sparse; i++) {
    const onset = rng.int(0, sessionMs);
    const likert = i % 2 === 1;
    const scale = likert ? { min: 1, max: 7 } : { min: 0, max: 100 };
    const raw = rng.int(scale.min, scale.max);
    // Drawn in the order the first data set drew them (its confidence draw included), so values stay put.
    const ratingId = `rat_${rng.id(12)}`;
    const room = roomField();
    const responseTime = rng.int(400, 9_000);
    if (rng.chance(0.5)) rng.next();
    const stimulusId = `stimulus_${1 + (i % 3)}`;
    const clockOffsetApplied = extra.int(-250, 250);
    const stateStart = Math.max(0, onset - extra.int(5_000, 120_000));
    const stimulusTime = onset - stateStart;
    const ratingEndOnset = onset + responseTime;
    const mediaPauseOnset = onset - extra.int(50, 400);
    const mediaResumeOnset = ratingEndOnset + extra.int(100, 600);
    add('ratings/sparse', {
      ...item,
      time: startedAt + onset,
      record: {
        ratingId,
        participantId,
        experimentId: plan.id,
        ...room,
        ...sparseRatingFields(extra, {
          i,
          raw,
          onset,
          roomStartedAt: startedAt,
          clockOffsetApplied,
          responseTime,
          stimulusTime,
          stimulusId,
          mediaPauseOnset,
          mediaResumeOnset,
          previous,
        }),
      },
    });
    previous[stimulusId] = raw;
  }

  for (const type of ['video', 'audio'] as const) {
    const recordingId = `rec_${rng.id(12)}`;
    const start = startedAt + rng.int(0, 20) * 1000;
    const duration = sessionMs - rng.int(0, 60) * 1000;
    const ext = type === 'video' ? 'mp4' : 'ogg';
    const path = `recordings/${plan.id}/${roomId}/${recordingId}.${ext}`;
    const egressId = `EG_${rng.id(12).toUpperCase()}`;
    const signature = rng.id(32);
    // Listings no longer embed signed URLs: rows carry a download path. One row in seven is an old
    // GCS-only row that still carries its URLs (and no download path).
    const old = counters.recordings++ % 7 === 6;
    const links: JsonObject = old
      ? {
          url: `https://storage.hyperstudy.io/${path}`,
          downloadUrl: `https://storage.googleapis.com/hyperstudy-recordings/${path}?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Expires=3600&X-Goog-Signature=${signature}`,
        }
      : { downloadPath: `/data/recordings/download/${roomId}/${recordingId}`, fileName: `${recordingId}.${ext}` };
    add('recordings', {
      ...item,
      time: start,
      record: {
        recordingId,
        egressId,
        participantId,
        participantName: person.name,
        experimentId: plan.id,
        roomId,
        startTime: iso(start),
        endTime: iso(start + duration),
        duration,
        videoOffset: start - startedAt,
        ...links,
        fileSize: type === 'video' ? rng.int(80, 400) * 1_048_576 : rng.int(5, 30) * 1_048_576,
        format: ext,
        resolution: type === 'video' ? '1280x720' : null,
        status: 'completed',
        metadata: { type, recordingType: 'participant', roomName: roomId, experimentId: plan.id },
      },
    });
  }

  const chats = Math.max(1, Math.round(E / 8));
  for (let i = 0; i < chats; i++) {
    const onset = rng.int(0, sessionMs);
    add('chat', {
      ...item,
      time: startedAt + onset,
      record: {
        messageId: `msg_${rng.id(12)}`,
        senderId: participantId,
        senderName: person.name,
        participantId,
        experimentId: plan.id,
        ...roomField(),
        content: rng.pick(CHAT_LINES),
        timestamp: iso(startedAt + onset),
        recipientIds: people.filter((p) => p.id !== participantId).map((p) => p.id),
        onset,
      },
    });
  }

  const videochat = Math.max(2, Math.round(E / 8));
  const vcKinds = [
    'participant_connected',
    'track_published',
    'connection_quality_changed',
    'track_unpublished',
    'participant_disconnected',
  ];
  for (let i = 0; i < videochat; i++) {
    const onset = Math.round(((i + rng.next()) / videochat) * sessionMs);
    const eventType = i === 0 ? 'participant_connected' : i === videochat - 1 ? 'participant_disconnected' : rng.pick(vcKinds.slice(1, 4));
    add('videochat', {
      ...item,
      time: startedAt + onset,
      record: {
        id: `vc_${rng.id(12)}`,
        participantId,
        experimentId: plan.id,
        roomId,
        timestamp: iso(startedAt + onset),
        onset,
        eventType,
        trackKind: eventType.startsWith('track_') ? rng.pick(['video', 'audio']) : null,
        quality: rng.pick(['excellent', 'good', 'poor']),
        metrics: { bitrateKbps: rng.int(300, 2_500), packetLoss: Math.round(rng.next() * 50) / 1000, jitterMs: rng.int(1, 40) },
      },
    });
  }

  const syncs = Math.max(2, Math.round(E / 5));
  for (let i = 0; i < syncs; i++) {
    const onset = Math.round(((i + rng.next()) / syncs) * sessionMs);
    add('sync', {
      ...item,
      time: startedAt + onset,
      record: {
        participantId,
        experimentId: plan.id,
        roomId,
        timestamp: iso(startedAt + onset),
        onset,
        timeDrift: rng.int(-120, 120),
        playbackRate: rng.pick([1, 1, 1, 0.98, 1.02]),
        syncQuality: Math.round(rng.next() * 1000) / 1000,
        latency: rng.int(10, 250),
        isHost: person.role === 'speaker',
      },
    });
  }

  const components = Math.max(2, Math.round(E / 8));
  for (let i = 0; i < components; i++) {
    const s = states[i % states.length];
    const component = (s ? stateComponents(s) : [])[0] ?? { id: 'cmp_unknown', type: 'ShowVideo' };
    const componentType = String(component.type);
    const onset = rng.int(0, sessionMs);
    const completed = rng.chance(0.8);
    add('components', {
      ...item,
      time: startedAt + onset,
      record: {
        id: `cre_${rng.id(12)}`,
        componentId: String(component.id),
        componentType,
        stateId: String(s?.id ?? 'state_unknown'),
        participantId,
        experimentId: plan.id,
        roomId,
        timestamp: iso(startedAt + onset),
        onset,
        config:
          componentType === 'ShowVideo'
            ? { src: `stimulus_${1 + (i % 3)}.mp4`, autoplay: true }
            : { prompt: 'Please respond', required: true },
        variables: { condition: rng.pick(['A', 'B']), trial: i + 1 },
        response: completed && componentType !== 'ShowVideo' && componentType !== 'ShowImage' ? { value: rng.int(1, 7) } : null,
        completed,
      },
    });
  }
}
