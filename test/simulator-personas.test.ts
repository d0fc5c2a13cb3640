import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../src/simulator/server.ts';
import { call } from './helpers/http.ts';
import { FULL, NO_RATE_LIMIT, READONLY, EVENTS_ONLY, OTHER } from './helpers/simulator.ts';

type Row = Record<string, unknown>;
interface Envelope<D = Row> {
  status: string;
  data: D;
  metadata: Row;
  error?: { code: string; message: string; details: Row };
}

// Most tests write, so each has its own simulator.
let sim: Simulator;
beforeEach(async () => {
  sim = await startSimulator({ rateLimit: NO_RATE_LIMIT });
});
afterEach(() => sim.close());

const get = <D = Row>(path: string, key = FULL) => call<Envelope<D>>(`${sim.url}${path}`, { key });
const send = <D = Row>(method: string, path: string, body?: unknown, key = FULL) =>
  call<Envelope<D>>(`${sim.url}${path}`, body === undefined ? { key, method } : { key, method, body });

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('personas, read', () => {
  it('lists the personas a user may use: owned, their organisation’s, public', async () => {
    const demo = await get<Row[]>('/personas');
    expect(demo.body.metadata).toMatchObject({ dataType: 'personas', scope: 'user', scopeId: 'user_demo' });
    expect(demo.body).not.toHaveProperty('metadata.pagination');
    expect(demo.body.data.map((p) => [p.id, p.ownerId, p.visibility])).toEqual([
      ['psn_demo_confederate', 'user_demo', 'organization'],
      ['psn_demo_partner', 'user_demo', 'private'],
    ]);
    expect((await get<Row[]>('/personas', OTHER)).body.data.map((p) => p.id)).toEqual(['psn_other_private']);
    // A public persona of the demo user is visible to the other user as well.
    const made = await send('POST', '/personas', { name: 'Open persona', visibility: 'public' });
    expect((await get<Row[]>('/personas', OTHER)).body.data.map((p) => p.id)).toEqual(['psn_other_private', made.body.data.id]);
  });

  it('gets one as a bare object with every field; another user’s private persona is 404', async () => {
    const res = await get('/personas/psn_demo_partner');
    expect(res.body.data).toEqual({
      id: 'psn_demo_partner',
      ownerId: 'user_demo',
      name: 'Curious partner',
      description: 'A friendly, curious peer for joint-attention tasks.',
      language: 'en',
      provider: 'anthropic',
      model: 'claude-sonnet-4-5',
      temperature: 0.7,
      topP: null,
      maxTokens: null,
      thinking: null,
      disableThinking: false,
      reasoningEffort: null,
      extraParams: {},
      seed: 7,
      prompt: {
        persona: 'You are a curious university student taking part in a study with a partner.',
        objective: 'Complete each task together; share impressions briefly.',
        guidance: 'Keep messages under 20 words.',
        examples: ['That scene made me jump!'],
        additionalInstructions: '',
      },
      guardrails: { maxTurns: 100, budgetTokens: 500000, budgetUsd: 5, maxConsecutiveDecisionErrors: 3 },
      cognition: { recipe: 'social' },
      memoryPersistence: 'none',
      seedMemories: [],
      pacing: {},
      visibility: 'private',
      offlineCognition: null,
      createdAt: '2024-10-20T12:00:00.000Z',
      updatedAt: '2024-10-20T12:00:00.000Z',
    });
    expect((await get('/personas/psn_other_private')).body.error).toEqual({
      code: 'NOT_FOUND',
      message: 'Persona not found: psn_other_private',
      details: { resource: 'persona', id: 'psn_other_private' },
    });
    expect((await get('/personas/psn_demo_confederate', OTHER)).status).toBe(404);
    expect((await get('/personas/psn_other_private', OTHER)).status).toBe(200);
  });

  it('needs read:personas', async () => {
    expect((await get('/personas', EVENTS_ONLY)).body.error).toEqual({
      code: 'FORBIDDEN',
      message: 'Insufficient scopes. Required: read:personas',
      details: { required: ['read:personas'], provided: ['read:events', 'read:experiments'] },
    });
    expect((await get('/personas/psn_demo_partner', EVENTS_ONLY)).status).toBe(403);
    expect((await get('/personas', READONLY)).status).toBe(200);
  });

  it('serves the cognition catalog', async () => {
    const res = await get<Row[]>('/agent-cognition/catalog', READONLY);
    expect(res.body.data).toHaveLength(1);
    const catalog = res.body.data[0] as {
      abilities: Record<string, { description: string }>;
      recipes: Record<string, string[]>;
      offlineRecipes: Row;
    };
    expect(Object.keys(catalog)).toEqual(['abilities', 'recipes', 'offlineRecipes']);
    expect(Object.keys(catalog.abilities)).toEqual(['goal_infer', 'theory_of_mind', 'predict', 'decide', 'reflect', 'consolidate_memory']);
    expect(catalog.recipes).toEqual({
      reactive: ['decide'],
      social: ['goal_infer', 'decide'],
      predictive: ['goal_infer', 'theory_of_mind', 'predict', 'decide'],
    });
    expect(catalog.offlineRecipes).toEqual({ between_states: ['reflect'], end_of_session: ['reflect', 'consolidate_memory'] });
    for (const recipe of [...Object.values(catalog.recipes), ...(Object.values(catalog.offlineRecipes) as string[][])]) {
      for (const ability of recipe) expect(catalog.abilities[ability]?.description).toEqual(expect.any(String));
    }
    expect((await get('/agent-cognition/catalog', EVENTS_ONLY)).status).toBe(403);
  });
});

describe('personas, write', () => {
  it('creates with defaults, owned by the caller; offlineCognition is dropped', async () => {
    const res = await send('POST', '/personas', { name: 'Minimal', offlineCognition: { loops: ['reflect'] } });
    expect(res.status).toBe(201);
    const { id, createdAt, updatedAt, ...rest } = res.body.data;
    expect(String(id)).toMatch(/^psn_[a-z0-9]{12}$/);
    expect(String(createdAt)).toMatch(TIMESTAMP);
    expect(updatedAt).toBe(createdAt);
    expect(rest).toEqual({
      ownerId: 'user_demo',
      name: 'Minimal',
      description: null,
      language: 'en',
      provider: 'anthropic',
      model: 'claude-sonnet-4-5',
      temperature: null,
      topP: null,
      maxTokens: null,
      thinking: null,
      disableThinking: false,
      reasoningEffort: null,
      extraParams: {},
      seed: null,
      prompt: { persona: '', objective: '', guidance: '', examples: [], additionalInstructions: '' },
      guardrails: { maxTurns: 100, budgetTokens: 500000, budgetUsd: 5, maxConsecutiveDecisionErrors: 3 },
      cognition: null,
      memoryPersistence: 'none',
      seedMemories: [],
      pacing: {},
      visibility: 'private',
      offlineCognition: null,
    });
    expect((await get(`/personas/${String(id)}`)).body.data).toEqual(res.body.data);
    const custom = await send('POST', '/personas', {
      name: 'Local model',
      provider: 'custom',
      model: 'llama-3-70b',
      guardrails: { maxTurns: 10 },
      visibility: 'organization',
    });
    expect(custom.body.data).toMatchObject({
      provider: 'custom',
      model: 'llama-3-70b',
      visibility: 'organization',
      guardrails: { maxTurns: 10, budgetTokens: 500000, budgetUsd: 5, maxConsecutiveDecisionErrors: 3 },
    });
  });

  it('validates with field errors', async () => {
    const res = await send('POST', '/personas', {
      name: '',
      provider: 'custom',
      guardrails: { maxTurns: 0, budgetTokens: 999, budgetUsd: 0, maxConsecutiveDecisionErrors: 0 },
      memoryPersistence: 'forever',
      visibility: 'secret',
      temperature: 3,
      ownerId: 'user_other',
      colour: 'blue',
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toEqual({
      code: 'VALIDATION_ERROR',
      message: 'The persona is not valid',
      details: {
        errors: [
          { field: 'ownerId', message: 'ownerId is set by the server' },
          { field: 'colour', message: 'unknown field colour' },
          { field: 'name', message: 'name is required and must be a non-empty string' },
          { field: 'model', message: 'model is required for the custom provider' },
          { field: 'temperature', message: 'temperature must be a number from 0 to 2' },
          { field: 'memoryPersistence', message: 'memoryPersistence must be one of none, cross-experiment' },
          { field: 'visibility', message: 'visibility must be one of private, organization, public' },
          { field: 'guardrails.maxTurns', message: 'maxTurns must be an integer >= 1' },
          { field: 'guardrails.budgetTokens', message: 'budgetTokens must be an integer >= 1000' },
          { field: 'guardrails.budgetUsd', message: 'budgetUsd must be a number > 0' },
          { field: 'guardrails.maxConsecutiveDecisionErrors', message: 'maxConsecutiveDecisionErrors must be an integer >= 1' },
        ],
      },
    });
    expect((await send('POST', '/personas', { description: 'no name' })).body.error?.details).toEqual({
      errors: [{ field: 'name', message: 'name is required and must be a non-empty string' }],
    });
    expect((await send('POST', '/personas', { name: 'x', provider: 'mistral' })).body.error?.details).toEqual({
      errors: [{ field: 'provider', message: 'provider must be one of anthropic, openai, gemini, custom' }],
    });
    expect((await send('POST', '/personas', 'just text')).body.error?.code).toBe('VALIDATION_ERROR');
    expect((await send('POST', '/personas', { name: 'x' }, READONLY)).body.error?.details).toEqual({
      required: ['write:personas'],
      provided: ['read:*'],
    });
    expect((await get<Row[]>('/personas')).body.data).toHaveLength(2);
  });

  it('updates by JSON merge-patch: null removes, objects merge, arrays and scalars replace', async () => {
    const before = (await get('/personas/psn_demo_partner')).body.data;
    const res = await send('PUT', '/personas/psn_demo_partner', {
      description: null,
      temperature: 0.2,
      guardrails: { maxTurns: 12, budgetUsd: null },
      prompt: { examples: ['Wow.'] },
      cognition: { config: { contexts: { chat: { offline: ['reflect'] } } } },
      offlineCognition: { anything: true },
    });
    expect(res.status).toBe(200);
    const { description: _removed, ...kept } = before;
    expect(res.body.data).toEqual({
      ...kept,
      temperature: 0.2,
      guardrails: { maxTurns: 12, budgetTokens: 500000, maxConsecutiveDecisionErrors: 3 },
      prompt: { ...(before.prompt as Row), examples: ['Wow.'] },
      cognition: { recipe: 'social', config: { contexts: { chat: { offline: ['reflect'] } } } },
      offlineCognition: null,
      updatedAt: expect.stringMatching(TIMESTAMP),
    });
    expect('description' in res.body.data).toBe(false);
    expect(res.body.data.updatedAt).not.toBe(before.updatedAt);
    expect((await get('/personas/psn_demo_partner')).body.data).toEqual(res.body.data);
  });

  it('refuses visibility, ownerId and invalid results in an update, and another user’s persona', async () => {
    const res = await send('PUT', '/personas/psn_demo_partner', { visibility: 'public', ownerId: 'user_other', name: null });
    expect(res.body.error).toEqual({
      code: 'VALIDATION_ERROR',
      message: 'The update is not valid',
      details: {
        errors: [
          { field: 'visibility', message: 'visibility can only be set when the persona is created' },
          { field: 'ownerId', message: 'ownerId is set by the server' },
          { field: 'name', message: 'name is required and must be a non-empty string' },
        ],
      },
    });
    expect((await send('PUT', '/personas/psn_demo_partner', { guardrails: { budgetTokens: 10 } })).body.error?.details).toEqual({
      errors: [{ field: 'guardrails.budgetTokens', message: 'budgetTokens must be an integer >= 1000' }],
    });
    expect((await get('/personas/psn_demo_partner')).body.data.name).toBe('Curious partner');
    expect((await send('PUT', '/personas/psn_other_private', { name: 'mine' })).status).toBe(404);
    const open = await send('POST', '/personas', { name: 'Open', visibility: 'public' }, OTHER);
    expect((await send('PUT', `/personas/${String(open.body.data.id)}`, { name: 'mine' })).body.error).toEqual({
      code: 'FORBIDDEN',
      message: 'Only the owner may change this persona',
      details: { resource: 'persona', id: open.body.data.id },
    });
    expect((await send('DELETE', `/personas/${String(open.body.data.id)}`)).status).toBe(403);
  });

  it('deletes a persona: it is gone afterwards', async () => {
    const res = await send('DELETE', '/personas/psn_demo_confederate');
    expect(res.body.data).toEqual({ deleted: true });
    expect((await get('/personas/psn_demo_confederate')).status).toBe(404);
    expect((await send('DELETE', '/personas/psn_demo_confederate')).status).toBe(404);
    expect((await get<Row[]>('/personas')).body.data.map((p) => p.id)).toEqual(['psn_demo_partner']);
    expect((await send('DELETE', '/personas/psn_demo_partner', undefined, READONLY)).status).toBe(403);
  });

  it('duplicates any persona the caller may use into a private copy of their own', async () => {
    const source = (await get('/personas/psn_demo_confederate')).body.data;
    const copy = await send('POST', '/personas/psn_demo_confederate/duplicate');
    expect(copy.status).toBe(201);
    const { id, createdAt, updatedAt, ...rest } = copy.body.data;
    expect(id).not.toBe(source.id);
    expect(String(createdAt)).toMatch(TIMESTAMP);
    expect(updatedAt).toBe(createdAt);
    expect(rest).toEqual({
      ...Object.fromEntries(Object.entries(source).filter(([k]) => !['id', 'createdAt', 'updatedAt'].includes(k))),
      name: 'Lab confederate (copy)',
      visibility: 'private',
      ownerId: 'user_demo',
    });
    const open = await send('POST', '/personas', { name: 'Open', visibility: 'public' });
    const theirs = await send('POST', `/personas/${String(open.body.data.id)}/duplicate`, undefined, OTHER);
    expect(theirs.body.data).toMatchObject({ name: 'Open (copy)', ownerId: 'user_other', visibility: 'private' });
    expect((await send('POST', '/personas/psn_other_private/duplicate')).status).toBe(404);
    expect((await send('POST', '/personas/psn_demo_partner/duplicate', undefined, READONLY)).status).toBe(403);
  });
});
