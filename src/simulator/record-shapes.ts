/**
 * Record shapes the seed generator and the live mode both build, so that a live record reads exactly
 * like a seeded one. Each helper draws its random values in a fixed order (seeded data depends on it).
 */
import type { JsonObject } from './model.ts';
import type { Random } from './random.ts';

const iso = (ms: number): string => new Date(ms).toISOString();

/** An event's fields from `componentType` on; draws the media content, the duration and the response, in that order. */
export function eventFields(
  rng: Random,
  o: {
    eventType: string;
    category: string;
    state: { id: string; name: string; components: JsonObject[] };
    role: unknown;
    withResponse: boolean;
  },
): JsonObject {
  const component = o.state.components[0];
  return {
    componentType: o.category === 'component' ? String(component?.type ?? 'ShowVideo') : null,
    componentId: o.category === 'component' ? String(component?.id ?? 'cmp_unknown') : null,
    content: o.category === 'media' ? `stimulus_${rng.int(1, 6)}.mp4` : `${o.eventType} (${o.state.name})`,
    stateName: o.state.name,
    stateId: o.state.id,
    participantRole: typeof o.role === 'string' ? o.role : null,
    duration: o.category === 'media' || o.category === 'state' ? rng.int(500, 90_000) : null,
    response: o.withResponse ? { value: rng.int(1, 7), responseTime: rng.int(300, 8_000) } : null,
  };
}

export interface SparseRatingDraws {
  /** The rating's position among the participant's ratings (Likert on odd positions). */
  i: number;
  raw: number;
  /** Milliseconds from the room's start, clock offset applied. */
  onset: number;
  roomStartedAt: number;
  clockOffsetApplied: number;
  responseTime: number;
  stimulusTime: number;
  stimulusId: string;
  mediaPauseOnset: number;
  mediaResumeOnset: number;
  /** The participant's earlier ratings: stimulus id → raw value. */
  previous: JsonObject;
}

/** A sparse rating's fields from `stateId` on, in the SDK 0.2.2 fixture's shape; draws the state's remaining duration. */
export function sparseRatingFields(rng: Random, d: SparseRatingDraws): JsonObject {
  const likert = d.i % 2 === 1;
  const scale = likert ? { min: 1, max: 7 } : { min: 0, max: 100 };
  const time = d.roomStartedAt + d.onset;
  const ratingEndOnset = d.onset + d.responseTime;
  return {
    stateId: 'state_rating',
    stimulusId: d.stimulusId,
    timestamp: iso(time),
    stateStartTime: iso(time - d.stimulusTime),
    onset: d.onset,
    rawOnset: d.onset + d.clockOffsetApplied,
    clockOffsetApplied: d.clockOffsetApplied,
    ratingEndOnset,
    responseTime: d.responseTime,
    stimulusTime: d.stimulusTime,
    stateDuration: d.stimulusTime + d.responseTime + rng.int(2_000, 30_000),
    value: (d.raw / scale.max) * 100,
    rawValue: d.raw,
    scale,
    confidence: null,
    type: 'sparse',
    metadata: {
      question: likert ? 'How engaged were you?' : 'How intense was this clip?',
      dimension: likert ? 'engagement' : 'intensity',
      componentType: likert ? 'LikertScale' : 'VASRating',
      sampleIndex: d.i,
    },
    sparseRatingData: {
      videoId: d.stimulusId,
      pauseIndex: d.i,
      videoRelativeTime: d.stimulusTime / 1000,
      pauseTimestamp: d.roomStartedAt + d.mediaPauseOnset,
      componentType: likert ? 'likertscale' : 'vasrating',
      componentData: { value: d.raw },
      previousRatings: Object.keys(d.previous).length === 0 ? null : { ...d.previous },
      mediaPauseOnset: d.mediaPauseOnset,
      mediaResumeOnset: d.mediaResumeOnset,
      actualPauseDuration: d.mediaResumeOnset - d.mediaPauseOnset,
    },
  };
}
