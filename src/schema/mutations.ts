import type { ErrorCode } from '../errors.ts';
import { objectOf } from '../loaders/fetch.ts';
import { UpstreamError } from '../upstream/errors.ts';
import { routes } from '../upstream/routes.ts';
import { upstreamId } from './ids.ts';
import { builder } from './builder.ts';
import { badInput, writeError, writeOutcome } from './errors.ts';
import { Experiment } from './refs.ts';
import { bool, int, obj, str, type Rec } from '../upstream/values.ts';
import { given, write } from './writes.ts';
import { categoryWarning } from '../spec/params.ts';
import { checkExperiment, ExperimentInput, ExperimentPatch } from './experiment-input.ts';

/** The upstream's batch size for POST /data/events/batch. */
export const EVENT_BATCH_SIZE = 100;
/** The most events one recordEvents call takes. */
export const MAX_EVENTS = 10_000;

/** An experiment body as it goes upstream: the fields given, checked (an update must change something). */
function experimentBody(input: object, argument: string, requireSomething: boolean): Rec {
  const body = given(input);
  checkExperiment(body, argument);
  if (requireSomething && Object.keys(body).length === 0) throw badInput('Give at least one field to change', argument);
  return body;
}

/**
 * Where an upstream validation error points, as a path like `states[0].focusComponent.type`: its
 * `field`, or a `path` (a string, or a list of keys and indices), or a JSON-schema `instancePath`
 * (`/states/0/id`).
 */
export function issueField(issue: Rec): string | null {
  const field = str(issue.field);
  if (field !== null) return field;
  const parts = Array.isArray(issue.path)
    ? issue.path
    : typeof issue.instancePath === 'string' && issue.instancePath !== ''
      ? issue.instancePath.split('/').slice(1)
      : null;
  if (parts === null) return str(issue.path);
  return parts.reduce<string>((at, part) => {
    const key = String(part);
    return /^\d+$/.test(key) ? `${at}[${key}]` : at === '' ? key : `${at}.${key}`;
  }, '');
}

const ValidationIssue = builder.objectRef<Rec>('ValidationIssue').implement({
  description: 'One problem the upstream found, and the field it is about.',
  fields: (t) => ({
    field: t.string({
      nullable: true,
      description: 'The path of the field in the experiment, e.g. `states[1].focusComponent.type`; null for the whole experiment.',
      resolve: (i) => issueField(i),
    }),
    message: t.string({ resolve: (i) => str(i.message) ?? '' }),
  }),
});

const ExperimentValidation = builder.objectRef<Rec>('ExperimentValidation').implement({
  description: 'The upstream dry-run validation of an experiment.',
  fields: (t) => ({
    valid: t.boolean({ resolve: (v) => bool(v.valid) ?? false }),
    errors: t.field({
      type: [ValidationIssue],
      resolve: (v) => (Array.isArray(v.errors) ? v.errors.map((e) => obj(e) ?? { message: String(e) }) : []),
    }),
  }),
});

const DeletedExperiment = builder.objectRef<Rec>('DeletedExperiment').implement({
  fields: (t) => ({
    experimentId: t.string({ resolve: (d) => str(d.id) ?? '' }),
    deleted: t.boolean({ resolve: (d) => bool(d.deleted) ?? false }),
    deletedAt: t.field({
      type: 'DateTime',
      nullable: true,
      resolve: (d) => (typeof d.deletedAt === 'string' ? new Date(d.deletedAt) : null),
    }),
  }),
});

const EventInput = builder.inputType('EventInput', {
  description: 'One event to record.',
  fields: (t) => ({
    experimentId: t.id({ required: true }),
    roomId: t.id({ required: true }),
    participantId: t.id({ required: true }),
    eventType: t.string({ required: true, description: 'For example custom.marker or component.response.' }),
    category: t.field({ type: 'EventCategory', description: 'A known category by name (SYSTEM) or any category as a string.' }),
    timestamp: t.field({ type: 'DateTime', description: 'Defaults to the time the upstream receives it.' }),
    onset: t.float(),
    componentType: t.string(),
    componentId: t.string(),
    content: t.string(),
    stateName: t.string(),
    stateId: t.string(),
    participantRole: t.string(),
    duration: t.float(),
    response: t.field({ type: 'JSON' }),
  }),
});

interface EventFailure {
  batch: number;
  indices: number[];
  code: ErrorCode;
  message: string;
  outcome: 'NOT_RECORDED' | 'UNKNOWN';
  retryAfter: number | null;
  errors: { index: number; field: string | null; message: string }[];
}

const BatchOutcome = builder.enumType('BatchOutcome', {
  values: {
    NOT_RECORDED: { description: 'The upstream refused the batch, or it was not sent: none of its events were recorded.' },
    UNKNOWN: {
      description:
        'No answer proves the batch was refused (a timeout, a dropped connection, a 5xx): it may or may not have been recorded. ' +
        'Before sending it again, read the events back (e.g. events(startTime:) of the participant) to see whether they arrived.',
    },
  } as const,
});

const EventError = builder.objectRef<EventFailure['errors'][number]>('EventError').implement({
  fields: (t) => ({
    index: t.exposeInt('index', { description: 'The position of the event in the list given to recordEvents.' }),
    field: t.exposeString('field', { nullable: true }),
    message: t.exposeString('message'),
  }),
});

const RecordEventsFailure = builder.objectRef<EventFailure>('RecordEventsFailure').implement({
  description: 'A batch that was not recorded, the events it held and why.',
  fields: (t) => ({
    batch: t.exposeInt('batch', { description: 'The batch number, from 0.' }),
    indices: t.exposeIntList('indices', { description: 'Positions in the given list of the events in this batch.' }),
    code: t.exposeString('code'),
    message: t.exposeString('message'),
    outcome: t.field({ type: BatchOutcome, resolve: (f) => f.outcome }),
    retryAfter: t.exposeInt('retryAfter', { nullable: true }),
    errors: t.field({ type: [EventError], description: 'Per-event reasons, when the upstream gave them.', resolve: (f) => f.errors }),
  }),
});

interface RecordResult {
  requested: number;
  recorded: number;
  batches: number;
  eventIds: string[];
  failures: EventFailure[];
}

const RecordEventsResult = builder.objectRef<RecordResult>('RecordEventsResult').implement({
  fields: (t) => ({
    requested: t.exposeInt('requested'),
    recorded: t.exposeInt('recorded'),
    batches: t.exposeInt('batches', { description: `Upstream batches of at most ${EVENT_BATCH_SIZE} events.` }),
    eventIds: t.exposeStringList('eventIds', { description: 'The ids of the recorded events, in order.' }),
    failures: t.field({ type: [RecordEventsFailure], resolve: (r) => r.failures }),
  }),
});

function perEventErrors(error: UpstreamError, offset: number): EventFailure['errors'] {
  const list = Array.isArray(error.details.errors) ? error.details.errors : [];
  return list.flatMap((e) => {
    const entry = obj(e);
    const index = int(entry?.index);
    return entry && index !== null ? [{ index: offset + index, field: str(entry.field), message: str(entry.message) ?? '' }] : [];
  });
}

builder.mutationType({
  fields: (t) => ({
    createExperiment: t.field({
      type: Experiment,
      args: { input: t.arg({ type: ExperimentInput, required: true }) },
      resolve: async (_root, { input }, ctx) => {
        const envelope = await write(
          ctx,
          { method: 'POST', path: routes.experiments(), body: experimentBody(input, 'input', false) },
          'creation',
        );
        return objectOf(envelope) ?? {};
      },
    }),
    updateExperiment: t.field({
      type: Experiment,
      args: { id: t.arg.id({ required: true }), input: t.arg({ type: ExperimentPatch, required: true }) },
      resolve: async (_root, { id, input }, ctx) => {
        const path = routes.experiment(upstreamId(id, 'id', 'Experiment'));
        const envelope = await write(ctx, { method: 'PUT', path, body: experimentBody(input, 'input', true) }, 'change');
        return objectOf(envelope) ?? {};
      },
    }),
    validateExperiment: t.field({
      type: ExperimentValidation,
      description:
        'Asks the upstream to validate an experiment without saving it (a dry run of createExperiment): ' +
        'every problem it finds, each with the path of its field.',
      args: { input: t.arg({ type: ExperimentPatch, required: true }) },
      resolve: async (_root, { input }, ctx) => {
        const req = { method: 'POST', path: routes.validateExperiment(), body: given(input) } as const;
        try {
          return objectOf(await ctx.session.send(req)) ?? { valid: false };
        } catch (error) {
          // An upstream that refuses an invalid experiment with 400 and its errors still answers the dry run.
          if (error instanceof UpstreamError && error.code === 'BAD_USER_INPUT' && Array.isArray(error.details.errors))
            return { valid: false, errors: error.details.errors };
          throw error instanceof UpstreamError ? writeError(error, 'validation') : error;
        }
      },
    }),
    deleteExperiment: t.field({
      type: DeletedExperiment,
      description: 'Soft-deletes an experiment. The upstream refuses one with collected data unless skipDataCheck is true.',
      args: { id: t.arg.id({ required: true }), skipDataCheck: t.arg.boolean({ defaultValue: false }) },
      resolve: async (_root, { id, skipDataCheck }, ctx) => {
        const query = skipDataCheck ? new URLSearchParams({ skipDataCheck: 'true' }) : undefined;
        return (
          objectOf(
            await write(ctx, { method: 'DELETE', path: routes.experiment(upstreamId(id, 'id', 'Experiment')), query }, 'deletion'),
          ) ?? {
            id,
            deleted: true,
          }
        );
      },
    }),
    recordEvents: t.field({
      type: RecordEventsResult,
      description: `Records any number of events (up to ${MAX_EVENTS}), sent upstream in order in batches of at most ${EVENT_BATCH_SIZE}. A batch is recorded whole or not at all; failures say which events and why.`,
      args: { events: t.arg({ type: [EventInput], required: true }) },
      resolve: async (_root, { events }, ctx) => {
        if (events.length === 0) throw badInput("'events' must hold at least one event", 'events');
        if (events.length > MAX_EVENTS)
          throw badInput(`'events' holds ${events.length} events; the most is ${MAX_EVENTS}`, 'events', { max: MAX_EVENTS });
        events.forEach((e, i) => {
          if (e.eventType.trim() === '') throw badInput(`events[${i}].eventType must not be empty`, `events[${i}].eventType`);
          const warning = typeof e.category === 'string' ? categoryWarning(e.category) : null;
          if (warning !== null) ctx.warnings.add(warning);
        });
        const result: RecordResult = { requested: events.length, recorded: 0, batches: 0, eventIds: [], failures: [] };
        let stopped: UpstreamError | null = null;
        for (let start = 0, batch = 0; start < events.length; start += EVENT_BATCH_SIZE, batch++) {
          // Each batch's bodies are made when it goes: the work is spread between the upstream's answers.
          const chunk = events.slice(start, start + EVENT_BATCH_SIZE).map((e) => given(e, true));
          const indices = chunk.map((_, i) => start + i);
          result.batches++;
          if (stopped) {
            result.failures.push({
              batch,
              indices,
              code: 'NOT_SENT',
              message: `Not sent: an earlier batch failed with ${stopped.code}`,
              outcome: 'NOT_RECORDED',
              retryAfter: stopped.retryAfter,
              errors: [],
            });
            continue;
          }
          try {
            const summary = objectOf(await ctx.session.send({ method: 'POST', path: routes.eventsBatch(), body: { events: chunk } }));
            const ids = Array.isArray(summary?.eventIds) ? summary.eventIds.map((id) => String(id)) : [];
            result.recorded += int(summary?.recorded) ?? chunk.length;
            result.eventIds.push(...ids);
          } catch (error) {
            if (!(error instanceof UpstreamError)) throw error;
            // Only an answer that proves nothing was stored (a 4xx, or not sent at all) is NOT_RECORDED.
            const unknown = writeOutcome(error) === 'UNKNOWN';
            result.failures.push({
              batch,
              indices,
              code: error.code,
              message: unknown ? `${error.message}; the batch may or may not have been recorded` : error.message,
              outcome: unknown ? 'UNKNOWN' : 'NOT_RECORDED',
              retryAfter: error.retryAfter,
              errors: perEventErrors(error, start),
            });
            // A batch's own bad events do not stop the rest; anything else (key, scope, quota, outage) does.
            if (error.code !== 'BAD_USER_INPUT') stopped = error;
          }
        }
        return result;
      },
    }),
  }),
});
