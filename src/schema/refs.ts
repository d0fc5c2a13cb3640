import { brandWithType, type ObjectRef } from '@pothos/core';
import type { Rec } from '../upstream/values.ts';
import { builder, type Types } from './builder.ts';

/** The node types, declared first so that any file can link to them; each has its own file. */
export const Experiment = builder.objectRef<Rec>('Experiment');
export const Room = builder.objectRef<Rec>('Room');
export const Participant = builder.objectRef<Rec>('Participant');

/**
 * Marks a loaded record with its GraphQL type at once. Pothos brands records loaded through `node`
 * only after the whole batch settles, so a `nodes` field that reuses the same record in the same
 * operation could meet it unbranded ("Abstract type Node must resolve to an Object type").
 */
export const branded = (type: ObjectRef<Types, Rec>, record: Promise<Rec>): Promise<Rec> =>
  record.then((r) => {
    brandWithType(r, type);
    return r;
  });
