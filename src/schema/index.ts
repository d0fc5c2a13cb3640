import { builder } from './builder.ts';
import './scalars.ts';
import './records.ts';
import './data.ts';
import './experiment.ts';
import './room.ts';
import './participant.ts';
import './query.ts';
import './mutations.ts';
import './agents.ts';
import './variables.ts';
import './counts.ts';
import './deployments.ts';
import './personas.ts';

export const schema = builder.toSchema({ sortSchema: false });
