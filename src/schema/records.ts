import { builder, type FieldBuilder } from './builder.ts';
import { bool, date, float, int, json, linkable, roomOf, str, strList, type Rec } from './values.ts';
import { experimentLink, roomLink } from './links.ts';
import { Participant } from './refs.ts';

type Kind = 'String' | 'Int' | 'Float' | 'Boolean' | 'DateTime' | 'JSON' | 'StringList';

/** A record field: its upstream name, its GraphQL kind, and what it means. */
type FieldSpec = readonly [name: string, kind: Kind, description: string];

function field(t: FieldBuilder<Rec>, [name, kind, description]: FieldSpec) {
  const at = (r: Rec): unknown => r[name];
  switch (kind) {
    case 'String':
      return t.string({ nullable: true, description, resolve: (r) => str(at(r)) });
    case 'Int':
      return t.int({ nullable: true, description, resolve: (r) => int(at(r)) });
    case 'Float':
      return t.float({ nullable: true, description, resolve: (r) => float(at(r)) });
    case 'Boolean':
      return t.boolean({ nullable: true, description, resolve: (r) => bool(at(r)) });
    case 'DateTime':
      return t.field({ type: 'DateTime', nullable: true, description, resolve: (r) => date(at(r)) });
    case 'JSON':
      return t.field({ type: 'JSON', nullable: true, description, resolve: (r) => json(at(r)) });
    case 'StringList':
      return t.stringList({ nullable: true, description, resolve: (r) => strList(at(r)) });
  }
}

/** Fields every participant-level record shares, back-links included. */
const OWNERSHIP: FieldSpec[] = [
  ['experimentId', 'String', 'The experiment the record belongs to.'],
  ['participantId', 'String', 'The participant the record belongs to.'],
];

function ownership(t: FieldBuilder<Rec>) {
  return {
    ...Object.fromEntries(OWNERSHIP.map((spec) => [spec[0], field(t, spec)])),
    roomId: t.string({
      nullable: true,
      description: 'The room (session) of the record; older records call it sessionId.',
      resolve: roomOf,
    }),
    experiment: experimentLink(t, (r) => str(r.experimentId), 'The experiment, through a loader.'),
    room: roomLink(t, roomOf, 'The room, through a loader.'),
    participant: t.field({
      type: Participant,
      nullable: true,
      description: 'The participant, through a loader (one participants listing per room).',
      resolve: (r, _args, ctx) => {
        const roomId = linkable(roomOf(r));
        const id = linkable(str(r.participantId));
        return roomId === null || id === null ? null : ctx.loaders.participant.load({ roomId, id });
      },
    }),
  };
}

function recordType(name: string, description: string, specs: FieldSpec[]) {
  return builder.objectRef<Rec>(name).implement({
    description,
    fields: (t) => ({
      ...Object.fromEntries(specs.map((spec) => [spec[0], field(t, spec)])),
      ...ownership(t),
      raw: t.field({
        type: 'JSON',
        description: 'The record exactly as the upstream sent it, unknown fields included.',
        resolve: (r) => r,
      }),
    }),
  });
}

export const Event = recordType('Event', 'Something a participant did or saw, as the upstream logged it.', [
  ['id', 'String', 'The event id.'],
  ['timestamp', 'DateTime', 'When it happened.'],
  ['onset', 'Float', 'Milliseconds from the experiment start; negative before it (consent, instructions).'],
  ['eventType', 'String', 'For example component.complete, instructions.start, consent.accepted.'],
  ['category', 'String', 'component, state, media, pre_experiment, questionnaire, system, …'],
  ['componentType', 'String', 'The component type (ShowVideo, TextInput, …) for component events.'],
  ['componentId', 'String', 'The component id for component events.'],
  ['content', 'String', 'What was shown or logged.'],
  ['stateName', 'String', 'The experiment state the event happened in.'],
  ['stateId', 'String', 'The id of that state.'],
  ['participantRole', 'String', "The participant's role in the room."],
  ['duration', 'Float', 'How long it lasted, in milliseconds.'],
  ['response', 'JSON', 'The response { value, responseTime }, when the event carries one.'],
]);

export const Recording = recordType('Recording', 'A video or audio recording of a participant.', [
  ['recordingId', 'String', 'The recording id.'],
  ['egressId', 'String', 'The LiveKit egress id.'],
  ['participantName', 'String', 'The participant display name.'],
  ['startTime', 'DateTime', 'When recording started.'],
  ['endTime', 'DateTime', 'When recording ended.'],
  ['duration', 'Float', 'Length in milliseconds.'],
  ['videoOffset', 'Float', 'Milliseconds between the experiment start and the recording start.'],
  ['url', 'String', 'The stored file.'],
  ['downloadUrl', 'String', 'A signed, temporary download URL.'],
  ['downloadPath', 'String', 'The path of the file in storage.'],
  ['fileSize', 'Float', 'Bytes.'],
  ['format', 'String', 'File format.'],
  ['resolution', 'String', 'Video resolution, null for audio.'],
  ['status', 'String', 'Recording status.'],
  ['metadata', 'JSON', '{ type: video|audio, recordingType, roomName, experimentId }'],
]);

export const VideoChatEvent = recordType('VideoChatEvent', 'A LiveKit connection record: connections, track publications, quality.', [
  ['id', 'String', 'The record id.'],
  ['timestamp', 'DateTime', 'When it happened.'],
  ['onset', 'Float', 'Milliseconds from the experiment start.'],
  ['eventType', 'String', 'participant_connected, track_published, connection_quality_changed, …'],
  ['trackKind', 'String', 'video or audio, for track events.'],
  ['quality', 'String', 'Connection quality.'],
  ['metrics', 'JSON', 'Quality metrics (bitrate, packet loss, jitter).'],
]);

export const ChatMessage = recordType('ChatMessage', 'A text chat message.', [
  ['messageId', 'String', 'The message id.'],
  ['senderId', 'String', 'The sending participant.'],
  ['senderName', 'String', 'Their display name.'],
  ['content', 'String', 'The text.'],
  ['timestamp', 'DateTime', 'When it was sent.'],
  ['recipientIds', 'StringList', 'Who received it.'],
  ['onset', 'Float', 'Milliseconds from the experiment start.'],
]);

export const ContinuousRating = recordType('ContinuousRating', 'One sample of a continuous rating (every 100–500 ms).', [
  ['timestamp', 'DateTime', 'When it was sampled.'],
  ['onset', 'Float', 'Milliseconds from the experiment start.'],
  ['value', 'Float', 'The rating value.'],
  ['componentId', 'String', 'The rating component.'],
  ['stateId', 'String', 'The state it was given in.'],
  ['stimulusId', 'String', 'The stimulus being rated.'],
]);

export const SparseRating = recordType('SparseRating', 'A discrete rating: VAS, Likert, or a choice.', [
  ['ratingId', 'String', 'The rating id.'],
  ['timestamp', 'DateTime', 'When it was given.'],
  ['onset', 'Float', 'Milliseconds from the experiment start.'],
  ['value', 'Float', 'The normalised value.'],
  ['rawValue', 'Float', 'The value on the scale.'],
  ['scale', 'JSON', '{ min, max }'],
  ['labels', 'StringList', 'The scale labels.'],
  ['responseTime', 'Float', 'Milliseconds to respond.'],
  ['stateId', 'String', 'The state it was given in.'],
  ['stimulusId', 'String', 'The stimulus rated.'],
  ['componentId', 'String', 'The rating component.'],
  ['confidence', 'Float', 'Self-reported confidence, when asked.'],
  ['metadata', 'JSON', '{ question, dimension, componentType }'],
]);

export const SyncMetric = recordType('SyncMetric', 'Media synchronisation between a participant and the host.', [
  ['timestamp', 'DateTime', 'When it was measured (window start when aggregated).'],
  ['onset', 'Float', 'Milliseconds from the experiment start.'],
  ['timeDrift', 'Float', 'Milliseconds from the host.'],
  ['playbackRate', 'Float', 'Playback rate.'],
  ['syncQuality', 'Float', '0–1.'],
  ['latency', 'Float', 'Milliseconds.'],
  ['aggregationWindow', 'Int', 'The window in milliseconds, for aggregated metrics.'],
  ['sampleCount', 'Int', 'Samples in the window, for aggregated metrics.'],
]);

export const ComponentResponse = recordType('ComponentResponse', 'A component as a participant saw it and what they answered.', [
  ['id', 'String', 'The record id.'],
  ['componentId', 'String', 'The component.'],
  ['componentType', 'String', 'ShowVideo, TextInput, …'],
  ['stateId', 'String', 'Its state.'],
  ['timestamp', 'DateTime', 'When it was shown.'],
  ['onset', 'Float', 'Milliseconds from the experiment start.'],
  ['config', 'JSON', 'The component configuration.'],
  ['variables', 'JSON', 'The variables snapshot at display time.'],
  ['response', 'JSON', 'What the participant answered.'],
  ['completed', 'Boolean', 'Whether it was completed.'],
]);
