import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { categoryWarning, eventCategory, nearCategory } from '../src/spec/params.ts';
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
