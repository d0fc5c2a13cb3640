import type { FieldBuilder } from './builder.ts';
import { Experiment, Room } from './refs.ts';
import { linkable, type Rec } from '../upstream/values.ts';

/** A back-link to the experiment whose id the parent carries, through the experiment loader. */
export const experimentLink = <P>(t: FieldBuilder<P>, idOf: (parent: P) => string | null, description?: string) =>
  t.field({
    type: Experiment,
    nullable: true,
    description,
    resolve: (parent, _args, ctx): Promise<Rec> | null => {
      const id = linkable(idOf(parent));
      return id === null ? null : ctx.loaders.experiment.load(id);
    },
  });

/** A back-link to the room whose id the parent carries, through the room loader. */
export const roomLink = <P>(t: FieldBuilder<P>, idOf: (parent: P) => string | null, description?: string) =>
  t.field({
    type: Room,
    nullable: true,
    description,
    resolve: (parent, _args, ctx): Promise<Rec> | null => {
      const id = linkable(idOf(parent));
      return id === null ? null : ctx.loaders.room.load(id);
    },
  });
