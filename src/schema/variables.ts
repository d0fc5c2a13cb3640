import { recordsOf } from '../loaders/fetch.ts';
import { routes } from '../upstream/routes.ts';
import { builder } from './builder.ts';
import { Room } from './refs.ts';
import { bool, date, json, objects, str, strList, type Rec } from '../upstream/values.ts';

const VariableWrite = builder.objectRef<Rec>('VariableWrite').implement({
  description: 'One write to a room variable, in the order they happened.',
  fields: (t) => ({
    variable: t.string({ nullable: true, resolve: (w) => str(w.variable) }),
    value: t.field({ type: 'JSON', nullable: true, description: 'The value written (any JSON).', resolve: (w) => json(w.value) }),
    source: t.string({ nullable: true, description: 'Who wrote it: human, seed, or an agent.', resolve: (w) => str(w.source) }),
    persisted: t.boolean({ nullable: true, description: 'Whether the write was persisted.', resolve: (w) => bool(w.persisted) }),
    stateId: t.string({ nullable: true, resolve: (w) => str(w.stateId) }),
    timestamp: t.field({ type: 'DateTime', nullable: true, resolve: (w) => date(w.timestamp) }),
    raw: t.field({ type: 'JSON', nullable: false, description: 'The row exactly as the upstream sent it.', resolve: (w) => w }),
  }),
});

const DroppedWrite = builder.objectRef<Rec>('DroppedVariableWrite').implement({
  description: 'A write that failed the upstream’s cross-checks (any entry is a bug worth reporting).',
  fields: (t) => ({
    variable: t.string({ nullable: true, resolve: (w) => str(w.variable) }),
    reason: t.string({ nullable: true, resolve: (w) => str(w.reason) }),
    raw: t.field({ type: 'JSON', nullable: false, resolve: (w) => w }),
  }),
});

interface Variables {
  writes: Rec[];
  metadata: Rec;
}

const RoomVariables = builder.objectRef<Variables>('RoomVariables').implement({
  description: 'The variables of a room: the write log and what the upstream derived from it (upstream variables).',
  fields: (t) => ({
    writes: t.field({ type: [VariableWrite], description: 'Every write, time-ordered.', resolve: (v) => v.writes }),
    names: t.stringList({
      description: 'The variable names, in order of first write.',
      resolve: (v) => strList(v.metadata.variableNames) ?? [],
    }),
    timeline: t.field({
      type: ['JSON'],
      description: 'One forward-filled row per state: { stateId, <variable>: value, … }.',
      resolve: (v) => objects(v.metadata.timeline),
    }),
    matrixColumns: t.stringList({
      description: 'The column order of the timeline.',
      resolve: (v) => strList(v.metadata.matrixColumns) ?? [],
    }),
    droppedWrites: t.field({ type: [DroppedWrite], resolve: (v) => objects(v.metadata.droppedWrites) }),
    mode: t.string({ nullable: true, description: 'How the log was produced (e.g. replay).', resolve: (v) => str(v.metadata.mode) }),
  }),
});

builder.objectField(Room, 'variables', (t) =>
  t.field({
    type: RoomVariables,
    nullable: true,
    description: 'The room’s variables (one upstream request).',
    resolve: async (r, _args, ctx) => {
      const envelope = await ctx.session.get(routes.data('variables', { kind: 'room', id: str(r.id) ?? '' }));
      return { writes: recordsOf(envelope), metadata: envelope.metadata };
    },
  }),
);
