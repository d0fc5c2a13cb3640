/** `POST /data/events/batch`: records events (an open set of categories) that data listings then serve. */
import { ApiFailure } from '../errors.ts';
import type { JsonObject } from '../model.ts';
import { participantKey } from '../store.ts';
import { iso, requireScope, success, type ApiContext, type ApiRequest, type ApiResult } from './common.ts';

const MAX_BATCH = 100;
/** Categories are an open set upstream; only their length and characters are checked. */
const CATEGORY_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

interface FieldError extends JsonObject {
  index: number;
  field: string;
  message: string;
}

/** `POST /data/events/batch`: 1 to 100 events, all recorded or (any invalid) none. */
export async function recordBatch(ctx: ApiContext, req: ApiRequest): Promise<ApiResult> {
  requireScope(req.key, 'write:events');
  const body = await req.body();
  const events = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as { events?: unknown }).events : undefined;
  if (!Array.isArray(events)) {
    throw new ApiFailure(400, 'VALIDATION_ERROR', "Body must be an object with an 'events' array", {
      field: 'events',
      expected: 'array of 1 to 100 events',
    });
  }
  if (events.length < 1 || events.length > MAX_BATCH) {
    throw new ApiFailure(400, 'VALIDATION_ERROR', `A batch holds 1 to ${MAX_BATCH} events, got ${events.length}`, {
      field: 'events',
      count: events.length,
      max: MAX_BATCH,
    });
  }
  const errors: FieldError[] = [];
  const accepted: {
    record: JsonObject;
    roomId: string;
    participantId: string;
    experimentId: string;
    deploymentId: string;
    time: number;
  }[] = [];
  events.forEach((event: unknown, index) => {
    if (event === null || typeof event !== 'object' || Array.isArray(event)) {
      errors.push({ index, field: '', message: 'An event must be an object' });
      return;
    }
    const e = event as Record<string, unknown>;
    const text = (field: string, required: boolean): string | null => {
      const v = e[field];
      if (v === undefined || v === null) {
        if (required) errors.push({ index, field, message: `${field} is required` });
        return null;
      }
      if (typeof v !== 'string' || v === '') {
        errors.push({ index, field, message: `${field} must be a non-empty string` });
        return null;
      }
      return v;
    };
    const before = errors.length;
    const experimentId = text('experimentId', true);
    const roomId = e.roomId === undefined && e.sessionId !== undefined ? text('sessionId', true) : text('roomId', true);
    const participantId = text('participantId', true);
    const eventType = text('eventType', true);
    const category = text('category', false);
    if (category !== null && !CATEGORY_PATTERN.test(category)) {
      errors.push({ index, field: 'category', message: 'category must be 1 to 64 letters, digits, or _ . : -' });
    }
    const timestamp = text('timestamp', false);
    const time = timestamp === null ? ctx.now() : Date.parse(timestamp);
    if (Number.isNaN(time)) errors.push({ index, field: 'timestamp', message: 'timestamp must be an ISO 8601 timestamp' });
    if (e.onset !== undefined && e.onset !== null && (typeof e.onset !== 'number' || !Number.isFinite(e.onset))) {
      errors.push({ index, field: 'onset', message: 'onset must be a number of milliseconds' });
    }
    if (errors.length > before || !experimentId || !roomId || !participantId || !eventType) return;
    const room = ctx.store.rooms.get(roomId);
    const experiment = ctx.store.experiments.get(experimentId);
    if (!experiment || experiment.deleted) {
      errors.push({ index, field: 'experimentId', message: `Experiment not found: ${experimentId}` });
      return;
    }
    if (experiment.ownerId !== req.key.userId) {
      throw new ApiFailure(403, 'FORBIDDEN', 'You do not have access to this experiment', {
        resource: 'experiment',
        id: experimentId,
        index,
      });
    }
    if (!room || room.experimentId !== experimentId) {
      errors.push({ index, field: 'roomId', message: `Room ${roomId} is not a room of experiment ${experimentId}` });
      return;
    }
    if (!ctx.store.participants.has(participantKey(roomId, participantId))) {
      errors.push({ index, field: 'participantId', message: `Participant ${participantId} is not in room ${roomId}` });
      return;
    }
    const { sessionId: _legacy, ...fields } = e;
    accepted.push({
      experimentId,
      roomId,
      participantId,
      deploymentId: room.deploymentId,
      time,
      record: {
        ...(fields as JsonObject),
        id: `evt_${ctx.rng.id(14)}`,
        timestamp: iso(time),
        onset: typeof e.onset === 'number' ? e.onset : time - room.startedAt,
        experimentId,
        roomId,
        participantId,
        eventType,
        category: category ?? 'system',
      },
    });
  });
  if (errors.length > 0) {
    throw new ApiFailure(400, 'VALIDATION_ERROR', `${errors.length} event(s) failed validation; nothing was recorded`, { errors });
  }
  for (const a of accepted) {
    ctx.store.append('events', {
      experimentId: a.experimentId,
      roomId: a.roomId,
      participantId: a.participantId,
      deploymentId: a.deploymentId,
      time: a.time,
      record: a.record,
    });
  }
  return success(ctx, [{ recorded: accepted.length, eventIds: accepted.map((a) => String(a.record.id)) }], { dataType: 'events' }, 201);
}
