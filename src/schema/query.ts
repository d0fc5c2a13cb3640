import { EXPERIMENTS_PAGE_LIMIT } from '../loaders/fetch.ts';
import { routes } from '../upstream/routes.ts';
import { builder } from './builder.ts';
import { resolveConnection } from './connection.ts';
import { badInput, requireId } from './errors.ts';
import { checkNodeType, decodeNodeId, upstreamId } from './ids.ts';
import { parseLocalId } from './participant.ts';
import { lookahead } from '../loaders/planner.ts';
import { connectionOf } from './data.ts';
import { Experiment, Participant, Room } from './refs.ts';
import type { ConnectionResult } from './connection.ts';
import { bool, date, float, obj, str, type Rec } from '../upstream/values.ts';

builder.globalConnectionField('totalCount', (t) =>
  t.int({
    nullable: false,
    description: 'How many records match, from the upstream pagination total (non-null).',
    resolve: (parent) => (parent as { totalCount?: number }).totalCount ?? 0,
  }),
);

const Processing = builder.objectRef<Rec>('ListingProcessing').implement({
  description: "How the upstream produced a listing (its `metadata.processing`); for a listing served from a wider one, the wider one's.",
  fields: (t) => ({
    firstStateStartedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the first state of the experiment started.',
      resolve: (p) => date(p.firstStateStartedAt ?? p.experimentStartedAt),
    }),
    enriched: t.boolean({
      nullable: true,
      description: 'Whether records were enriched (names, back-links).',
      resolve: (p) => bool(p.enriched),
    }),
    version: t.string({ nullable: true, resolve: (p) => str(p.version) }),
    processingTimeMs: t.float({ nullable: true, resolve: (p) => float(p.processingTimeMs) }),
  }),
});

builder.globalConnectionField('processing', (t) =>
  t.field({
    type: Processing,
    nullable: true,
    resolve: (parent) => obj((parent as Partial<ConnectionResult>).meta?.metadata.processing),
  }),
);

builder.globalConnectionField('warnings', (t) =>
  t.stringList({
    nullable: false,
    description: 'What the upstream warned about this listing (`metadata._warnings`), e.g. "MISSING_INDEX: … Results may be incomplete."',
    resolve: (parent) => (parent as Partial<ConnectionResult>).meta?.warnings ?? [],
  }),
);

builder.queryType({
  fields: (t) => ({
    experiments: t.connection(
      {
        type: Experiment,
        description: "The experiments the caller's key may see.",
        args: { search: t.arg.string({ description: 'Matches name and description.' }) },
        resolve: (_root, args, ctx, info) =>
          resolveConnection(
            ctx,
            { path: routes.experiments(), params: { search: args.search ?? undefined }, pageLimit: EXPERIMENTS_PAGE_LIMIT },
            args,
            info,
          ),
      },
      connectionOf(Experiment, 'Experiment'),
    ),
    sharedExperiments: t.connection(
      {
        type: Experiment,
        description:
          'Experiments other organizations shared with yours. Send `X-Organization-Id: <your organization>`; it is forwarded ' +
          'upstream with this operation only, like the key.',
        resolve: (_root, args, ctx, info) =>
          resolveConnection(ctx, { path: routes.sharedExperiments(), params: {}, pageLimit: EXPERIMENTS_PAGE_LIMIT }, args, info),
      },
      connectionOf(Experiment, 'Experiment'),
    ),
    experiment: t.field({
      type: Experiment,
      nullable: true,
      args: {
        id: t.arg.id({ required: true, description: 'The experiment: its node id (`id`) or its upstream id (`experimentId`, exp_…).' }),
      },
      resolve: (_root, args, ctx, info) => {
        const id = upstreamId(args.id, 'id', 'Experiment');
        const experiment = ctx.loaders.experiment.now(id);
        lookahead(ctx.loaders.planner, info, { kind: 'experiment', id }, ctx.defaultPageSize);
        return experiment;
      },
    }),
    room: t.field({
      type: Room,
      nullable: true,
      args: { id: t.arg.id({ required: true, description: 'The room: its node id (`id`) or its upstream id (`roomId`).' }) },
      resolve: (_root, args, ctx, info) => {
        const id = upstreamId(args.id, 'id', 'Room');
        const room = ctx.loaders.room.now(id);
        lookahead(ctx.loaders.planner, info, { kind: 'room', id }, ctx.defaultPageSize);
        return room;
      },
    }),
    participant: t.field({
      type: Participant,
      nullable: true,
      description: 'A participant, addressed within its room: by its node id alone, or by its upstream id with `roomId`.',
      args: {
        id: t.arg.id({ required: true, description: 'The participant: its node id (`id`) or its upstream id (`participantId`).' }),
        roomId: t.arg.id({
          description: 'The room the participant joined (`roomId`): needed with an upstream participant id; a node id carries its room.',
        }),
      },
      resolve: (_root, args, ctx) => {
        const given = args.roomId === null || args.roomId === undefined ? null : upstreamId(args.roomId, 'roomId', 'Room');
        const node = decodeNodeId(String(args.id));
        if (node !== null) {
          checkNodeType(node, 'Participant', 'id', String(args.id));
          const key = parseLocalId(node.id);
          if (given !== null && given !== key.roomId)
            throw badInput(`'roomId' ${given} is not the room of this participant (${key.roomId})`, 'roomId', { value: given });
          return ctx.loaders.participant.load(key);
        }
        const id = requireId(args.id, 'id');
        if (given === null)
          throw badInput(
            "'roomId' is needed with an upstream participant id (a participant is addressed within its room); or pass the participant's node id (`id`), which carries its room",
            'roomId',
          );
        return ctx.loaders.participant.load({ roomId: given, id });
      },
    }),
  }),
});
