import { builder } from './builder.ts';
import type { Rec } from './values.ts';

/** The node types, declared first so that any file can link to them; each has its own file. */
export const Experiment = builder.objectRef<Rec>('Experiment');
export const Room = builder.objectRef<Rec>('Room');
export const Participant = builder.objectRef<Rec>('Participant');
