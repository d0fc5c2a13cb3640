/**
 * An experiment as the SDK's experiment schema describes it (tests/fixtures/experiment.schema.json of
 * the Python SDK, plus what the SDK's typed builder also sends: `runtime`, `agentConfig`, a role's
 * `mode` and `personaId`, a focus component's `id`). Field names are the schema's properties, so the
 * SDK's JSON passes unchanged as the input variable; structure that is fixed is typed (an unknown field
 * is a validation error, never sent upstream), free-form parts (`variables`, a component's `config`)
 * are JSON. Maps keyed by the caller's own names (roles, role overrides, visibility) are scalars that
 * check each entry's fields.
 */
import { GraphQLError, GraphQLScalarType, type ValueNode } from 'graphql';
import { builder, type Types } from './builder.ts';
import { badInput } from './errors.ts';
import { BoundedJSON } from './json.ts';
import type { Rec } from '../upstream/values.ts';

/** The 19 focus component types of the schema, as the upstream writes them. */
export const FOCUS_COMPONENT_TYPES = [
  'showtext',
  'showimage',
  'showvideo',
  'vasrating',
  'textinput',
  'multiplechoice',
  'waiting',
  'code',
  'continuousrating',
  'videochat',
  'textchat',
  'rapidrate',
  'audiorecording',
  'sparserating',
  'trigger',
  'ranking',
  'scannerpulserecorder',
  'likertscale',
  'gazeoverlay',
] as const;

/** The components that may run throughout an experiment (the schema's `globalComponents` keys). */
const GLOBAL_COMPONENTS = ['continuousrating', 'videochat', 'textchat', 'sparserating', 'scannerpulserecorder', 'gazeoverlay'] as const;

const ROLE_MODES = ['human', 'agent'];

type Check = (value: unknown) => string | null;
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const string: Check = (v) => (typeof v === 'string' ? null : 'must be a string');
const count: Check = (v) => (Number.isSafeInteger(v) && (v as number) >= 0 ? null : 'must be an integer of at least 0');
const oneOf =
  (allowed: readonly string[]): Check =>
  (v) =>
    typeof v === 'string' && allowed.includes(v) ? null : `must be one of ${allowed.join(', ')}`;
const strings: Check = (v) => (Array.isArray(v) && v.every((s) => typeof s === 'string') ? null : 'must be a list of strings');

/** An object whose fields are all known and each pass their check; the first problem, or null. */
const fieldsOf =
  (what: string, fields: Record<string, Check>): Check =>
  (value) => {
    if (!isObject(value)) return `must be an object (${what}: ${Object.keys(fields).join(', ')})`;
    for (const [name, field] of Object.entries(value)) {
      const check = fields[name];
      if (!check) return `has an unknown field '${name}' (${what}: ${Object.keys(fields).join(', ')})`;
      // Absent and null read the same (the SDK leaves unset fields out).
      const problem = field === null ? null : check(field);
      if (problem) return `.${name} ${problem}`;
    }
    return null;
  };

/**
 * A JSON object keyed by the caller's own names (role keys, component names), each entry checked; a
 * problem is the schema's error (a validation or variable error), naming the entry.
 */
function mapScalar(name: string, description: string, entry: Check): GraphQLScalarType {
  const check = (value: unknown): unknown => {
    if (!isObject(value)) throw new GraphQLError(`${name} must be a JSON object`);
    for (const [key, item] of Object.entries(value)) {
      const problem = entry(item);
      if (problem) throw new GraphQLError(`${name} entry '${key}'${problem.startsWith('.') ? '' : ' '}${problem}`);
    }
    return value;
  };
  return new GraphQLScalarType({
    name,
    description,
    serialize: (value) => value,
    parseValue: (value) => check(BoundedJSON.parseValue(value)),
    parseLiteral: (node: ValueNode, variables) => check(BoundedJSON.parseLiteral(node, variables)),
  });
}

builder.addScalarType(
  'ExperimentRoles',
  mapScalar(
    'ExperimentRoles',
    'Roles by key: `{ "<role>": { name, participantCount, mode: "human" | "agent", personaId } }` (an agent role names the persona that fills it).',
    fieldsOf('a role has', { name: string, participantCount: count, mode: oneOf(ROLE_MODES), personaId: string }),
  ),
);
builder.addScalarType(
  'ComponentVisibility',
  mapScalar('ComponentVisibility', 'Per-state visibility of global components: `{ "<component>": true | false }`.', (v) =>
    typeof v === 'boolean' ? null : 'must be true or false',
  ),
);
builder.addScalarType(
  'RoleOverrides',
  mapScalar(
    'RoleOverrides',
    'Per-role prompt layers, appended to the bound persona’s prompt: `{ "<role>": { persona, objective, guidance, examples, additionalInstructions } }`.',
    fieldsOf('a prompt layer has', {
      persona: string,
      objective: string,
      guidance: string,
      examples: strings,
      additionalInstructions: string,
    }),
  ),
);

const FocusComponentType = builder.enumType('FocusComponentType', {
  description: 'The component a state shows, as the upstream writes it.',
  values: FOCUS_COMPONENT_TYPES,
});

const FocusComponentInput = builder.inputType('FocusComponentInput', {
  fields: (t) => ({
    id: t.string({ description: 'The SDK makes one (8 hex digits) when it is left out.' }),
    type: t.field({ type: FocusComponentType, required: true }),
    config: t.field({ type: 'JSON', description: 'The component’s own settings (an object), checked by the upstream per type.' }),
  }),
});

const TransitionRulesInput = builder.inputType('TransitionRulesInput', {
  fields: (t) => ({
    type: t.string({ description: 'e.g. auto, manual, timed.' }),
    durationMs: t.int({ description: 'For timed transitions; at least 0.' }),
  }),
});

const StateInput = builder.inputType('StateInput', {
  description: 'One state (screen or phase) of an experiment.',
  fields: (t) => ({
    id: t.string({ required: true, description: 'Unique among the experiment’s states; not empty.' }),
    name: t.string(),
    order: t.int({ description: 'At least 0.' }),
    focusComponent: t.field({ type: FocusComponentInput }),
    transitionRules: t.field({ type: TransitionRulesInput }),
    globalComponentsVisibility: t.field({ type: 'ComponentVisibility' }),
  }),
});

const GlobalComponentsInput = builder.inputType('GlobalComponentsInput', {
  description: 'Components that run throughout the experiment, each with its configuration (an object).',
  fields: (t) => Object.fromEntries(GLOBAL_COMPONENTS.map((name) => [name, t.field({ type: 'JSON' })])),
});

const WaitingRoomConfigInput = builder.inputType('WaitingRoomConfigInput', {
  fields: (t) => ({ maxWaitTimeMs: t.int(), countdownTimeMs: t.int() }),
});

const DisconnectTimeoutInput = builder.inputType('DisconnectTimeoutInput', {
  fields: (t) => ({ enabled: t.boolean(), durationMs: t.int(), autoReconnectDelay: t.int() }),
});

const InstructionsPageInput = builder.inputType('InstructionsPageInput', {
  fields: (t) => ({ title: t.string(), content: t.string() }),
});

const PostExperimentQuestionnaireInput = builder.inputType('PostExperimentQuestionnaireInput', {
  fields: (t) => ({ enabled: t.boolean(), questions: t.field({ type: ['JSON'], description: 'Each question an object.' }) }),
});

const AgentConfigInput = builder.inputType('AgentConfigInput', {
  description: 'Experiment-level agent inputs; the bound persona stays the source of provider, model and prompt.',
  fields: (t) => ({
    roleOverrides: t.field({ type: 'RoleOverrides' }),
    pacing: t.field({ type: 'JSON' }),
    seed: t.int({ description: 'At least 0.' }),
  }),
});

/** The experiment fields every input shares; only whether `name` is required differs. */
const experimentFields = (t: PothosSchemaTypes.InputFieldBuilder<Types, 'InputObject'>) => ({
  description: t.string(),
  requiredParticipants: t.int({ description: 'At least 1.' }),
  randomizeStates: t.boolean(),
  states: t.field({ type: [StateInput] }),
  roles: t.field({ type: 'ExperimentRoles' }),
  globalComponents: t.field({ type: GlobalComponentsInput }),
  variables: t.field({ type: 'JSON', description: 'Experiment variables (an object).' }),
  waitingRoomConfig: t.field({ type: WaitingRoomConfigInput }),
  disconnectTimeout: t.field({ type: DisconnectTimeoutInput }),
  completionScreenDurationMs: t.int(),
  consentFormEnabled: t.boolean(),
  consentFormTitle: t.string(),
  consentFormContent: t.string({ description: 'HTML.' }),
  instructionsEnabled: t.boolean(),
  instructionsTitle: t.string(),
  instructionsContent: t.string({ description: 'HTML.' }),
  instructionsPages: t.field({ type: [InstructionsPageInput] }),
  postExperimentQuestionnaire: t.field({ type: PostExperimentQuestionnaireInput }),
  runtime: t.string({ description: 'The experiment runtime; agent-only deployments need "v2".' }),
  agentConfig: t.field({ type: AgentConfigInput }),
});

const SDK_SHAPE = 'Field names are the SDK’s experiment schema’s properties: the SDK’s JSON passes unchanged as the variable.';

export const ExperimentInput = builder.inputType('ExperimentInput', {
  description: `An experiment to create. ${SDK_SHAPE}`,
  fields: (t) => ({ name: t.string({ required: true }), ...experimentFields(t) }),
});

export const ExperimentPatch = builder.inputType('ExperimentPatch', {
  description: `Experiment fields to change (or to validate). ${SDK_SHAPE}`,
  fields: (t) => ({ name: t.string(), ...experimentFields(t) }),
});

/** The integer fields with a lower bound in the schema, by where they are in the experiment. */
const MINIMUMS: readonly { at: (e: Rec) => [string, unknown][]; min: number }[] = [
  { at: (e) => [['requiredParticipants', e.requiredParticipants]], min: 1 },
  { at: (e) => [['completionScreenDurationMs', e.completionScreenDurationMs]], min: 0 },
  { at: (e) => inside(e, 'waitingRoomConfig', ['maxWaitTimeMs', 'countdownTimeMs']), min: 0 },
  { at: (e) => inside(e, 'disconnectTimeout', ['durationMs', 'autoReconnectDelay']), min: 0 },
  { at: (e) => inside(e, 'agentConfig', ['seed']), min: 0 },
  {
    at: (e) =>
      statesOf(e).flatMap((s, i) => [
        [`states[${i}].order`, s.order],
        ...inside(s, 'transitionRules', ['durationMs']).map(([path, v]): [string, unknown] => [`states[${i}].${path}`, v]),
      ]),
    min: 0,
  },
];

const inside = (e: Rec, field: string, names: string[]): [string, unknown][] => {
  const o = e[field];
  return isObject(o) ? names.map((n) => [`${field}.${n}`, o[n]]) : [];
};
const statesOf = (e: Rec): Rec[] => (Array.isArray(e.states) ? e.states.filter(isObject) : []);

/**
 * What the schema refuses that GraphQL's types cannot say (bounds, a blank name or state id, a state id
 * twice), checked before a create or an update goes upstream; `argument` prefixes the field path.
 */
export function checkExperiment(body: Rec, argument: string): void {
  if (body.name !== undefined && (typeof body.name !== 'string' || body.name.trim() === ''))
    throw badInput("'name' must not be empty", `${argument}.name`);
  for (const { at, min } of MINIMUMS) {
    for (const [path, value] of at(body)) {
      if (typeof value === 'number' && value < min) throw badInput(`'${path}' must be at least ${min}`, `${argument}.${path}`, { value });
    }
  }
  const ids = new Set<string>();
  statesOf(body).forEach((state, i) => {
    const id = String(state.id);
    if (id.trim() === '') throw badInput(`'states[${i}].id' must not be empty`, `${argument}.states[${i}].id`);
    if (ids.has(id)) throw badInput(`'states[${i}].id' repeats the state id ${id}`, `${argument}.states[${i}].id`, { value: id });
    ids.add(id);
  });
}
