import { isInputObjectType } from 'graphql';
import { objectOf } from '../loaders/fetch.ts';
import { entityLookahead } from '../loaders/planner.ts';
import { routes } from '../upstream/routes.ts';
import { builder } from './builder.ts';
import { listingConnections, type ParentScope } from './data.ts';
import { requireId, requireKey } from './errors.ts';
import { branded, Experiment } from './refs.ts';
import { bool, date, int, json, str, strList, type Rec } from '../upstream/values.ts';

const experimentScope = (e: Rec): ParentScope => ({ scope: { kind: 'experiment', id: str(e.id) ?? '' }, experimentId: str(e.id) });

const Access = builder.objectRef<Rec>('ExperimentAccess').implement({
  description: "What the caller's key may do with the experiment (upstream check-access).",
  fields: (t) => ({
    canView: t.boolean({ resolve: (a) => bool(a.canView) ?? false }),
    canExport: t.boolean({ resolve: (a) => bool(a.canExport) ?? false }),
  }),
});

builder.node(Experiment, {
  description: 'A HyperStudy experiment.',
  id: { resolve: (e) => str(e.id) ?? '' },
  loadOne: (id, ctx) => branded(Experiment, ctx.loaders.experiment.load(requireId(id, 'id'))),
  fields: (t) => ({
    experimentId: t.string({
      nullable: false,
      description: 'The upstream experiment id (always sent by the upstream; non-null).',
      resolve: (e) => str(e.id) ?? '',
    }),
    name: t.string({ nullable: true, resolve: (e) => str(e.name) }),
    description: t.string({ nullable: true, resolve: (e) => str(e.description) }),
    ownerId: t.string({ nullable: true, resolve: (e) => str(e.ownerId) }),
    ownerEmail: t.string({ nullable: true, resolve: (e) => str(e.ownerEmail) }),
    roomCount: t.int({ nullable: true, resolve: (e) => int(e.roomCount) }),
    participantCount: t.int({ nullable: true, resolve: (e) => int(e.participantCount) }),
    requiredParticipants: t.int({ nullable: true, resolve: (e) => int(e.requiredParticipants) }),
    createdAt: t.field({ type: 'DateTime', nullable: true, resolve: (e) => date(e.createdAt) }),
    updatedAt: t.field({ type: 'DateTime', nullable: true, resolve: (e) => date(e.updatedAt) }),
    accessType: t.string({ nullable: true, description: 'owner, org or shared (shared listings).', resolve: (e) => str(e.accessType) }),
    permissions: t.stringList({
      nullable: true,
      description: 'What a share allows (shared listings).',
      resolve: (e) => strList(e.permissions),
    }),
    dataPermissions: t.stringList({
      nullable: true,
      description: "What a share allows of the experiment's data: `view` (its nested data), `export` (shared listings).",
      resolve: (e) => strList(e.dataPermissions),
    }),
    expiresAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When a share ends; null while it has no end (shared listings).',
      resolve: (e) => date(e.expiresAt),
    }),
    sharedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When it was shared (shared listings).',
      resolve: (e) => date(e.sharedAt),
    }),
    ownerOrganizationId: t.string({
      nullable: true,
      description: 'The organization it belongs to (shared listings).',
      resolve: (e) => str(e.ownerOrganizationId),
    }),
    states: t.field({
      type: 'JSON',
      nullable: true,
      description: 'The experiment states, as the upstream holds them.',
      resolve: (e) => json(e.states),
    }),
    roles: t.field({ type: 'JSON', nullable: true, resolve: (e) => json(e.roles) }),
    raw: t.field({ type: 'JSON', nullable: false, description: 'The experiment exactly as the upstream sent it.', resolve: (e) => e }),
    definition: t.field({
      type: 'JSON',
      nullable: false,
      description:
        'The experiment as the SDK’s schema describes it: the upstream’s fields that `ExperimentInput` takes, ' +
        'ready to change and send back (`updateExperiment`, `createExperiment`).',
      resolve: (e, _args, _ctx, info) => {
        const input = info.schema.getType('ExperimentInput');
        const fields = isInputObjectType(input) ? input.getFields() : {};
        // In the upstream's order (the order they were written in).
        return Object.fromEntries(Object.entries(e).filter(([name, value]) => Object.hasOwn(fields, name) && value !== undefined));
      },
    }),
    access: t.field({
      type: Access,
      nullable: true,
      resolve: async (e, _args, ctx) => objectOf(await ctx.session.get(routes.checkAccess(str(e.id) ?? ''))),
    }),
    config: t.field({
      type: 'JSON',
      nullable: true,
      description: 'The raw experiment configuration (upstream /config).',
      resolve: async (e, _args, ctx) => objectOf(await ctx.session.get(routes.experimentConfig(str(e.id) ?? ''))),
    }),
    export: t.field({
      type: 'JSON',
      nullable: true,
      description: 'The portable export (upstream /export).',
      resolve: async (e, _args, ctx) => objectOf(await ctx.session.get(routes.experimentExport(str(e.id) ?? ''))),
    }),
    ...listingConnections(t, 'experiment', experimentScope),
  }),
});

// A Federation entity: other subgraphs refer to an experiment by its upstream id.
builder.asEntity(Experiment, {
  key: builder.selection<{ experimentId: string }>('experimentId'),
  // As `experiment(id:)`: its record goes upstream at once, and the lookahead starts what the selection below needs.
  resolveReference: (ref, ctx, info) => {
    const id = requireKey(ref.experimentId, 'experimentId');
    const experiment = ctx.loaders.experiment.now(id);
    entityLookahead(ctx.loaders.planner, info, { kind: 'experiment', id }, ctx.defaultPageSize);
    return experiment;
  },
});
