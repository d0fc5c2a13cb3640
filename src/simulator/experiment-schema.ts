/**
 * Validation of experiment bodies as the SDK writes them (its JSON schema, draft 2020-12): only `name` is
 * required at the top and extra keys are allowed; `states[].id` is required; a focus component has one of
 * 19 lowercase types. Every problem is reported with its field path.
 */
import { FOCUS_COMPONENT_TYPES, type JsonObject } from './model.ts';

export interface FieldError extends JsonObject {
  field: string;
  message: string;
}

const GLOBAL_COMPONENTS = ['continuousrating', 'videochat', 'textchat', 'sparserating', 'scannerpulserecorder', 'gazeoverlay'];
const READ_ONLY = ['id', 'ownerId', 'ownerEmail', 'createdAt', 'updatedAt', 'roomCount', 'participantCount'];
const RUNTIMES = ['v1', 'v2'];
const ROLE_MODES = ['human', 'agent'];

type Value = unknown;
const isObject = (v: Value): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isCount = (v: Value, min: number): boolean => Number.isSafeInteger(v) && (v as number) >= min;

/** Collects errors for one body. */
class Checker {
  readonly errors: FieldError[] = [];

  fail(field: string, message: string): void {
    this.errors.push({ field, message });
  }

  /** Checks `value` (when present) with `ok`, failing with `message`. */
  check(field: string, value: Value, ok: (v: Value) => boolean, message: string): void {
    if (value !== undefined && !ok(value)) this.fail(field, `${field.split('.').pop() ?? field} ${message}`);
  }

  string(field: string, value: Value, nullable = false): void {
    this.check(field, value, (v) => typeof v === 'string' || (nullable && v === null), 'must be a string');
  }

  bool(field: string, value: Value): void {
    this.check(field, value, (v) => typeof v === 'boolean', 'must be a boolean');
  }

  integer(field: string, value: Value, min: number): void {
    this.check(field, value, (v) => isCount(v, min), min === 1 ? 'must be a positive integer' : `must be an integer >= ${min}`);
  }

  object(field: string, value: Value): value is Record<string, unknown> {
    this.check(field, value, isObject, 'must be an object');
    return isObject(value);
  }

  oneOf(field: string, value: Value, allowed: readonly string[]): void {
    this.check(field, value, (v) => typeof v === 'string' && allowed.includes(v), `must be one of ${allowed.join(', ')}`);
  }
}

function checkState(c: Checker, at: string, state: Value, ids: Set<string>): void {
  if (!isObject(state)) return c.fail(at, 'a state must be an object');
  if (typeof state.id !== 'string' || state.id === '') c.fail(`${at}.id`, 'id is required and must be a non-empty string');
  else if (ids.has(state.id)) c.fail(`${at}.id`, `duplicate state id ${state.id}`);
  else ids.add(state.id);
  c.string(`${at}.name`, state.name);
  c.integer(`${at}.order`, state.order, 0);
  if (c.object(`${at}.transitionRules`, state.transitionRules)) {
    c.string(`${at}.transitionRules.type`, state.transitionRules.type);
    c.integer(`${at}.transitionRules.durationMs`, state.transitionRules.durationMs, 0);
  }
  if (c.object(`${at}.globalComponentsVisibility`, state.globalComponentsVisibility)) {
    for (const [name, visible] of Object.entries(state.globalComponentsVisibility))
      c.bool(`${at}.globalComponentsVisibility.${name}`, visible);
  }
  const focus = state.focusComponent;
  if (c.object(`${at}.focusComponent`, focus)) {
    if (focus.type === undefined) c.fail(`${at}.focusComponent.type`, 'type is required');
    c.oneOf(`${at}.focusComponent.type`, focus.type, FOCUS_COMPONENT_TYPES);
    c.object(`${at}.focusComponent.config`, focus.config);
    c.string(`${at}.focusComponent.id`, focus.id);
  }
}

function checkRoles(c: Checker, roles: Record<string, unknown>): void {
  for (const [key, role] of Object.entries(roles)) {
    const at = `roles.${key}`;
    if (!isObject(role)) {
      c.fail(at, 'a role must be an object');
      continue;
    }
    c.string(`${at}.name`, role.name);
    c.integer(`${at}.participantCount`, role.participantCount, 0);
    c.oneOf(`${at}.mode`, role.mode, ROLE_MODES);
    c.check(`${at}.personaId`, role.personaId, (v) => typeof v === 'string' && v !== '', 'must be a non-empty string');
  }
}

const PROMPT_FIELDS = ['persona', 'objective', 'guidance', 'additionalInstructions'];

/** A role's prompt override, as the SDK's PromptLayer writes it: appended to the bound persona's prompt. */
function checkPromptLayer(c: Checker, at: string, layer: Value): void {
  if (!isObject(layer)) return c.fail(at, `a prompt override must be an object with ${[...PROMPT_FIELDS, 'examples'].join(', ')}`);
  for (const field of PROMPT_FIELDS) c.string(`${at}.${field}`, layer[field], true);
  c.check(
    `${at}.examples`,
    layer.examples,
    (v) => v === null || (Array.isArray(v) && v.every((e) => typeof e === 'string')),
    'must be an array of strings',
  );
}

/** Validates an experiment body; `partial` (an update) does not require `name`. Returns the fields to store. */
export function validateExperiment(body: unknown, partial: boolean): { errors: FieldError[]; fields: JsonObject } {
  const c = new Checker();
  if (!isObject(body)) return { errors: [{ field: '', message: 'The body must be a JSON object' }], fields: {} };
  const b = body;
  if (!partial || b.name !== undefined) {
    if (typeof b.name !== 'string' || b.name.trim() === '') c.fail('name', 'name is required and must be a non-empty string');
    else if (b.name.length > 200) c.fail('name', 'name must be at most 200 characters');
  }
  c.string('description', b.description, true);
  c.integer('requiredParticipants', b.requiredParticipants, 1);
  c.bool('randomizeStates', b.randomizeStates);
  c.object('variables', b.variables);
  if (c.object('waitingRoomConfig', b.waitingRoomConfig)) {
    c.integer('waitingRoomConfig.maxWaitTimeMs', b.waitingRoomConfig.maxWaitTimeMs, 0);
    c.integer('waitingRoomConfig.countdownTimeMs', b.waitingRoomConfig.countdownTimeMs, 0);
  }
  if (c.object('disconnectTimeout', b.disconnectTimeout)) {
    c.bool('disconnectTimeout.enabled', b.disconnectTimeout.enabled);
    c.integer('disconnectTimeout.durationMs', b.disconnectTimeout.durationMs, 0);
    c.integer('disconnectTimeout.autoReconnectDelay', b.disconnectTimeout.autoReconnectDelay, 0);
  }
  c.integer('completionScreenDurationMs', b.completionScreenDurationMs, 0);
  for (const prefix of ['consentForm', 'instructions']) {
    c.bool(`${prefix}Enabled`, b[`${prefix}Enabled`]);
    c.string(`${prefix}Title`, b[`${prefix}Title`]);
    c.string(`${prefix}Content`, b[`${prefix}Content`]);
  }
  if (b.instructionsPages !== undefined) {
    if (!Array.isArray(b.instructionsPages)) c.fail('instructionsPages', 'instructionsPages must be an array');
    else
      b.instructionsPages.forEach((page: unknown, i) => {
        if (!isObject(page)) return c.fail(`instructionsPages[${i}]`, 'a page must be an object with title and content');
        c.string(`instructionsPages[${i}].title`, page.title);
        c.string(`instructionsPages[${i}].content`, page.content);
      });
  }
  if (c.object('postExperimentQuestionnaire', b.postExperimentQuestionnaire)) {
    c.bool('postExperimentQuestionnaire.enabled', b.postExperimentQuestionnaire.enabled);
    c.check('postExperimentQuestionnaire.questions', b.postExperimentQuestionnaire.questions, Array.isArray, 'must be an array');
  }
  if (b.roles !== undefined) {
    if (!isObject(b.roles)) c.fail('roles', 'roles must be an object');
    else checkRoles(c, b.roles);
  }
  if (c.object('globalComponents', b.globalComponents)) {
    for (const name of Object.keys(b.globalComponents)) {
      if (!GLOBAL_COMPONENTS.includes(name))
        c.fail(`globalComponents.${name}`, `unknown global component; one of ${GLOBAL_COMPONENTS.join(', ')}`);
    }
  }
  if (b.states !== undefined) {
    if (!Array.isArray(b.states)) c.fail('states', 'states must be an array');
    else {
      const ids = new Set<string>();
      b.states.forEach((state: unknown, i) => checkState(c, `states[${i}]`, state, ids));
    }
  }
  c.oneOf('runtime', b.runtime, RUNTIMES);
  if (c.object('agentConfig', b.agentConfig)) {
    const agent = b.agentConfig;
    if (c.object('agentConfig.roleOverrides', agent.roleOverrides)) {
      for (const [role, layer] of Object.entries(agent.roleOverrides)) checkPromptLayer(c, `agentConfig.roleOverrides.${role}`, layer);
    }
    c.object('agentConfig.pacing', agent.pacing);
    c.integer('agentConfig.seed', agent.seed, 0);
  }
  for (const field of READ_ONLY) {
    if (b[field] !== undefined) c.fail(field, `${field} is read-only`);
  }
  return { errors: c.errors, fields: b as JsonObject };
}
