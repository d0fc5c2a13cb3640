import { objectOf } from '../loaders/fetch.ts';
import { routes } from '../upstream/routes.ts';
import { builder } from './builder.ts';
import { Participant } from './refs.ts';
import { int, obj, roomOf, str, type Rec } from '../upstream/values.ts';

interface TypeCount {
  dataType: string;
  count: number;
  hasData: boolean;
}

const DataTypeCount = builder.objectRef<TypeCount>('DataTypeCount').implement({
  description: 'How many records of one data type a participant has.',
  fields: (t) => ({
    dataType: t.exposeString('dataType', { description: 'The upstream’s name for the type (events, textchat, sync, …).' }),
    count: t.exposeInt('count'),
    hasData: t.exposeBoolean('hasData'),
  }),
});

const ParticipantCounts = builder.objectRef<Rec>('ParticipantCounts').implement({
  description: 'Per data type counts and has-data flags of a participant (upstream counts).',
  fields: (t) => ({
    types: t.field({
      type: [DataTypeCount],
      description: 'One entry per data type the upstream reports, in its order.',
      resolve: (c) => {
        const counts = obj(c.counts) ?? {};
        const flags = obj(c.hasData) ?? {};
        return [...new Set([...Object.keys(counts), ...Object.keys(flags)])].map((dataType) => {
          const count = int(counts[dataType]) ?? 0;
          return { dataType, count, hasData: typeof flags[dataType] === 'boolean' ? (flags[dataType] as boolean) : count > 0 };
        });
      },
    }),
    total: t.int({
      description: 'All records of the participant, over every type.',
      resolve: (c) => Object.values(obj(c.counts) ?? {}).reduce<number>((sum, n) => sum + (int(n) ?? 0), 0),
    }),
    raw: t.field({ type: 'JSON', nullable: false, resolve: (c) => c }),
  }),
});

builder.objectField(Participant, 'counts', (t) =>
  t.field({
    type: ParticipantCounts,
    nullable: true,
    description: 'How much data of each type the participant has (one upstream request).',
    resolve: async (p, _args, ctx) => {
      const scope = { kind: 'participant', id: str(p.id) ?? '', roomId: roomOf(p) ?? '' } as const;
      return objectOf(await ctx.session.get(routes.data('counts', scope), new URLSearchParams({ roomId: scope.roomId })));
    },
  }),
);
