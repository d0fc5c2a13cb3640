import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { categoryWarning, eventCategory, nearCategory } from '../src/spec/params.ts';
import { FULL } from './helpers/simulator.ts';
import { FAST_LIVE, PAUSED_LIVE } from './helpers/live.ts';
import { subscribeSse, type SseSubscription } from './helpers/sse.ts';
import { stackPerTest, startStack, type Stack } from './helpers/stack.ts';

const ROOM = 'room_movie01_003';
let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack.close());
beforeEach(() => stack.sim.stats.reset());
const ownStack = stackPerTest();

type Answer = { room: { events: { totalCount: number } } };
type Warnings = { upstream?: { warnings?: string[] } };
/** The category of each events listing the gateway asked the upstream for. */
const upstreamQueries = () =>
  stack.sim.stats.requests
    .filter((r) => r.path.startsWith('/api/v3/data/events/'))
    .map((r) => new URLSearchParams(r.query).get('category'));

// Issue 22, item 3: `events(category: COMPONENTS)` answered totalCount 0 with no error or warning.
describe('a category that looks like a slip of a known one', () => {
  it('in capitals is refused before any upstream call, naming the known one', async () => {
    const literal = await stack.gql(`{ room(id: "${ROOM}") { events(category: COMPONENTS) { totalCount } } }`);
    expect(literal.status).toBe(400);
    expect(literal.body.errors).toEqual([
      {
        message:
          'COMPONENTS is not a known event category: did you mean COMPONENT ("component")? ' +
          'A category of your own is given as a string in lower case, as the upstream writes categories.',
        extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
      },
    ]);
    const variable = await stack.gql('query($c: EventCategory) { room(id: "room_movie01_003") { events(category: $c) { totalCount } } }', {
      variables: { c: 'Pre-Experiment' },
    });
    expect(variable.body.errors?.[0]?.message).toBe(
      'Variable "$c" got invalid value "Pre-Experiment"; "Pre-Experiment" is not a known event category: did you mean PRE_EXPERIMENT ("pre_experiment")? ' +
        'A category of your own is given as a string in lower case, as the upstream writes categories.',
    );
    expect(stack.sim.stats.total).toBe(0);
  });

  it('is named even with introspection off (categories are documented, not schema to hide)', async () => {
    const closed = await ownStack({}, { INTROSPECTION: 'false' });
    const res = await closed.gql(`{ room(id: "${ROOM}") { events(category: Components) { totalCount } } }`);
    expect(res.body.errors?.map((e) => e.message)).toEqual([
      'Components is not a known event category: did you mean COMPONENT ("component")? ' +
        'A category of your own is given as a string in lower case, as the upstream writes categories.',
    ]);
    expect(closed.sim.stats.total).toBe(0);
  });

  it('in lower case goes upstream as given, with a warning that names the known one', async () => {
    const res = await stack.gql<Answer>(`{ room(id: "${ROOM}") { events(category: "components") { totalCount } } }`);
    expect(res.body.data?.room.events.totalCount).toBe(0);
    expect((res.body.extensions as Warnings | undefined)?.upstream?.warnings).toEqual([
      'UNKNOWN_CATEGORY: "components" is not a known event category (did you mean "component"?); it was sent as given and may match no events.',
    ]);
    expect(upstreamQueries()).toEqual(['components']);
  });

  it('leaves known categories in any spelling and custom ones alone, without a warning', async () => {
    const res = await stack.gql<Record<string, { events: { totalCount: number } }>>(
      `{ a: room(id: "${ROOM}") { events(category: COMPONENT) { totalCount } }
         b: room(id: "${ROOM}") { events(category: "Component") { totalCount } }
         c: room(id: "${ROOM}") { events(category: "blink_detector") { totalCount } }
         d: room(id: "${ROOM}") { events(category: DANCE) { totalCount } } }`,
    );
    expect(res.body.errors).toBeUndefined();
    expect((res.body.extensions as Warnings | undefined)?.upstream?.warnings).toBeUndefined();
    expect(res.body.data?.a?.events.totalCount).toBeGreaterThan(0);
    expect(res.body.data?.b).toEqual(res.body.data?.a);
    expect(res.body.data?.c?.events.totalCount).toBe(0);
    // COMPONENT and "Component" are one request upstream (identical reads in flight are shared).
    expect(upstreamQueries().sort()).toEqual(['blink_detector', 'component', 'dance']);
  });

  it('warns when events are recorded under one, and records them under it', async () => {
    const participantId = String((await stack.rest(`/data/participants/room/${ROOM}?limit=1`)).data[0]?.id);
    const res = await stack.gql<{ recordEvents: { recorded: number } }>(
      `mutation { recordEvents(events: [{ experimentId: "exp_movie01", roomId: "${ROOM}", participantId: "${participantId}", eventType: "custom.marker", category: "sytem" }]) { recorded } }`,
    );
    expect(res.body.data?.recordEvents.recorded).toBe(1);
    expect((res.body.extensions as Warnings | undefined)?.upstream?.warnings).toEqual([
      'UNKNOWN_CATEGORY: "sytem" is not a known event category (did you mean "system"?); it was sent as given and may match no events.',
    ]);
  });

  it('warns a subscription in every payload, as a query, and leaves a custom one alone', async () => {
    const live = await ownStack({ live: PAUSED_LIVE }, FAST_LIVE);
    const room = live.sim.live?.activeRooms()[0]?.roomId ?? '';
    const participantId = String((await live.rest(`/data/participants/room/${room}?limit=1`)).data[0]?.id);
    type Events = { roomEvents: { eventType: string } };
    const follow = (category: string) =>
      subscribeSse<Events>(
        live.url,
        'subscription($room: ID!, $c: EventCategory) { roomEvents(roomId: $room, category: $c) { eventType } }',
        {
          variables: { room, c: category },
        },
      );
    const subs: SseSubscription<Events>[] = [await follow('sytem'), await follow('blink_detector')];
    try {
      // The first polls (each feed's baseline read) have gone upstream with the category as given.
      const polled = () => live.sim.stats.requests.filter((r) => r.path === `/api/v3/data/events/room/${room}`);
      for (let i = 0; i < 200 && new Set(polled().map((r) => new URLSearchParams(r.query).get('category'))).size < 2; i++)
        await new Promise((r) => setTimeout(r, 25));
      const now = Date.now();
      const events = ['sytem', 'sytem', 'blink_detector'].map((category, i) => ({
        experimentId: 'exp_movie01',
        roomId: room,
        participantId,
        eventType: `custom.${category}_${i}`,
        category,
        timestamp: new Date(now + i).toISOString(),
      }));
      const written = await fetch(`${live.sim.url}/data/events/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': FULL },
        body: JSON.stringify({ events }),
      });
      expect(written.status).toBe(201);
      await Promise.all([subs[0]?.waitFor(2), subs[1]?.waitFor(1)]);
      const [typo, custom] = subs;
      expect(typo?.payloads.map((p) => p.data?.roomEvents.eventType)).toEqual(['custom.sytem_0', 'custom.sytem_1']);
      expect(typo?.payloads.map((p) => (p.extensions as Warnings | undefined)?.upstream?.warnings)).toEqual([
        ['UNKNOWN_CATEGORY: "sytem" is not a known event category (did you mean "system"?); it was sent as given and may match no events.'],
        ['UNKNOWN_CATEGORY: "sytem" is not a known event category (did you mean "system"?); it was sent as given and may match no events.'],
      ]);
      expect(typo?.payloads.every((p) => p.extensions?.live !== undefined)).toBe(true);
      expect(custom?.payloads.map((p) => p.data?.roomEvents.eventType)).toEqual(['custom.blink_detector_2']);
      expect(custom?.payloads.map((p) => p.extensions?.upstream)).toEqual([undefined]);
      expect(new Set(polled().map((r) => new URLSearchParams(r.query).get('category')))).toEqual(new Set(['sytem', 'blink_detector']));
    } finally {
      for (const sub of subs) sub.close();
    }
  });

  it('is a known category in another case or with other separators, or one or two edits away', () => {
    expect(
      ['COMPONENTS', 'components', 'pre-experiment', 'PreExperiment', 'sytem', 'questionaire', 'synk', 'sparse rating'].map(nearCategory),
    ).toEqual(['component', 'component', 'pre_experiment', 'pre_experiment', 'system', 'questionnaire', 'sync', 'sparse_rating']);
    expect(['blink_detector', 'calibration', 'dance', 'eyetracking', 'stage2'].map(nearCategory)).toEqual([null, null, null, null, null]);
    expect(eventCategory('MEDIA', 'category', true)).toBe('media');
    expect(eventCategory('DANCE', 'category', true)).toBe('dance');
    expect(eventCategory('Calibration')).toBe('Calibration');
    expect(categoryWarning('media')).toBeNull();
    expect(categoryWarning('dance')).toBeNull();
  });
});
