/**
 * Agent personas: the record's defaults, validation of a whole persona document, JSON merge-patch
 * (RFC 7396) for updates, and the cognition catalog personas build on.
 */
import type { FieldError } from './experiment-schema.ts';
import type { JsonObject } from './model.ts';

export const PROVIDERS = ['anthropic', 'openai', 'gemini', 'custom'] as const;
const DEFAULT_MODELS: Record<string, string> = { anthropic: 'claude-sonnet-4-5', openai: 'gpt-4.1', gemini: 'gemini-2.5-pro' };
const MEMORY_PERSISTENCE = ['none', 'cross-experiment'];
const REASONING_EFFORTS = ['low', 'medium', 'high'];
const VISIBILITIES = ['private', 'organization', 'public'];

export const DEFAULT_GUARDRAILS: JsonObject = { maxTurns: 100, budgetTokens: 500_000, budgetUsd: 5, maxConsecutiveDecisionErrors: 3 };
const DEFAULT_PROMPT: JsonObject = { persona: '', objective: '', guidance: '', examples: [], additionalInstructions: '' };

/** The fields a persona may be written with (besides the server-set ones). */
const WRITABLE = [
  'name',
  'description',
  'language',
  'provider',
  'model',
  'temperature',
  'topP',
  'maxTokens',
  'thinking',
  'disableThinking',
  'reasoningEffort',
  'extraParams',
  'seed',
  'prompt',
  'guardrails',
  'cognition',
  'memoryPersistence',
  'seedMemories',
  'pacing',
  'visibility',
  'offlineCognition',
];
const SERVER_SET = ['id', 'ownerId', 'createdAt', 'updatedAt'];

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** A new persona record: the given fields over the defaults (`offlineCognition` is dropped: always null). */
export function newPersona(fields: Record<string, unknown>, server: { id: string; ownerId: string; now: string }): JsonObject {
  const { offlineCognition: _dropped, ...given } = fields;
  const provider = typeof given.provider === 'string' ? given.provider : 'anthropic';
  const record: JsonObject = {
    id: server.id,
    ownerId: server.ownerId,
    name: null,
    description: null,
    language: 'en',
    provider,
    model: DEFAULT_MODELS[provider] ?? null,
    temperature: null,
    topP: null,
    maxTokens: null,
    thinking: null,
    disableThinking: false,
    reasoningEffort: null,
    extraParams: {},
    seed: null,
    prompt: DEFAULT_PROMPT,
    guardrails: DEFAULT_GUARDRAILS,
    cognition: null,
    memoryPersistence: 'none',
    seedMemories: [],
    pacing: {},
    visibility: 'private',
    offlineCognition: null,
    createdAt: server.now,
    updatedAt: server.now,
  };
  for (const [key, value] of Object.entries(given)) {
    // Nested defaults stay unless the body names them (a create is a merge over the defaults).
    const base = record[key];
    record[key] = isObject(base) && isObject(value) ? ({ ...base, ...value } as JsonObject) : (value as JsonObject[string]);
  }
  record.offlineCognition = null;
  return record;
}

/** RFC 7396: `null` removes a key, objects merge recursively, anything else replaces. */
export function mergePatch(target: JsonObject, patch: Record<string, unknown>): JsonObject {
  const out: JsonObject = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else if (isObject(value)) {
      const base = out[key];
      out[key] = mergePatch(isObject(base) ? (base as JsonObject) : {}, value);
    } else out[key] = value as JsonObject[string];
  }
  return out;
}

/** Field errors of a body that writes a persona: unknown or server-set fields, and (on update) create-only ones. */
export function checkWritableFields(body: Record<string, unknown>, update: boolean): FieldError[] {
  const errors: FieldError[] = [];
  for (const key of Object.keys(body)) {
    if (SERVER_SET.includes(key)) errors.push({ field: key, message: `${key} is set by the server` });
    else if (update && key === 'visibility') errors.push({ field: key, message: 'visibility can only be set when the persona is created' });
    else if (!WRITABLE.includes(key)) errors.push({ field: key, message: `unknown field ${key}` });
  }
  return errors;
}

/** Validates a whole persona document (after defaults or a merge-patch). */
export function validatePersona(p: JsonObject): FieldError[] {
  const errors: FieldError[] = [];
  const fail = (field: string, message: string): void => void errors.push({ field, message });
  const optional = (field: string, ok: (v: unknown) => boolean, message: string, value: unknown = p[field]): void => {
    if (value !== undefined && value !== null && !ok(value)) fail(field, message);
  };
  if (typeof p.name !== 'string' || p.name.trim() === '') fail('name', 'name is required and must be a non-empty string');
  else if (p.name.length > 200) fail('name', 'name must be at most 200 characters');
  optional('description', (v) => typeof v === 'string', 'description must be a string');
  optional('language', (v) => typeof v === 'string' && v !== '', 'language must be a non-empty string');
  if (!(PROVIDERS as readonly unknown[]).includes(p.provider)) fail('provider', `provider must be one of ${PROVIDERS.join(', ')}`);
  if (p.provider === 'custom' && (typeof p.model !== 'string' || p.model === ''))
    fail('model', 'model is required for the custom provider');
  else optional('model', (v) => typeof v === 'string' && v !== '', 'model must be a non-empty string');
  optional('temperature', (v) => isNumber(v) && v >= 0 && v <= 2, 'temperature must be a number from 0 to 2');
  optional('topP', (v) => isNumber(v) && v > 0 && v <= 1, 'topP must be a number in (0, 1]');
  optional('maxTokens', (v) => Number.isSafeInteger(v) && (v as number) >= 1, 'maxTokens must be an integer >= 1');
  optional('thinking', (v) => typeof v === 'boolean' || isObject(v), 'thinking must be a boolean or an object');
  optional('disableThinking', (v) => typeof v === 'boolean', 'disableThinking must be a boolean');
  optional(
    'reasoningEffort',
    (v) => REASONING_EFFORTS.includes(String(v)),
    `reasoningEffort must be one of ${REASONING_EFFORTS.join(', ')}`,
  );
  optional('extraParams', isObject, 'extraParams must be an object');
  optional('seed', (v) => Number.isSafeInteger(v), 'seed must be an integer');
  optional('cognition', isObject, 'cognition must be an object');
  optional(
    'memoryPersistence',
    (v) => MEMORY_PERSISTENCE.includes(String(v)),
    `memoryPersistence must be one of ${MEMORY_PERSISTENCE.join(', ')}`,
  );
  optional('seedMemories', Array.isArray, 'seedMemories must be an array');
  optional('pacing', isObject, 'pacing must be an object');
  optional('visibility', (v) => VISIBILITIES.includes(String(v)), `visibility must be one of ${VISIBILITIES.join(', ')}`);
  const prompt = p.prompt;
  if (prompt !== undefined && prompt !== null) {
    if (!isObject(prompt)) fail('prompt', 'prompt must be an object');
    else {
      for (const key of ['persona', 'objective', 'guidance', 'additionalInstructions']) {
        optional(`prompt.${key}`, (v) => typeof v === 'string', `${key} must be a string`, prompt[key]);
      }
      optional('prompt.examples', Array.isArray, 'examples must be an array', prompt.examples);
    }
  }
  const g = p.guardrails;
  if (g !== undefined && g !== null) {
    if (!isObject(g)) fail('guardrails', 'guardrails must be an object');
    else {
      const int = (v: unknown, min: number): boolean => Number.isSafeInteger(v) && (v as number) >= min;
      optional('guardrails.maxTurns', (v) => int(v, 1), 'maxTurns must be an integer >= 1', g.maxTurns);
      optional('guardrails.budgetTokens', (v) => int(v, 1000), 'budgetTokens must be an integer >= 1000', g.budgetTokens);
      optional('guardrails.budgetUsd', (v) => isNumber(v) && v > 0, 'budgetUsd must be a number > 0', g.budgetUsd);
      optional(
        'guardrails.maxConsecutiveDecisionErrors',
        (v) => int(v, 1),
        'maxConsecutiveDecisionErrors must be an integer >= 1',
        g.maxConsecutiveDecisionErrors,
      );
    }
  }
  return errors;
}

/** `GET /agent-cognition/catalog`: the abilities and recipes a persona's `cognition` may use. */
export const COGNITION_CATALOG: JsonObject = {
  abilities: {
    goal_infer: { description: 'Infer what each peer is trying to achieve from their recent actions.' },
    theory_of_mind: { description: "Model each peer's beliefs and likely next action." },
    predict: { description: "Predict a peer's next move, and score the prediction error once it is seen." },
    decide: { description: 'Choose the next action: a chat message or a component response.' },
    reflect: { description: 'Summarise what happened into memories.' },
    consolidate_memory: { description: 'Merge and prune memories across sessions.' },
  },
  recipes: {
    reactive: ['decide'],
    social: ['goal_infer', 'decide'],
    predictive: ['goal_infer', 'theory_of_mind', 'predict', 'decide'],
  },
  offlineRecipes: {
    between_states: ['reflect'],
    end_of_session: ['reflect', 'consolidate_memory'],
  },
};
