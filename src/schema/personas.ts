import { listSlicer } from '../loaders/planner.ts';
import { metaOf, objectOf, recordsOf } from '../loaders/fetch.ts';
import { routes } from '../upstream/routes.ts';
import { builder, type Types } from './builder.ts';
import { connectionOver } from './connection.ts';
import { connectionOf } from './data.ts';
import { badInput, requireId, requireKey } from './errors.ts';
import { upstreamId } from './ids.ts';
import { recordField } from './records.ts';
import { bool, obj, str, strList, type Rec } from '../upstream/values.ts';
import { branded } from './refs.ts';
import { given, write } from './writes.ts';
import type { RecordField } from '../spec/spec.ts';

export const Persona = builder.objectRef<Rec>('Persona');

const PERSONA_FIELDS: readonly RecordField[] = [
  ['ownerId', 'String', 'Who owns it (set by the upstream).'],
  ['name', 'String', 'Its name.'],
  ['description', 'String', 'What it is for.'],
  ['language', 'String', 'The language it speaks.'],
  ['provider', 'String', 'anthropic (default), openai, gemini, custom, …'],
  ['model', 'String', 'The model (required for a custom provider).'],
  ['temperature', 'Float', 'Sampling temperature.'],
  ['topP', 'Float', 'Nucleus sampling.'],
  ['maxTokens', 'Int', 'The most tokens per reply.'],
  ['thinking', 'JSON', 'Extended thinking settings.'],
  ['disableThinking', 'Boolean', 'Whether thinking is off.'],
  ['reasoningEffort', 'String', 'Reasoning effort, where the model has it.'],
  ['extraParams', 'JSON', 'Further provider parameters.'],
  ['seed', 'Int', 'The random seed.'],
  ['cognition', 'JSON', 'Cognition configuration (experimental; see cognitionCatalog for the building blocks).'],
  ['offlineCognition', 'JSON', 'No longer written by the upstream: always null.'],
  ['memoryPersistence', 'String', 'none or cross-experiment.'],
  ['seedMemories', 'JSON', 'Memories the persona starts with.'],
  ['pacing', 'JSON', 'How fast it acts.'],
  ['visibility', 'String', 'private, organization or public (set at creation).'],
  ['createdAt', 'DateTime', 'When it was created.'],
  ['updatedAt', 'DateTime', 'When it last changed.'],
];

const PersonaPrompt = builder.objectRef<Rec>('PersonaPrompt').implement({
  fields: (t) => ({
    persona: t.string({ nullable: true, resolve: (p) => str(p.persona) }),
    objective: t.string({ nullable: true, resolve: (p) => str(p.objective) }),
    guidance: t.string({ nullable: true, resolve: (p) => str(p.guidance) }),
    examples: t.stringList({ nullable: true, resolve: (p) => strList(p.examples) }),
    additionalInstructions: t.string({ nullable: true, resolve: (p) => str(p.additionalInstructions) }),
  }),
});

const PersonaGuardrails = builder.objectRef<Rec>('PersonaGuardrails').implement({
  description: 'Limits that fail closed: a persona past any of them stops acting.',
  fields: (t) => ({
    maxTurns: recordField(t, ['maxTurns', 'Int', 'Turns at most (default 100).']),
    budgetTokens: recordField(t, ['budgetTokens', 'Int', 'Tokens at most (default 500,000).']),
    budgetUsd: recordField(t, ['budgetUsd', 'Float', 'US dollars at most.']),
    maxConsecutiveDecisionErrors: recordField(t, ['maxConsecutiveDecisionErrors', 'Int', 'Failed decisions in a row at most.']),
  }),
});

builder.node(Persona, {
  description: 'An AI persona that agent roles play (upstream personas).',
  id: { resolve: (p) => str(p.id) ?? '' },
  loadOne: (id, ctx) => branded(Persona, ctx.loaders.persona.load(requireId(id, 'id'))),
  fields: (t) => ({
    personaId: t.string({
      nullable: false,
      description: 'The upstream persona id (always sent by the upstream; non-null).',
      resolve: (p) => str(p.id) ?? '',
    }),
    ...Object.fromEntries(PERSONA_FIELDS.map((f) => [f[0], recordField(t, f)])),
    prompt: t.field({ type: PersonaPrompt, nullable: true, resolve: (p) => obj(p.prompt) }),
    guardrails: t.field({ type: PersonaGuardrails, nullable: true, resolve: (p) => obj(p.guardrails) }),
    raw: t.field({ type: 'JSON', nullable: false, description: 'The persona exactly as the upstream sent it.', resolve: (p) => p }),
  }),
});

// A Federation entity keyed by the upstream persona id.
builder.asEntity(Persona, {
  key: builder.selection<{ personaId: string }>('personaId'),
  resolveReference: async (ref, ctx) => ctx.loaders.persona.load(requireKey(ref.personaId, 'personaId')),
});

const Visibility = builder.enumType('PersonaVisibility', {
  values: { PRIVATE: { value: 'private' }, ORGANIZATION: { value: 'organization' }, PUBLIC: { value: 'public' } } as const,
});
const MemoryPersistence = builder.enumType('MemoryPersistence', {
  values: { NONE: { value: 'none' }, CROSS_EXPERIMENT: { value: 'cross-experiment' } } as const,
});

const PromptInput = builder.inputType('PersonaPromptInput', {
  fields: (t) => ({
    persona: t.string(),
    objective: t.string(),
    guidance: t.string(),
    examples: t.stringList(),
    additionalInstructions: t.string(),
  }),
});

const GuardrailsInput = builder.inputType('PersonaGuardrailsInput', {
  fields: (t) => ({
    maxTurns: t.int({ description: 'At least 1.' }),
    budgetTokens: t.int({ description: 'At least 1000.' }),
    budgetUsd: t.float({ description: 'More than 0.' }),
    maxConsecutiveDecisionErrors: t.int({ description: 'At least 1.' }),
  }),
});

/** The persona fields both inputs share; name is required at creation, visibility is set only then. */
const personaFields = (t: PothosSchemaTypes.InputFieldBuilder<Types, 'InputObject'>) => ({
  description: t.string(),
  language: t.string(),
  provider: t.string({ description: 'anthropic (the default), openai, gemini, custom, …' }),
  model: t.string({ description: 'Required when provider is custom.' }),
  temperature: t.float(),
  topP: t.float(),
  maxTokens: t.int(),
  thinking: t.field({ type: 'JSON' }),
  disableThinking: t.boolean(),
  reasoningEffort: t.string(),
  extraParams: t.field({ type: 'JSON' }),
  seed: t.int(),
  prompt: t.field({ type: PromptInput }),
  guardrails: t.field({ type: GuardrailsInput }),
  cognition: t.field({ type: 'JSON' }),
  memoryPersistence: t.field({ type: MemoryPersistence }),
  seedMemories: t.field({ type: 'JSON', description: 'A list of memories.' }),
  pacing: t.field({ type: 'JSON', description: 'An object.' }),
});

const PersonaInput = builder.inputType('PersonaInput', {
  fields: (t) => ({ name: t.string({ required: true }), visibility: t.field({ type: Visibility }), ...personaFields(t) }),
});
const PersonaPatch = builder.inputType('PersonaPatch', {
  description: 'A JSON merge-patch: fields left out stay; a field given null is removed; prompt and guardrails merge.',
  fields: (t) => ({ name: t.string(), ...personaFields(t) }),
});

/** Checks a persona body before it goes upstream (the upstream's documented bounds). */
function personaBody(input: object, argument: string, creating: boolean): Rec {
  const body = given(input);
  const at = (field: string): string => `${argument}.${field}`;
  if (body.name !== undefined && (typeof body.name !== 'string' || body.name.trim() === ''))
    throw badInput("'name' must not be blank", at('name'));
  if (typeof body.provider === 'string' && body.provider.trim() === '') throw badInput("'provider' must not be blank", at('provider'));
  if (creating && body.provider === 'custom' && (typeof body.model !== 'string' || body.model.trim() === '')) {
    throw badInput("A custom provider needs a 'model'", at('model'));
  }
  const guardrails = obj(body.guardrails);
  if (guardrails) {
    const check = (field: string, ok: (n: number) => boolean, rule: string): void => {
      const n = guardrails[field];
      if (typeof n === 'number' && !ok(n))
        throw badInput(`'guardrails.${field}' must be ${rule}, got ${n}`, at(`guardrails.${field}`), { value: n });
    };
    check('maxTurns', (n) => n >= 1, 'at least 1');
    check('budgetTokens', (n) => n >= 1000, 'at least 1000');
    check('budgetUsd', (n) => n > 0, 'more than 0');
    check('maxConsecutiveDecisionErrors', (n) => n >= 1, 'at least 1');
  }
  for (const field of ['seedMemories'] as const) {
    if (body[field] !== undefined && body[field] !== null && !Array.isArray(body[field]))
      throw badInput(`'${field}' must be a list`, at(field));
  }
  for (const field of ['pacing', 'extraParams', 'cognition'] as const) {
    if (body[field] !== undefined && body[field] !== null && obj(body[field]) === null)
      throw badInput(`'${field}' must be an object`, at(field));
  }
  if (!creating && Object.keys(body).length === 0) throw badInput('Give at least one field to change', argument);
  return body;
}

const DeletedPersona = builder.objectRef<Rec & { personaId: string }>('DeletedPersona').implement({
  fields: (t) => ({
    personaId: t.string({ resolve: (d) => d.personaId }),
    deleted: t.boolean({ resolve: (d) => bool(d.deleted) ?? false }),
  }),
});

const CognitionAbility = builder.objectRef<{ name: string; description: string | null }>('CognitionAbility').implement({
  fields: (t) => ({ name: t.string({ resolve: (a) => a.name }), description: t.string({ nullable: true, resolve: (a) => a.description }) }),
});
const CognitionRecipe = builder.objectRef<{ name: string; abilities: string[] }>('CognitionRecipe').implement({
  fields: (t) => ({ name: t.string({ resolve: (r) => r.name }), abilities: t.stringList({ resolve: (r) => r.abilities }) }),
});
const recipes = (v: unknown) => Object.entries(obj(v) ?? {}).map(([name, abilities]) => ({ name, abilities: strList(abilities) ?? [] }));

const CognitionCatalog = builder.objectRef<Rec>('CognitionCatalog').implement({
  description: 'The building blocks of a persona’s cognition (upstream agent-cognition/catalog).',
  fields: (t) => ({
    abilities: t.field({
      type: [CognitionAbility],
      resolve: (c) => Object.entries(obj(c.abilities) ?? {}).map(([name, a]) => ({ name, description: str(obj(a)?.description) })),
    }),
    recipes: t.field({ type: [CognitionRecipe], description: 'Named sets of abilities.', resolve: (c) => recipes(c.recipes) }),
    offlineRecipes: t.field({
      type: [CognitionRecipe],
      description: 'Recipes for offline loops.',
      resolve: (c) => recipes(c.offlineRecipes),
    }),
    raw: t.field({ type: 'JSON', nullable: false, resolve: (c) => c }),
  }),
});

builder.queryFields((t) => ({
  personas: t.connection(
    {
      type: Persona,
      description: 'The personas the caller may use: their own, their organization’s and public ones (one upstream request).',
      resolve: async (_root, args, ctx, info) => {
        const envelope = await ctx.session.get(routes.personas());
        return connectionOver(ctx, args, listSlicer({ records: recordsOf(envelope), meta: metaOf([envelope]) }), undefined, info);
      },
    },
    connectionOf(Persona, 'Persona'),
  ),
  persona: t.field({
    type: Persona,
    nullable: true,
    args: { id: t.arg.id({ required: true, description: 'The persona: its node id (`id`) or its upstream id (`personaId`).' }) },
    resolve: (_root, args, ctx) => ctx.loaders.persona.load(upstreamId(args.id, 'id', 'Persona')),
  }),
  cognitionCatalog: t.field({
    type: CognitionCatalog,
    nullable: true,
    resolve: async (_root, _args, ctx) => objectOf(await ctx.session.get(routes.cognitionCatalog())),
  }),
}));

builder.mutationFields((t) => ({
  createPersona: t.field({
    type: Persona,
    description: 'Creates a persona (never retried).',
    args: { input: t.arg({ type: PersonaInput, required: true }) },
    resolve: async (_root, { input }, ctx) =>
      objectOf(await write(ctx, { method: 'POST', path: routes.personas(), body: personaBody(input, 'input', true) }, 'persona')) ?? {},
  }),
  updatePersona: t.field({
    type: Persona,
    description: 'Changes a persona as a JSON merge-patch (never retried).',
    args: { id: t.arg.id({ required: true }), patch: t.arg({ type: PersonaPatch, required: true }) },
    resolve: async (_root, { id, patch }, ctx) =>
      objectOf(
        await write(
          ctx,
          { method: 'PUT', path: routes.persona(upstreamId(id, 'id', 'Persona')), body: personaBody(patch, 'patch', false) },
          'change',
        ),
      ) ?? {},
  }),
  deletePersona: t.field({
    type: DeletedPersona,
    description: 'Deletes a persona (never retried).',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const id = upstreamId(args.id, 'id', 'Persona');
      return { ...objectOf(await write(ctx, { method: 'DELETE', path: routes.persona(id) }, 'deletion')), personaId: id };
    },
  }),
  duplicatePersona: t.field({
    type: Persona,
    description: 'Makes a private copy named "<name> (copy)", owned by the caller (never retried).',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) =>
      objectOf(await write(ctx, { method: 'POST', path: routes.personaDuplicate(upstreamId(args.id, 'id', 'Persona')) }, 'copy')) ?? {},
  }),
}));
