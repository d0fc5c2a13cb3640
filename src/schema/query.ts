import { EXPERIMENTS_PAGE_LIMIT } from '../loaders/fetch.ts';
import { routes } from '../upstream/routes.ts';
import { builder } from './builder.ts';
import { resolveConnection } from './connection.ts';
import { requireId } from './errors.ts';
import { lookahead } from './lookahead.ts';
import { Experiment, Participant, Room } from './refs.ts';

builder.globalConnectionField('totalCount', (t) =>
  t.int({
    description: 'How many records match, from the upstream pagination total.',
    resolve: (parent) => (parent as { totalCount?: number }).totalCount ?? 0,
  }),
);

builder.queryType({
  fields: (t) => ({
    experiments: t.connection({
      type: Experiment,
      description: "The experiments the caller's key may see.",
      args: { search: t.arg.string({ description: 'Matches name and description.' }) },
      resolve: (_root, args, ctx) =>
        resolveConnection(
          ctx,
          { path: routes.experiments(), params: { search: args.search ?? undefined }, pageLimit: EXPERIMENTS_PAGE_LIMIT },
          args,
        ),
    }),
    experiment: t.field({
      type: Experiment,
      nullable: true,
      args: { id: t.arg.id({ required: true, description: 'The upstream experiment id (exp_…).' }) },
      resolve: (_root, args, ctx, info) => {
        const id = requireId(args.id, 'id');
        lookahead(ctx, info, { kind: 'experiment', id });
        return ctx.loaders.experiment.load(id);
      },
    }),
    room: t.field({
      type: Room,
      nullable: true,
      args: { id: t.arg.id({ required: true, description: 'The upstream room id.' }) },
      resolve: (_root, args, ctx, info) => {
        const id = requireId(args.id, 'id');
        lookahead(ctx, info, { kind: 'room', id });
        return ctx.loaders.room.load(id);
      },
    }),
    participant: t.field({
      type: Participant,
      nullable: true,
      args: {
        id: t.arg.id({ required: true, description: 'The upstream participant id.' }),
        roomId: t.arg.id({ required: true, description: 'The room the participant joined.' }),
      },
      resolve: (_root, args, ctx) =>
        ctx.loaders.participant.load({ roomId: requireId(args.roomId, 'roomId'), id: requireId(args.id, 'id') }),
    }),
  }),
});
