import type { GraphQLResolveInfo } from 'graphql';
import { selectionWalk } from '../document.ts';
import { listSlicer } from '../loaders/planner.ts';
import { metaOf, objectOf, recordsOf } from '../loaders/fetch.ts';
import { routes, type Scope } from '../upstream/routes.ts';
import { builder, type FieldBuilder, type GatewayContext } from './builder.ts';
import { connectionOver, type ConnectionArgs, type ConnectionResult } from './connection.ts';
import { connectionOf } from './data.ts';
import { badInput, requireId } from './errors.ts';
import { experimentLink, roomLink } from './links.ts';
import { recordField } from './records.ts';
import { Experiment, Participant, Room } from './refs.ts';
import { bool, json, linkable, objects, str, type Rec } from '../upstream/values.ts';
import type { RecordField } from '../spec/spec.ts';

/** The upstream's default (and largest) cap of decisions per room. */
export const MAX_DECISIONS_PER_ROOM = 5000;

/** Fields a decision row carries only with `detail=true`, and the decision-detail route always. */
const DETAIL_FIELDS = new Set(['prompt', 'reasoning', 'chain', 'peerModelSnapshot', 'predictionUpdate']);

const DECISION_FIELDS: readonly RecordField[] = [
  ['participantId', 'String', 'The agent (a participant of the room).'],
  ['roomId', 'String', 'The room.'],
  ['seq', 'Int', 'The position of the decision in the agent’s turn sequence.'],
  ['stateId', 'String', 'The experiment state it was taken in.'],
  ['stateName', 'String', 'That state’s name.'],
  ['turnKind', 'String', 'chat or component.'],
  ['action', 'String', 'send_message or respond.'],
  ['value', 'JSON', 'What the agent sent or answered (a string or a number).'],
  ['model', 'String', 'The model that decided.'],
  ['provider', 'String', 'Its provider (anthropic, openai, gemini, custom).'],
  ['latencyMs', 'Float', 'How long the decision took, in milliseconds.'],
  ['inputTokens', 'Int', 'Prompt tokens.'],
  ['outputTokens', 'Int', 'Completion tokens.'],
  ['timestamp', 'DateTime', 'When it was taken.'],
  ['prompt', 'String', 'The prompt (detail).'],
  ['reasoning', 'String', 'The model’s reasoning (detail).'],
  ['peerModelSnapshot', 'JSON', 'The agent’s model of each peer, keyed by peer (detail).'],
  ['predictionUpdate', 'JSON', 'How its predictions changed, e.g. { predictionError } (detail).'],
];

const RUN_FIELDS: readonly RecordField[] = [
  ['participantId', 'String', 'The agent (a participant of the room).'],
  ['roomId', 'String', 'The room.'],
  ['personaId', 'String', 'The persona the agent played.'],
  ['model', 'String', 'The model.'],
  ['provider', 'String', 'Its provider.'],
  ['seed', 'Int', 'The run’s random seed.'],
  ['totalInputTokens', 'Int', 'Prompt tokens in all.'],
  ['totalOutputTokens', 'Int', 'Completion tokens in all.'],
  ['totalCostUsd', 'Float', 'What the run cost, in US dollars.'],
  ['turns', 'Int', 'Turns taken.'],
  ['codeCommitSha', 'String', 'The agent runtime’s code version.'],
  ['roomStatus', 'String', 'completed or failed (agent-runs listing only).'],
  ['orphaned', 'Boolean', 'Whether the room ended abnormally (agent-runs listing only).'],
  ['startedAt', 'DateTime', 'When the run started.'],
  ['endedAt', 'DateTime', 'When it ended; null for an orphaned run.'],
];

const participantLink = (t: FieldBuilder<Rec>) =>
  t.field({
    type: Participant,
    nullable: true,
    description: 'The agent as a participant of its room, through a loader.',
    resolve: (r, _args, ctx) => {
      const roomId = linkable(str(r.roomId));
      const id = linkable(str(r.participantId));
      return roomId === null || id === null ? null : ctx.loaders.participant.load({ roomId, id });
    },
  });

const ChainStep = builder.objectRef<Rec>('AgentChainStep').implement({
  description: 'One stage of an agent’s decision chain.',
  fields: (t) => ({
    stage: t.string({ nullable: true, description: 'e.g. goal_infer, decide.', resolve: (s) => str(s.stage) }),
    output: t.field({ type: 'JSON', nullable: true, resolve: (s) => json(s.output) }),
  }),
});

export const AgentDecision = builder.objectRef<Rec>('AgentDecision').implement({
  description: 'One decision an AI agent took in a room (upstream agent-decisions). Detail fields are filled when asked for.',
  fields: (t) => ({
    decisionId: t.string({ description: 'The decision id ({participantId}_{seq}).', resolve: (d) => str(d.id) ?? '' }),
    ...Object.fromEntries(DECISION_FIELDS.map((f) => [f[0], recordField(t, f)])),
    chain: t.field({
      type: [ChainStep],
      nullable: true,
      description: 'The decision chain, stage by stage (detail).',
      resolve: (d) => (Array.isArray(d.chain) ? objects(d.chain) : null),
    }),
    experimentId: t.string({ nullable: true, resolve: (d) => str(d.experimentId) }),
    room: roomLink(t, (d) => str(d.roomId)),
    participant: participantLink(t),
    raw: t.field({ type: 'JSON', nullable: false, description: 'The row exactly as the upstream sent it.', resolve: (d) => d }),
  }),
});

export const AgentRun = builder.objectRef<Rec>('AgentRun').implement({
  description: 'One AI agent’s run in a room: model, persona, tokens, cost.',
  fields: (t) => ({
    runId: t.string({ description: 'The run id (the agent’s participant id).', resolve: (r) => str(r.id) ?? '' }),
    ...Object.fromEntries(RUN_FIELDS.map((f) => [f[0], recordField(t, f)])),
    experimentId: t.string({ nullable: true, resolve: (r) => str(r.experimentId) }),
    experiment: experimentLink(t, (r) => str(r.experimentId)),
    room: roomLink(t, (r) => str(r.roomId)),
    participant: participantLink(t),
    raw: t.field({ type: 'JSON', nullable: false, description: 'The row exactly as the upstream sent it.', resolve: (r) => r }),
  }),
});

/** Whether the operation asks for a detail field of the decisions within 6 levels below this field. */
function asksDetail(info: GraphQLResolveInfo): boolean {
  // The fewest levels down to a detail field (Infinity: none).
  const nearest = selectionWalk<number>(
    { none: Infinity, add: Math.min, field: (f, _parent, walk) => (DETAIL_FIELDS.has(f.name.value) ? 0 : 1 + walk(f.selectionSet)) },
    (name) => info.fragments[name],
  );
  return info.fieldNodes.some((node) => nearest(node.selectionSet) < 6);
}

interface DecisionArgs extends ConnectionArgs {
  detail?: boolean | null;
  limitPerRoom?: number | null;
}

/** The decisions of a scope, as one upstream request (the listing has no pages); windows are cut here. */
async function decisions(ctx: GatewayContext, scope: Scope, args: DecisionArgs, info: GraphQLResolveInfo): Promise<ConnectionResult> {
  const limit = args.limitPerRoom;
  if (limit !== null && limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > MAX_DECISIONS_PER_ROOM)) {
    throw badInput(`'limitPerRoom' must be between 1 and ${MAX_DECISIONS_PER_ROOM}, got ${limit}`, 'limitPerRoom', { value: limit });
  }
  const query = new URLSearchParams();
  if (args.detail ?? asksDetail(info)) query.set('detail', 'true');
  if (limit !== null && limit !== undefined) query.set('limit', String(limit));
  const envelope = await ctx.session.get(routes.data('agent-decisions', scope), query);
  const rows = recordsOf(envelope);
  const list = { records: rows.filter((r) => r._type !== 'run'), meta: metaOf([envelope]) };
  const result = await connectionOver(ctx, args, listSlicer(list));
  return Object.assign(result, { runs: rows.filter((r) => r._type === 'run') });
}

const AgentDecisionConnection = builder.connectionObject(
  {
    type: AgentDecision,
    name: 'AgentDecisionConnection',
    fields: (t) => ({
      truncated: t.boolean({
        description: 'Whether a room had more decisions than limitPerRoom (its list is cut there).',
        resolve: (c) => bool((c as unknown as ConnectionResult).meta.metadata.truncated) ?? false,
      }),
      runs: t.field({
        type: [AgentRun],
        description: 'The agents’ runs in the same scope, as the decisions listing reports them.',
        resolve: (c) => (c as unknown as { runs?: Rec[] }).runs ?? [],
      }),
    }),
  },
  { name: 'AgentDecisionEdge' },
);

function decisionsField<P>(t: FieldBuilder<P>, scopeOf: (parent: P) => Scope) {
  return t.connection(
    {
      type: AgentDecision,
      description:
        'Decisions of the AI agents (upstream agent-decisions, one request, no pages upstream). Detail fields (prompt, ' +
        'reasoning, chain, …) are fetched when the selection asks for them, or with detail: true.',
      args: {
        detail: t.arg.boolean({ description: 'Ask for the detail fields even if not selected (default: when selected).' }),
        limitPerRoom: t.arg.int({
          description: `At most this many decisions per room (1 to ${MAX_DECISIONS_PER_ROOM}; upstream \`limit\`).`,
        }),
      },
      resolve: (parent, args, ctx, info) => decisions(ctx, scopeOf(parent), args, info),
    },
    AgentDecisionConnection,
  );
}

builder.objectFields(Experiment, (t) => ({
  agentDecisions: decisionsField(t, (e) => ({ kind: 'experiment', id: str(e.id) ?? '' })),
  agentRuns: t.connection(
    {
      type: AgentRun,
      description: 'The AI agents’ runs in this experiment (upstream agent-runs; one request, no pages upstream).',
      resolve: async (e, args, ctx, info) => {
        const envelope = await ctx.session.get(routes.data('agent-runs', { kind: 'experiment', id: str(e.id) ?? '' }));
        return connectionOver(ctx, args, listSlicer({ records: recordsOf(envelope), meta: metaOf([envelope]) }), undefined, info);
      },
    },
    connectionOf(AgentRun, 'AgentRun'),
  ),
}));

builder.objectFields(Room, (t) => ({
  agentDecisions: decisionsField(t, (r) => ({ kind: 'room', id: str(r.id) ?? '' })),
  agentDecision: t.field({
    type: AgentDecision,
    nullable: true,
    description: 'One decision with its detail (prompt, reasoning, chain, …).',
    args: { id: t.arg.id({ required: true, description: 'The decision id ({participantId}_{seq}).' }) },
    resolve: async (r, args, ctx) => {
      const id = requireId(args.id, 'id');
      return objectOf(await ctx.session.get(routes.agentDecision(str(r.id) ?? '', id)));
    },
  }),
}));
