import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { issueField } from '../src/schema/mutations.ts';
import { startStack, type Stack } from './helpers/stack.ts';

/**
 * An experiment as the Python SDK's typed builder writes it: `Experiment(...).model_dump(by_alias=True,
 * exclude_none=True)` — camelCase keys in the models' field order, a focus component's `type`, `config`
 * and generated `id`, roles with `mode` and `personaId`, and `agentConfig.roleOverrides` as prompt layers.
 */
const SDK_EXPERIMENT = {
  name: 'Joint film rating',
  description: 'Dyads watch a clip, then rate it; one partner is an AI agent.',
  requiredParticipants: 2,
  runtime: 'v2',
  agentConfig: {
    roleOverrides: { partner: { objective: 'Agree on a rating with the viewer', examples: ["I'd say six."] } },
    pacing: { minDelayMs: 500 },
    seed: 7,
  },
  randomizeStates: false,
  states: [
    {
      id: 'welcome',
      name: 'Welcome',
      order: 0,
      focusComponent: { type: 'showtext', config: { text: 'Welcome!' }, id: '3f2a9c1b' },
      transitionRules: { type: 'manual' },
    },
    {
      id: 'film',
      name: 'Film',
      order: 1,
      focusComponent: { type: 'showvideo', config: { url: 'https://cdn.example.org/clip.mp4' }, id: 'a1b2c3d4' },
      transitionRules: { type: 'timed', durationMs: 120000 },
      globalComponentsVisibility: { videochat: false },
    },
    {
      id: 'rate',
      name: 'Rate',
      order: 2,
      focusComponent: { type: 'vasrating', config: { prompt: 'How moving was it?', outputVariable: 'moved' }, id: '0c9d8e7f' },
    },
  ],
  roles: {
    viewer: { name: 'Viewer', participantCount: 1, mode: 'human' },
    partner: { name: 'AI partner', participantCount: 1, mode: 'agent', personaId: 'psn_demo_partner' },
  },
  globalComponents: { videochat: { enabled: true }, textchat: {} },
  variables: { condition: 'A' },
  waitingRoomConfig: { maxWaitTimeMs: 300000, countdownTimeMs: 5000 },
  disconnectTimeout: { enabled: true, durationMs: 30000, autoReconnectDelay: 2000 },
  completionScreenDurationMs: 5000,
  consentFormEnabled: true,
  consentFormTitle: 'Consent',
  consentFormContent: '<p>Do you agree?</p>',
  instructionsEnabled: true,
  instructionsTitle: 'How it works',
  instructionsContent: '<p>Watch, then rate.</p>',
  instructionsPages: [{ title: 'Page 1', content: '<p>Watch the clip.</p>' }],
  postExperimentQuestionnaire: { enabled: true, questions: [{ id: 'q1', text: 'Anything else?', type: 'text' }] },
};

const CREATE = 'mutation($experiment: ExperimentInput!) { createExperiment(input: $experiment) { experimentId definition } }';
const VALIDATE = 'mutation($experiment: ExperimentPatch!) { validateExperiment(input: $experiment) { valid errors { field message } } }';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack.close());
beforeEach(() => stack.sim.stats.reset());

const sent = () => stack.sim.stats.requests.map((r) => ({ method: r.method, path: r.path, body: r.body }));

describe('experiments in the SDK’s shape', () => {
  it('creates one from the SDK’s JSON passed unchanged, sends exactly it upstream, and reads it back equal', async () => {
    const created = await stack.gql<{ createExperiment: { experimentId: string; definition: unknown } }>(CREATE, {
      variables: { experiment: SDK_EXPERIMENT },
    });
    expect(created.body.errors).toBeUndefined();
    const id = created.body.data?.createExperiment.experimentId ?? '';
    expect(created.body.data?.createExperiment.definition).toEqual(SDK_EXPERIMENT);
    expect(sent()).toEqual([{ method: 'POST', path: '/api/v3/experiments', body: SDK_EXPERIMENT }]);

    const read = await stack.gql<{ experiment: { definition: unknown; name: string; requiredParticipants: number } }>(
      `{ experiment(id: "${id}") { definition name requiredParticipants } }`,
    );
    expect(read.body.data?.experiment).toEqual({ definition: SDK_EXPERIMENT, name: SDK_EXPERIMENT.name, requiredParticipants: 2 });
  });

  it('updates with part of the SDK’s JSON and sends only those fields', async () => {
    const created = await stack.gql<{ createExperiment: { experimentId: string } }>(CREATE, { variables: { experiment: SDK_EXPERIMENT } });
    const id = created.body.data?.createExperiment.experimentId ?? '';
    stack.sim.stats.reset();
    const patch = {
      states: [{ id: 'only', focusComponent: { type: 'likertscale', config: { prompt: 'Fun?', outputVariable: 'fun', scalePoints: 7 } } }],
      agentConfig: { roleOverrides: { partner: { guidance: 'Be brief.' } }, seed: 8 },
    };
    const updated = await stack.gql<{ updateExperiment: { definition: Record<string, unknown> } }>(
      `mutation($patch: ExperimentPatch!) { updateExperiment(id: "${id}", input: $patch) { definition } }`,
      { variables: { patch } },
    );
    expect(updated.body.errors).toBeUndefined();
    expect(updated.body.data?.updateExperiment.definition).toEqual({ ...SDK_EXPERIMENT, ...patch });
    expect(sent()).toEqual([{ method: 'PUT', path: `/api/v3/experiments/${id}`, body: patch }]);
  });

  it('validates: valid, or every upstream error with the path of its field', async () => {
    const valid = await stack.gql(VALIDATE, { variables: { experiment: SDK_EXPERIMENT } });
    expect(valid.body.data).toEqual({ validateExperiment: { valid: true, errors: [] } });
    const invalid = await stack.gql(VALIDATE, {
      variables: {
        experiment: {
          requiredParticipants: 0,
          waitingRoomConfig: { maxWaitTimeMs: -1 },
          states: [
            { id: 's1', focusComponent: { type: 'showtext', config: 'Hello' } },
            { id: 's1', order: -2 },
          ],
          runtime: 'v3',
        },
      },
    });
    expect(invalid.body.data).toEqual({
      validateExperiment: {
        valid: false,
        errors: [
          { field: 'name', message: 'name is required and must be a non-empty string' },
          { field: 'requiredParticipants', message: 'requiredParticipants must be a positive integer' },
          { field: 'waitingRoomConfig.maxWaitTimeMs', message: 'maxWaitTimeMs must be an integer >= 0' },
          { field: 'states[0].focusComponent.config', message: 'config must be an object' },
          { field: 'states[1].id', message: 'duplicate state id s1' },
          { field: 'states[1].order', message: 'order must be an integer >= 0' },
          { field: 'runtime', message: 'runtime must be one of v1, v2' },
        ],
      },
    });
    expect(sent().map((r) => [r.method, r.path])).toEqual([
      ['POST', '/api/v3/experiments/validate'],
      ['POST', '/api/v3/experiments/validate'],
    ]);
  });

  it('reads a seeded experiment in the same shape, which validates unchanged as input', async () => {
    const read = await stack.gql<{ experiment: { definition: Record<string, unknown> } }>(
      '{ experiment(id: "exp_joint02") { definition } }',
    );
    const definition = read.body.data?.experiment.definition ?? {};
    expect(Object.keys(definition)).toEqual(['name', 'description', 'requiredParticipants', 'states', 'roles', 'runtime']);
    expect((definition.states as unknown[])[0]).toEqual({
      id: 'state_welcome',
      name: 'Welcome',
      order: 0,
      focusComponent: { id: 'cmp_welcome_1', type: 'showvideo', config: { autoplay: true, controls: false } },
    });
    const checked = await stack.gql(VALIDATE, { variables: { experiment: definition } });
    expect(checked.body.data).toEqual({ validateExperiment: { valid: true, errors: [] } });
  });

  it('reads the field of an upstream error from field, path or a JSON-schema instancePath', () => {
    expect(issueField({ field: 'roles.bot.mode', message: 'x' })).toBe('roles.bot.mode');
    expect(issueField({ path: ['states', 2, 'focusComponent', 'type'] })).toBe('states[2].focusComponent.type');
    expect(issueField({ instancePath: '/states/0/id' })).toBe('states[0].id');
    expect(issueField({ path: 'name' })).toBe('name');
    expect(issueField({ instancePath: '', message: 'must have required property name' })).toBeNull();
  });

  it('refuses an unknown field anywhere as a GraphQL error, sending nothing upstream', async () => {
    const cases: [unknown, string][] = [
      [{ ...SDK_EXPERIMENT, settings: { language: 'en' } }, 'Field "settings" is not defined by type "ExperimentInput".'],
      [
        { ...SDK_EXPERIMENT, states: [{ id: 's1', focusComponent: { type: 'showtext', colour: 'red' } }] },
        'Field "colour" is not defined by type "FocusComponentInput".',
      ],
      [
        { ...SDK_EXPERIMENT, states: [{ id: 's1', focusComponent: { type: 'ShowText' } }] },
        'Value "ShowText" does not exist in "FocusComponentType" enum. Did you mean the enum value "showtext"?',
      ],
      [
        { ...SDK_EXPERIMENT, roles: { viewer: { name: 'Viewer', colour: 'red' } } },
        "ExperimentRoles entry 'viewer' has an unknown field 'colour' (a role has: name, participantCount, mode, personaId)",
      ],
      [{ ...SDK_EXPERIMENT, roles: { viewer: { mode: 'robot' } } }, "ExperimentRoles entry 'viewer'.mode must be one of human, agent"],
      [
        { ...SDK_EXPERIMENT, agentConfig: { roleOverrides: { partner: 'Be brief.' } } },
        "RoleOverrides entry 'partner' must be an object (a prompt layer has: persona, objective, guidance, examples, additionalInstructions)",
      ],
      [
        { ...SDK_EXPERIMENT, states: [{ id: 's1', globalComponentsVisibility: { videochat: 'no' } }] },
        "ComponentVisibility entry 'videochat' must be true or false",
      ],
      [{ ...SDK_EXPERIMENT, globalComponents: { hologram: {} } }, 'Field "hologram" is not defined by type "GlobalComponentsInput".'],
    ];
    for (const [experiment, reason] of cases) {
      const res = await stack.gql(CREATE, { variables: { experiment } });
      expect(res.body.data).toBeUndefined();
      expect(res.body.errors).toHaveLength(1);
      expect(res.body.errors?.[0]?.message.endsWith(`; ${reason}`), res.body.errors?.[0]?.message).toBe(true);
    }
    expect(stack.sim.stats.total).toBe(0);
  });

  it('checks the schema’s bounds, blank names and repeated state ids before the upstream', async () => {
    const cases: [unknown, string][] = [
      [{ ...SDK_EXPERIMENT, name: ' ' }, "'name' must not be empty"],
      [{ ...SDK_EXPERIMENT, requiredParticipants: 0 }, "'requiredParticipants' must be at least 1"],
      [{ ...SDK_EXPERIMENT, disconnectTimeout: { durationMs: -5 } }, "'disconnectTimeout.durationMs' must be at least 0"],
      [
        { ...SDK_EXPERIMENT, states: [{ id: 'a' }, { id: 'b', transitionRules: { durationMs: -1 } }] },
        "'states[1].transitionRules.durationMs' must be at least 0",
      ],
      [{ ...SDK_EXPERIMENT, states: [{ id: 'a' }, { id: 'a' }] }, "'states[1].id' repeats the state id a"],
      [{ ...SDK_EXPERIMENT, states: [{ id: '' }] }, "'states[0].id' must not be empty"],
    ];
    for (const [experiment, message] of cases) {
      const res = await stack.gql(CREATE, { variables: { experiment } });
      expect(res.body.errors?.[0]).toMatchObject({ message, extensions: { code: 'BAD_USER_INPUT' } });
    }
    expect(stack.sim.stats.total).toBe(0);
  });

  it('makes an experiment that passes the agent deployment preflight', async () => {
    const created = await stack.gql<{ createExperiment: { experimentId: string } }>(CREATE, { variables: { experiment: SDK_EXPERIMENT } });
    const id = created.body.data?.createExperiment.experimentId ?? '';
    const deployed = await stack.gql<{
      createDeployment: { type: string; status: string; deployment: { experiment: { experimentId: string } } };
    }>(
      `mutation { createDeployment(input: { experimentId: "${id}", name: "Agent pilot", rooms: 1, budgetUsd: 5 }) { type status deployment { experiment { experimentId } } } }`,
    );
    expect(deployed.body.errors).toBeUndefined();
    expect(deployed.body.data?.createDeployment).toEqual({
      type: 'agent-only',
      status: 'active',
      deployment: { experiment: { experimentId: id } },
    });
    // Without the runtime the SDK sends for agents, the same experiment fails it.
    const { runtime: _runtime, ...human } = SDK_EXPERIMENT;
    const v1 = await stack.gql<{ createExperiment: { experimentId: string } }>(CREATE, { variables: { experiment: human } });
    const refused = await stack.gql(
      `mutation { createDeployment(input: { experimentId: "${v1.body.data?.createExperiment.experimentId ?? ''}", name: "x", rooms: 1, budgetUsd: 5 }) { status } }`,
    );
    expect(refused.body.errors?.[0]).toMatchObject({
      message: 'Agent role preflight failed',
      extensions: { code: 'BAD_USER_INPUT', preflight: [{ role: null, reason: 'Agent rooms need runtime "v2"; the experiment has null' }] },
    });
  });
});
