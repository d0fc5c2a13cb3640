import { listSlicer } from '../loaders/planner.ts';
import { metaOf, objectOf, recordsOf } from '../loaders/fetch.ts';
import { routes } from '../upstream/routes.ts';
import { builder, type GatewayContext } from './builder.ts';
import { connectionOver, type ConnectionArgs } from './connection.ts';
import { connectionOf } from './data.ts';
import { badInput, requireId, requireKey } from './errors.ts';
import { upstreamId } from './ids.ts';
import { write } from './writes.ts';
import { experimentLink, roomLink } from './links.ts';
import { branded, Experiment, Room } from './refs.ts';
import { date, float, int, obj, str, type Rec } from '../upstream/values.ts';

export const Deployment = builder.objectRef<Rec>('Deployment');

/** A deployment's field that only the single-deployment route carries: read from the row, else loaded. */
async function full(d: Rec, field: string, ctx: GatewayContext): Promise<unknown> {
  if (field in d) return d[field];
  const id = str(d.id);
  return id === null ? null : (await ctx.loaders.deployment.load(id))[field];
}

const RoomSpend = builder.objectRef<{ roomId: string; usd: number | null }>('RoomSpend').implement({
  fields: (t) => ({
    roomId: t.exposeString('roomId'),
    usd: t.exposeFloat('usd', { nullable: true, description: 'Agent spend in the room, in US dollars.' }),
    room: roomLink(t, (s) => s.roomId),
  }),
});

const AgentSpend = builder.objectRef<Rec>('AgentSpend').implement({
  description: 'What the AI agents of a deployment spent (upstream agent-spend).',
  fields: (t) => ({
    total: t.float({ nullable: true, description: 'In all, in US dollars.', resolve: (s) => float(s.total) }),
    perRoom: t.field({
      type: [RoomSpend],
      resolve: (s) => Object.entries(obj(s.perRoom) ?? {}).map(([roomId, usd]) => ({ roomId, usd: float(usd) })),
    }),
  }),
});

builder.node(Deployment, {
  description: 'A deployment: how an experiment is run (a wave of human sessions, or agent-only rooms).',
  id: { resolve: (d) => str(d.id) ?? '' },
  loadOne: (id, ctx) => branded(Deployment, ctx.loaders.deployment.load(requireId(id, 'id'))),
  fields: (t) => ({
    deploymentId: t.string({
      nullable: false,
      description: 'The upstream deployment id (always sent by the upstream; non-null).',
      resolve: (d) => str(d.id) ?? '',
    }),
    experimentId: t.string({ nullable: true, resolve: (d) => str(d.experimentId) }),
    name: t.string({ nullable: true, resolve: (d) => str(d.name) }),
    status: t.string({ nullable: true, description: 'active, completed, paused, archived, …', resolve: (d) => str(d.status) }),
    type: t.string({ nullable: true, description: 'e.g. agent-only.', resolve: (d) => str(d.type) }),
    ownerId: t.string({ nullable: true, resolve: (d) => str(d.ownerId) }),
    ownerName: t.string({ nullable: true, resolve: (d) => str(d.ownerName) }),
    createdAt: t.field({ type: 'DateTime', nullable: true, resolve: (d) => date(d.createdAt) }),
    participantCount: t.int({ nullable: true, resolve: async (d, _a, ctx) => int(await full(d, 'participantCount', ctx)) }),
    maxParticipants: t.int({ nullable: true, resolve: async (d, _a, ctx) => int(await full(d, 'maxParticipants', ctx)) }),
    updatedAt: t.field({ type: 'DateTime', nullable: true, resolve: async (d, _a, ctx) => date(await full(d, 'updatedAt', ctx)) }),
    raw: t.field({ type: 'JSON', nullable: false, description: 'The deployment exactly as the upstream sent it.', resolve: (d) => d }),
    experiment: experimentLink(t, (d) => str(d.experimentId)),
    sessions: t.connection(
      {
        type: Room,
        description: 'The rooms (sessions) of this deployment (upstream sessions; one request, no pages upstream).',
        resolve: async (d, args, ctx, info) => {
          const envelope = await ctx.session.get(routes.deploymentSessions(str(d.id) ?? ''));
          return connectionOver(ctx, args, listSlicer({ records: recordsOf(envelope), meta: metaOf([envelope]) }), undefined, info);
        },
      },
      connectionOf(Room, 'Room'),
    ),
    agentSpend: t.field({
      type: AgentSpend,
      nullable: true,
      resolve: async (d, _args, ctx) => objectOf(await ctx.session.get(routes.deploymentAgentSpend(str(d.id) ?? ''))),
    }),
  }),
});

// A Federation entity keyed by the upstream deployment id.
builder.asEntity(Deployment, {
  key: builder.selection<{ deploymentId: string }>('deploymentId'),
  resolveReference: async (ref, ctx) => ctx.loaders.deployment.load(requireKey(ref.deploymentId, 'deploymentId')),
});

/** The key's deployments, optionally of one experiment and in one status, as a connection. */
async function deployments(ctx: GatewayContext, filter: { experimentId?: string; status?: string | null }, args: ConnectionArgs) {
  const query = new URLSearchParams();
  if (filter.experimentId !== undefined) query.set('experimentId', filter.experimentId);
  if (filter.status !== null && filter.status !== undefined) {
    if (filter.status.trim() === '') throw badInput("'status' must not be blank", 'status');
    query.set('status', filter.status);
  }
  const envelope = await ctx.session.get(routes.deployments(), query);
  return connectionOver(ctx, args, listSlicer({ records: recordsOf(envelope), meta: metaOf([envelope]) }));
}

const DeploymentConnection = connectionOf(Deployment, 'Deployment');

builder.queryFields((t) => ({
  deployments: t.connection(
    {
      type: Deployment,
      description: "The deployments the caller's key may see (one upstream request, no pages upstream).",
      args: {
        experimentId: t.arg.id({ description: 'Only this experiment’s.' }),
        status: t.arg.string({ description: 'Only deployments in this status (active, completed, …).' }),
      },
      resolve: (_root, args, ctx) =>
        deployments(
          ctx,
          {
            experimentId:
              args.experimentId === null || args.experimentId === undefined
                ? undefined
                : upstreamId(args.experimentId, 'experimentId', 'Experiment'),
            status: args.status,
          },
          args,
        ),
    },
    DeploymentConnection,
  ),
  deployment: t.field({
    type: Deployment,
    nullable: true,
    args: { id: t.arg.id({ required: true, description: 'The deployment: its node id (`id`) or its upstream id (`deploymentId`).' }) },
    resolve: (_root, args, ctx) => ctx.loaders.deployment.load(upstreamId(args.id, 'id', 'Deployment')),
  }),
}));

builder.objectField(Experiment, 'deployments', (t) =>
  t.connection(
    {
      type: Deployment,
      description: 'The deployments of this experiment.',
      args: { status: t.arg.string({ description: 'Only deployments in this status.' }) },
      resolve: (e, args, ctx) => deployments(ctx, { experimentId: str(e.id) ?? '', status: args.status }, args),
    },
    DeploymentConnection,
  ),
);

// --- Writes: agent deployments ----------------------------------------------------------------

function checkRooms(rooms: number, argument: string): number {
  if (!Number.isInteger(rooms) || rooms < 1 || rooms > 1000)
    throw badInput(`'${argument}' must be between 1 and 1000, got ${rooms}`, argument, { value: rooms });
  return rooms;
}

function checkBudget(usd: number, argument: string): number {
  if (!Number.isFinite(usd) || usd <= 0)
    throw badInput(`'${argument}' must be a positive amount of US dollars, got ${usd}`, argument, { value: usd });
  return usd;
}

const CreateDeploymentInput = builder.inputType('CreateDeploymentInput', {
  description: 'An agent-only deployment: its rooms start at once, within the budget.',
  fields: (t) => ({
    experimentId: t.id({ required: true }),
    name: t.string({ required: true }),
    rooms: t.int({ required: true, description: 'Rooms to start (1 to 1000).' }),
    budgetUsd: t.float({ required: true, description: 'The spending cap of the deployment, in US dollars.' }),
    type: t.string({ description: 'The deployment type (default agent-only).' }),
    config: t.field({ type: 'JSON', description: 'Further configuration keys, sent as given inside `config`.' }),
  }),
});

const CreatedDeployment = builder.objectRef<Rec>('CreatedDeployment').implement({
  fields: (t) => ({
    deploymentId: t.string({ resolve: (d) => str(d.id) ?? '' }),
    type: t.string({ nullable: true, resolve: (d) => str(d.type) }),
    status: t.string({ nullable: true, resolve: (d) => str(d.status) }),
    deployment: t.field({
      type: Deployment,
      nullable: true,
      description: 'The deployment as the upstream now holds it (one more request).',
      resolve: (d, _args, ctx) => {
        const id = str(d.id);
        return id === null ? null : ctx.loaders.deployment.load(id);
      },
    }),
  }),
});

const AgentBatch = builder.objectRef<Rec>('AgentBatch').implement({
  description: 'Rooms the upstream accepted to start (asynchronously).',
  fields: (t) => ({
    batchId: t.string({ nullable: true, resolve: (b) => str(b.batchId) }),
    requestedRooms: t.int({ nullable: true, resolve: (b) => int(b.requestedRooms) }),
  }),
});

const StoppedRoom = builder.objectRef<Rec & { roomId: string }>('StoppedRoom').implement({
  fields: (t) => ({
    stopped: t.boolean({ resolve: (s) => s.stopped === true }),
    roomId: t.string({ resolve: (s) => s.roomId }),
    room: roomLink(t, (s) => s.roomId),
  }),
});

builder.mutationFields((t) => ({
  createDeployment: t.field({
    type: CreatedDeployment,
    description:
      'Creates an agent-only deployment (upstream POST /deployments; never retried). A refused preflight answers ' +
      'BAD_USER_INPUT with `extensions.preflight`: one { role, reason } per agent role that failed.',
    args: { input: t.arg({ type: CreateDeploymentInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const experimentId = upstreamId(input.experimentId, 'input.experimentId', 'Experiment');
      if (input.name.trim() === '') throw badInput("'name' must not be blank", 'input.name');
      const extra = input.config === null || input.config === undefined ? {} : obj(input.config);
      if (extra === null) throw badInput("'config' must be an object", 'input.config');
      const config = {
        ...extra,
        name: input.name,
        type: input.type ?? 'agent-only',
        agentDeployment: { rooms: checkRooms(input.rooms, 'input.rooms'), budgetUsd: checkBudget(input.budgetUsd, 'input.budgetUsd') },
      };
      const envelope = await write(ctx, { method: 'POST', path: routes.deployments(), body: { experimentId, config } }, 'deployment');
      return objectOf(envelope) ?? {};
    },
  }),
  runMoreRooms: t.field({
    type: AgentBatch,
    description: 'Starts more rooms of an agent deployment and raises its budget cap by budgetUsd (never retried).',
    args: { deploymentId: t.arg.id({ required: true }), rooms: t.arg.int({ required: true }), budgetUsd: t.arg.float({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const body = { rooms: checkRooms(args.rooms, 'rooms'), budgetUsd: checkBudget(args.budgetUsd, 'budgetUsd') };
      return (
        objectOf(
          await write(
            ctx,
            { method: 'POST', path: routes.deploymentRunMore(upstreamId(args.deploymentId, 'deploymentId', 'Deployment')), body },
            'request',
          ),
        ) ?? {}
      );
    },
  }),
  stopRoom: t.field({
    type: StoppedRoom,
    description: 'Force-ends a room of an agent deployment (never retried).',
    args: { deploymentId: t.arg.id({ required: true }), roomId: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const roomId = upstreamId(args.roomId, 'roomId', 'Room');
      const envelope = await write(
        ctx,
        { method: 'POST', path: routes.deploymentRoomStop(upstreamId(args.deploymentId, 'deploymentId', 'Deployment'), roomId) },
        'stop',
      );
      return { ...objectOf(envelope), roomId };
    },
  }),
  retryRoom: t.field({
    type: AgentBatch,
    description: 'Replaces a room whose spawn failed, from the same budget (never retried).',
    args: { deploymentId: t.arg.id({ required: true }), roomId: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const path = routes.deploymentRoomRetry(
        upstreamId(args.deploymentId, 'deploymentId', 'Deployment'),
        upstreamId(args.roomId, 'roomId', 'Room'),
      );
      return objectOf(await write(ctx, { method: 'POST', path }, 'retry')) ?? {};
    },
  }),
}));
