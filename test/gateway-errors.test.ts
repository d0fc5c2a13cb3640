import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { nodes, startStack, type Stack } from './helpers/stack.ts';
import { EVENTS_ONLY, FULL, OTHER, READONLY } from './helpers/simulator.ts';

const EXP = 'exp_movie01';
const ROOM = 'room_movie01_001';
let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack.close());
beforeEach(() => stack.sim.stats.reset());

describe('keys', () => {
  it('refuses an operation without a key with UNAUTHENTICATED before any upstream call', async () => {
    const res = await stack.gql(`{ experiment(id: "${EXP}") { name } }`, { key: null });
    expect(res.status).toBe(401);
    expect(res.body.errors).toEqual([
      {
        message: 'An API key is required: send it in the X-API-Key header (or Authorization: Bearer <key>)',
        extensions: { code: 'UNAUTHENTICATED' },
      },
    ]);
    expect(res.body.data).toBeUndefined();
    expect(stack.sim.stats.total).toBe(0);
  });

  it('answers introspection and __typename without a key', async () => {
    const res = await stack.gql('query { __typename __schema { queryType { name } } ... on Query { __typename } }', { key: null });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ __typename: 'Query', __schema: { queryType: { name: 'Query' } } });
    expect(stack.sim.stats.total).toBe(0);
  });

  it('forwards X-API-Key, or a Bearer token, as X-API-Key upstream', async () => {
    await stack.gql(`{ experiment(id: "${EXP}") { name } }`, { key: READONLY });
    await stack.gql(`{ experiment(id: "${EXP}") { name } }`, { key: null, headers: { authorization: `Bearer ${EVENTS_ONLY}` } });
    expect(stack.sim.stats.requests.map((r) => r.key)).toEqual(['demo_readonly', 'demo_events']);
  });

  it('sends each operation only its own key, even when operations run at once', async () => {
    const keys = [FULL, READONLY, EVENTS_ONLY, OTHER];
    const experimentOf = (key: string) => (key === OTHER ? 'exp_other01' : EXP);
    const results = await Promise.all(
      Array.from({ length: 24 }, (_, i) => {
        const key = keys[i % keys.length] ?? FULL;
        return stack.gql<{ experiment: { ownerId: string; events: { totalCount: number } } }>(
          `{ experiment(id: "${experimentOf(key)}") { ownerId events(first: 5) { totalCount } } }`,
          { key, headers: { 'x-request-id': `req-${i}-${key.slice(-6)}` } },
        );
      }),
    );
    results.forEach((res, i) => {
      const key = keys[i % keys.length];
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data?.experiment.ownerId).toBe(key === OTHER ? 'user_other' : 'user_demo');
    });
    const names: Record<string, string> = {
      [FULL]: 'demo_full',
      [READONLY]: 'demo_readonly',
      [EVENTS_ONLY]: 'demo_events',
      [OTHER]: 'demo_other',
    };
    for (const r of stack.sim.stats.requests) {
      const key = keys.find((k) => r.requestId?.endsWith(k.slice(-6)));
      expect(key).toBeDefined();
      expect(r.key).toBe(names[key ?? '']);
    }
    // Identical GETs of one key in flight at once go upstream once (coalesced); never across keys.
    const sent: Record<string, number> = {};
    results.forEach((res, i) => {
      const name = names[keys[i % keys.length] ?? ''] ?? '';
      const cost = res.body.extensions?.upstream;
      sent[name] = (sent[name] ?? 0) + (cost?.requests ?? 0);
      expect((cost?.requests ?? 0) + (cost?.coalesced ?? 0) + (cost?.cacheHits ?? 0)).toBe(2);
    });
    expect(stack.sim.stats.byKey()).toEqual(sent);
    expect(Object.keys(sent).sort()).toEqual(['demo_events', 'demo_full', 'demo_other', 'demo_readonly']);
  });

  it('answers an unknown key like a missing one: HTTP 401, UNAUTHENTICATED, one upstream request, never echoed', async () => {
    const res = await stack.gql(`{ experiment(id: "${EXP}") { name } a: experiments { totalCount } b: room(id: "${ROOM}") { roomId } }`, {
      key: 'hst_live_super_secret_value',
    });
    expect(res.status).toBe(401);
    expect(res.body.errors?.[0]?.extensions).toEqual({
      code: 'UNAUTHENTICATED',
      upstream: { status: 401, code: 'AUTHENTICATION_ERROR', details: {} },
    });
    expect(res.body.errors?.every((e) => e.extensions?.code === 'UNAUTHENTICATED')).toBe(true);
    expect(JSON.stringify(res.body)).not.toContain('super_secret');
    // The key goes upstream one request at a time until the upstream confirms it: the first refusal ends the others.
    expect(stack.sim.stats.total).toBe(1);
    expect(stack.sim.stats.requests.every((r) => r.status === 401)).toBe(true);

    // Mutation fields run one after another: after the first refusal the second is refused without a request.
    stack.sim.stats.reset();
    const serial = await stack.gql(
      'mutation { a: validateExperiment(input: { name: "x" }) { valid } b: validateExperiment(input: { name: "y" }) { valid } }',
      {
        key: 'hst_live_another_secret_value',
      },
    );
    expect(serial.status).toBe(401);
    expect(serial.body.errors?.map((e) => [e.path?.[0], e.extensions?.code, e.extensions?.outcome])).toEqual([
      ['a', 'UNAUTHENTICATED', 'NOT_APPLIED'],
      ['b', 'UNAUTHENTICATED', 'NOT_APPLIED'],
    ]);
    expect(stack.sim.stats.total).toBe(1);
  });
});

describe('upstream errors', () => {
  it('gives partial data when one field lacks a scope: the events still arrive', async () => {
    const res = await stack.gql<{ room: { events: { totalCount: number }; recordings: null; chatMessages: null } }>(
      `{ room(id: "${ROOM}") { events(first: 1) { totalCount } recordings(first: 1) { totalCount } chatMessages(first: 1) { totalCount } } }`,
      { key: EVENTS_ONLY },
    );
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ room: { events: { totalCount: 90 }, recordings: null, chatMessages: null } });
    expect(res.body.errors?.map((e) => ({ path: e.path, message: e.message, ext: e.extensions }))).toEqual([
      {
        path: ['room', 'recordings'],
        message: 'Insufficient scopes. Required: read:recordings',
        ext: {
          code: 'FORBIDDEN',
          upstream: {
            status: 403,
            code: 'FORBIDDEN',
            details: { required: ['read:recordings'], provided: ['read:events', 'read:experiments'] },
          },
        },
      },
      {
        path: ['room', 'chatMessages'],
        message: 'Insufficient scopes. Required: read:chat',
        ext: {
          code: 'FORBIDDEN',
          upstream: { status: 403, code: 'FORBIDDEN', details: { required: ['read:chat'], provided: ['read:events', 'read:experiments'] } },
        },
      },
    ]);
  });

  it("answers FORBIDDEN for another user's experiment", async () => {
    const res = await stack.gql(`{ experiment(id: "${EXP}") { name } }`, { key: OTHER });
    expect(res.body.data).toEqual({ experiment: null });
    expect(res.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('maps an upstream 400 to BAD_USER_INPUT with its details', async () => {
    const res = await stack.gql('mutation { deleteExperiment(id: "exp_movie01") { deleted } }');
    expect(res.body.errors?.[0]).toMatchObject({
      message: 'The experiment has collected data; pass skipDataCheck=true to delete it anyway',
      extensions: {
        code: 'BAD_USER_INPUT',
        upstream: { status: 400, code: 'VALIDATION_ERROR', details: { roomCount: 4, participantCount: 12 } },
      },
    });
  });
});

describe('upstream faults', () => {
  let faulty: Stack;
  afterEach(() => faulty.close());

  it('maps 429 to RATE_LIMITED with retryAfter', async () => {
    faulty = await startStack({ rateLimit: { enabled: true, perHour: 1000, perMinute: 1 } });
    await faulty.gql(`{ experiment(id: "${EXP}") { name } }`);
    const res = await faulty.gql(`{ experiment(id: "${EXP}") { name } }`);
    const ext = res.body.errors?.[0]?.extensions ?? {};
    expect(ext.code).toBe('RATE_LIMITED');
    expect(ext.retryAfter).toBeGreaterThanOrEqual(1);
    expect(ext.retryAfter).toBeLessThanOrEqual(60);
    expect(ext.upstream).toMatchObject({ status: 429, code: 'RATE_LIMIT_EXCEEDED' });
  });

  // A 5xx's own text is not passed on (issue 9, item 12): its status and code are.
  it.each([
    ['http500', 500, 'INTERNAL_SERVER_ERROR'],
    ['http503', 503, 'INTERNAL_SERVER_ERROR'],
    ['html502', 502, null],
  ] as const)('maps %s to UPSTREAM_ERROR', async (mode, status, code) => {
    faulty = await startStack({ faults: { rate: 1, modes: [mode], stallMs: 1000 } });
    const res = await faulty.gql(`{ experiment(id: "${EXP}") { name } }`);
    expect(res.status).toBe(200);
    expect(res.body.errors?.[0]).toMatchObject({
      message: `The HyperStudy API answered HTTP ${status}`,
      extensions: { code: 'UPSTREAM_ERROR', upstream: { status, code, details: {} } },
    });
  });

  it('maps a dropped connection to UPSTREAM_ERROR', async () => {
    faulty = await startStack({ faults: { rate: 1, modes: ['drop'], stallMs: 1000 } });
    const res = await faulty.gql(`{ experiment(id: "${EXP}") { name } }`);
    expect(res.body.errors?.[0]).toMatchObject({
      message: 'The HyperStudy API could not be reached',
      extensions: { code: 'UPSTREAM_ERROR', upstream: { status: null } },
    });
  });

  it('maps a stalled upstream to UPSTREAM_TIMEOUT within the configured timeout', async () => {
    faulty = await startStack({ faults: { rate: 1, modes: ['stall'], stallMs: 10_000 } }, { UPSTREAM_TIMEOUT_MS: '300' });
    const started = Date.now();
    const res = await faulty.gql(`{ experiment(id: "${EXP}") { name } }`);
    expect(res.body.errors?.[0]).toMatchObject({
      message: 'The HyperStudy API did not answer in time',
      extensions: { code: 'UPSTREAM_TIMEOUT' },
    });
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('bad arguments never reach the upstream', () => {
  it.each([
    ['events(first: 1001)', "'first' must be between 0 and 1000, got 1001", 'first'],
    ['events(last: -1)', "'last' must be between 0 and 1000, got -1", 'last'],
    ['events(after: "bm9wZQ")', "'after' is not a cursor this connection gave out", 'after'],
    ['events(before: "!!")', "'before' is not a cursor this connection gave out", 'before'],
    ['events(startTime: "2024-10-02T00:00:00Z", endTime: "2024-10-01T00:00:00Z")', "'startTime' must not be after 'endTime'", 'startTime'],
    ['syncMetrics(aggregationWindow: 5)', "'aggregationWindow' must be between 100 and 3600000 ms, got 5", 'aggregationWindow'],
    ['components(componentType: "")', "'componentType' must not be blank", 'componentType'],
    ['components(stateId: "  ")', "'stateId' must not be blank", 'stateId'],
    ['events(deploymentId: "")', "'deploymentId' must not be blank", 'deploymentId'],
  ])('%s', async (field, message, argument) => {
    const res = await stack.gql(`{ room(id: "${ROOM}") { ${field} { totalCount } } }`);
    expect(res.body.errors).toEqual([
      expect.objectContaining({ message, extensions: expect.objectContaining({ code: 'BAD_USER_INPUT', argument }) }),
    ]);
    // Only the room itself was fetched.
    expect(stack.sim.stats.byPath()).toEqual({ [`/api/v3/data/rooms/room/${ROOM}`]: 1 });
  });

  it.each([
    ['{ experiment(id: "") { name } }', 'id'],
    ['{ room(id: "  ") { roomId } }', 'id'],
    ['{ participant(id: "", roomId: "room_movie01_001") { name } }', 'id'],
    ['{ participant(id: "ppt_x", roomId: " room_movie01_001") { name } }', 'roomId'],
    ['mutation { updateExperiment(id: "", input: { name: "x" }) { name } }', 'id'],
    ['mutation { deleteExperiment(id: " ") { deleted } }', 'id'],
    [`{ node(id: "${Buffer.from('Experiment:').toString('base64')}") { id } }`, 'id'],
    [`{ node(id: "${Buffer.from('Participant:["room_movie01_001",""]').toString('base64')}") { id } }`, 'id'],
    // Dot segments would be normalised upstream into another route (`/experiments/.` is the list).
    ['{ experiment(id: ".") { name } }', 'id'],
    ['{ room(id: "..") { roomId } }', 'id'],
    ['mutation { deleteExperiment(id: ".") { deleted } }', 'id'],
    ['{ participant(id: "..", roomId: "room_movie01_001") { name } }', 'id'],
    ['{ experiment(id: "exp\\u0000") { name } }', 'id'],
    [`{ experiment(id: "${'x'.repeat(513)}") { name } }`, 'id'],
  ])('refuses an id that is not one plain path segment: %s', async (query, argument) => {
    const res = await stack.gql(query);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument });
    expect(res.body.errors?.[0]?.message).toBe(
      `'${argument}' must be an id: not blank, '.' or '..', without surrounding spaces or control characters, at most 512 characters`,
    );
    expect(stack.sim.stats.total).toBe(0);
  });

  it('refuses an id with a lone surrogate on its own field; its siblings still answer', async () => {
    const res = await stack.gql<{ bad: unknown; good: { experimentId: string } }>(
      'query($id: ID!) { bad: experiment(id: $id) { name } good: experiment(id: "exp_movie01") { experimentId } }',
      { variables: { id: 'exp_\ud800' } },
    );
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ bad: null, good: { experimentId: 'exp_movie01' } });
    expect(res.body.errors).toEqual([
      expect.objectContaining({ path: ['bad'], extensions: { code: 'BAD_USER_INPUT', argument: 'id', value: 'exp_\ufffd' } }),
    ]);
    expect(stack.sim.stats.requests.map((r) => r.path)).toEqual(['/api/v3/experiments/exp_movie01']);
  });

  it.each([
    ['not a node id', 'bm90IGFuIGlk'],
    ['a node id of a type the graph does not have', Buffer.from('Widget:1').toString('base64')],
  ])('refuses %s with BAD_USER_INPUT', async (_what, id) => {
    const res = await stack.gql('query($id: ID!) { node(id: $id) { id } }', { variables: { id } });
    expect(res.body.errors?.[0]).toMatchObject({
      message: 'Not a node id this API gave out',
      extensions: { code: 'BAD_USER_INPUT', argument: 'id' },
    });
    expect(stack.sim.stats.total).toBe(0);
  });

  it('rejects values the schema does not allow (bad DateTime, unknown enum, a category that is no name) before execution', async () => {
    for (const field of [
      'events(startTime: "yesterday")',
      'events(category: 42)',
      'events(category: " media")',
      'participants(completionCode: WINNER)',
    ]) {
      const res = await stack.gql(`{ room(id: "${ROOM}") { ${field} { totalCount } } }`);
      expect(res.status, field).toBe(400);
      expect(res.body.errors?.[0]?.extensions?.code, field).toBe('GRAPHQL_VALIDATION_FAILED');
    }
    expect(stack.sim.stats.total).toBe(0);
  });

  it('answers an empty connection for a before cursor at or ahead of after', async () => {
    const res = await stack.gql<{ room: { events: unknown } }>(
      `{ room(id: "${ROOM}") { events(after: "${Buffer.from('offset:5').toString('base64url')}", before: "${Buffer.from('offset:3').toString('base64url')}") { totalCount edges { cursor } } } }`,
    );
    expect(nodes(res.body.data?.room.events)).toEqual([]);
  });
});
