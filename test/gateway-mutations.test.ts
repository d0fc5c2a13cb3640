import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './helpers/stack.ts';
import { EVENTS_ONLY, READONLY } from './helpers/simulator.ts';

const EXP = 'exp_movie01';
const ROOM = 'room_movie01_003';
let stack: Stack;
let participantId: string;
beforeAll(async () => {
  stack = await startStack();
  participantId = String((await stack.rest(`/data/participants/room/${ROOM}?limit=1`)).data[0]?.id);
});
afterAll(() => stack.close());
beforeEach(() => stack.sim.stats.reset());

const RECORD = `mutation($events: [EventInput!]!) { recordEvents(events: $events) {
  requested recorded batches eventIds failures { batch indices code message outcome retryAfter errors { index field message } }
} }`;

type RecordResult = {
  recordEvents: {
    requested: number;
    recorded: number;
    batches: number;
    eventIds: string[];
    failures: {
      batch: number;
      indices: number[];
      code: string;
      message: string;
      outcome: string;
      retryAfter: number | null;
      errors: { index: number; field: string; message: string }[];
    }[];
  };
};

const markers = (count: number, from: number) =>
  Array.from({ length: count }, (_, i) => ({
    experimentId: EXP,
    roomId: ROOM,
    participantId,
    eventType: 'custom.marker',
    category: 'SYSTEM',
    timestamp: new Date(Date.UTC(2031, 0, 1) + (from + i) * 1000).toISOString(),
    content: `marker ${from + i}`,
  }));

describe('experiments', () => {
  it('creates, updates, validates and deletes', async () => {
    const created = await stack.gql<{ createExperiment: { experimentId: string; name: string; roomCount: number; ownerId: string } }>(
      'mutation { createExperiment(input: { name: "Gateway study", description: "made by a test", requiredParticipants: 2, states: [{ id: "s1", name: "Start" }] }) { experimentId name roomCount ownerId } }',
    );
    expect(created.body.errors).toBeUndefined();
    const made = created.body.data?.createExperiment;
    expect(made).toMatchObject({ name: 'Gateway study', roomCount: 0, ownerId: 'user_demo' });
    const id = made?.experimentId ?? '';

    const updated = await stack.gql<{ updateExperiment: unknown }>(
      `mutation { updateExperiment(id: "${id}", input: { description: "changed" }) { experimentId name description } }`,
    );
    expect(updated.body.data?.updateExperiment).toEqual({ experimentId: id, name: 'Gateway study', description: 'changed' });

    const valid = await stack.gql('mutation { validateExperiment(input: { name: "ok" }) { valid errors { field message } } }');
    expect(valid.body.data).toEqual({ validateExperiment: { valid: true, errors: [] } });
    const invalid = await stack.gql(
      'mutation { validateExperiment(input: { requiredParticipants: 0 }) { valid errors { field message } } }',
    );
    expect(invalid.body.data).toEqual({
      validateExperiment: {
        valid: false,
        errors: [
          { field: 'name', message: 'name is required and must be a non-empty string' },
          { field: 'requiredParticipants', message: 'requiredParticipants must be a positive integer' },
        ],
      },
    });

    const deleted = await stack.gql<{ deleteExperiment: { experimentId: string; deleted: boolean; deletedAt: string } }>(
      `mutation { deleteExperiment(id: "${id}") { experimentId deleted deletedAt } }`,
    );
    expect(deleted.body.data?.deleteExperiment).toMatchObject({ experimentId: id, deleted: true });
    const gone = await stack.gql(`{ experiment(id: "${id}") { name } }`);
    expect(gone.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(stack.sim.stats.requests.map((r) => `${r.method} ${r.path}${r.query ? `?${r.query}` : ''}`)).toEqual([
      'POST /api/v3/experiments',
      `PUT /api/v3/experiments/${id}`,
      'POST /api/v3/experiments/validate',
      'POST /api/v3/experiments/validate',
      `DELETE /api/v3/experiments/${id}`,
      `GET /api/v3/experiments/${id}`,
    ]);
  });

  it('deletes an experiment with data only with skipDataCheck', async () => {
    const res = await stack.gql('mutation { deleteExperiment(id: "exp_joint02", skipDataCheck: true) { experimentId deleted } }');
    expect(res.body.data).toEqual({ deleteExperiment: { experimentId: 'exp_joint02', deleted: true } });
    expect(stack.sim.stats.requests[0]?.query).toBe('skipDataCheck=true');
  });

  it('rejects bad input before the upstream, and maps missing write scope to FORBIDDEN', async () => {
    const cases = [
      ['mutation { createExperiment(input: { name: "  " }) { name } }', "'name' must not be empty"],
      [
        'mutation { createExperiment(input: { name: "x", states: [{ id: "s1" }, { id: "s1" }] }) { name } }',
        "'states[1].id' repeats the state id s1",
      ],
      [
        'mutation { createExperiment(input: { name: "x", requiredParticipants: 0 }) { name } }',
        "'requiredParticipants' must be at least 1",
      ],
      ['mutation { updateExperiment(id: "exp_movie01", input: {}) { name } }', 'Give at least one field to change'],
    ];
    for (const [query, message] of cases) {
      const res = await stack.gql(query ?? '');
      expect(res.body.errors?.[0]).toMatchObject({ message, extensions: { code: 'BAD_USER_INPUT' } });
    }
    expect(stack.sim.stats.total).toBe(0);
    const readonly = await stack.gql('mutation { createExperiment(input: { name: "x" }) { name } }', { key: READONLY });
    expect(readonly.body.errors?.[0]?.extensions).toMatchObject({
      code: 'FORBIDDEN',
      upstream: { details: { required: ['write:experiments'], provided: ['read:*'] } },
    });
  });
});

describe('recordEvents', () => {
  it('sends 250 events as 3 ordered batches of at most 100 and reports them', async () => {
    const events = markers(250, 0);
    const res = await stack.gql<RecordResult>(RECORD, { variables: { events } });
    expect(res.body.errors).toBeUndefined();
    const result = res.body.data?.recordEvents;
    expect(result).toMatchObject({ requested: 250, recorded: 250, batches: 3, failures: [] });
    expect(new Set(result?.eventIds).size).toBe(250);
    const posts = stack.sim.stats.requests.filter((r) => r.method === 'POST');
    expect(posts.map((r) => [r.path, r.status])).toEqual([
      ['/api/v3/data/events/batch', 201],
      ['/api/v3/data/events/batch', 201],
      ['/api/v3/data/events/batch', 201],
    ]);
    // Only this test's window (markers 0–249): the others record later markers of the same participant, in any order.
    const stored = await stack.rest(
      `/data/events/participant/${participantId}?roomId=${ROOM}&startTime=2031-01-01T00:00:00Z&endTime=2031-01-01T00:04:09Z`,
    );
    expect(stored.metadata.pagination.total).toBe(250);
    expect(stored.data.map((e) => e.content)).toEqual(events.map((e) => e.content));
    expect(stored.data.map((e) => e.id)).toEqual(result?.eventIds);
  });

  it('reports a failed batch precisely and still records the others', async () => {
    const events = markers(230, 1000);
    const bad = { ...events[150], participantId: 'ppt_ghost' };
    events[150] = bad as (typeof events)[number];
    const res = await stack.gql<RecordResult>(RECORD, { variables: { events } });
    const result = res.body.data?.recordEvents;
    expect(result?.requested).toBe(230);
    expect(result?.recorded).toBe(130);
    expect(result?.batches).toBe(3);
    expect(result?.eventIds).toHaveLength(130);
    expect(result?.failures).toEqual([
      {
        batch: 1,
        indices: Array.from({ length: 100 }, (_, i) => 100 + i),
        code: 'BAD_USER_INPUT',
        message: '1 event(s) failed validation; nothing was recorded',
        outcome: 'NOT_RECORDED',
        retryAfter: null,
        errors: [{ index: 150, field: 'participantId', message: `Participant ppt_ghost is not in room ${ROOM}` }],
      },
    ]);
    const stored = await stack.rest(`/data/events/participant/${participantId}?roomId=${ROOM}&startTime=2031-01-01T00:16:40Z`);
    expect(stored.data.map((e) => e.content)).toEqual([...events.slice(0, 100), ...events.slice(200)].map((e) => e.content));
  });

  it('stops after a batch fails for the key and reports the rest as not sent', async () => {
    const res = await stack.gql<RecordResult>(RECORD, { key: EVENTS_ONLY, variables: { events: markers(120, 5000) } });
    expect(res.body.data?.recordEvents).toEqual({
      requested: 120,
      recorded: 0,
      batches: 2,
      eventIds: [],
      failures: [
        {
          batch: 0,
          indices: Array.from({ length: 100 }, (_, i) => i),
          code: 'FORBIDDEN',
          message: 'Insufficient scopes. Required: write:events',
          outcome: 'NOT_RECORDED',
          retryAfter: null,
          errors: [],
        },
        {
          batch: 1,
          indices: Array.from({ length: 20 }, (_, i) => 100 + i),
          code: 'NOT_SENT',
          message: 'Not sent: an earlier batch failed with FORBIDDEN',
          outcome: 'NOT_RECORDED',
          retryAfter: null,
          errors: [],
        },
      ],
    });
    expect(stack.sim.stats.total).toBe(1);
  });

  it('never retries a write: a 5xx is UNKNOWN after one request, a refusal is NOT_APPLIED', async () => {
    stack.sim.configure({ faults: { rate: 1, modes: ['http503'] } });
    try {
      const update = await stack.gql(`mutation { updateExperiment(id: "${EXP}", input: { description: "x" }) { name } }`);
      expect(update.body.errors?.[0]?.extensions).toMatchObject({ code: 'UPSTREAM_ERROR', outcome: 'UNKNOWN' });
      expect(update.body.errors?.[0]?.message).toMatch(/the change may or may not have been applied$/);
      const recorded = await stack.gql<RecordResult>(RECORD, { variables: { events: markers(2, 900) } });
      expect(recorded.body.data?.recordEvents.failures.map((f) => [f.code, f.outcome])).toEqual([['UPSTREAM_ERROR', 'UNKNOWN']]);
      expect(stack.sim.stats.requests.map((r) => `${r.method} ${r.status}`)).toEqual(['PUT 503', 'POST 503']);
    } finally {
      stack.sim.configure({ faults: { rate: 0 } });
    }
    const refused = await stack.gql(`mutation { updateExperiment(id: "exp_other01", input: { description: "x" }) { name } }`);
    expect(refused.body.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', outcome: 'NOT_APPLIED' });
  });

  it('rejects an empty list and empty event types before the upstream', async () => {
    const empty = await stack.gql(RECORD, { variables: { events: [] } });
    expect(empty.body.errors?.[0]).toMatchObject({
      message: "'events' must hold at least one event",
      extensions: { code: 'BAD_USER_INPUT' },
    });
    const blank = await stack.gql(RECORD, { variables: { events: [{ ...markers(1, 0)[0], eventType: ' ' }] } });
    expect(blank.body.errors?.[0]?.message).toBe('events[0].eventType must not be empty');
    expect(stack.sim.stats.total).toBe(0);
  });
});
