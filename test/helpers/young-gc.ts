import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (options?: { type: 'minor' | 'major' }) => void;

let exposed: Gc | null = null;

/** V8's `gc`, exposed at run time (`--expose-gc` makes it a function of every new context). */
export function collector(): Gc {
  if (!exposed) {
    setFlagsFromString('--expose-gc');
    exposed = runInNewContext('gc') as Gc;
  }
  return exposed;
}

const used = (name: string): number => getHeapSpaceStatistics().find((s) => s.space_name === name)?.space_used_size ?? 0;

/**
 * Bytes V8's young-generation collector keeps of what is garbage by now: two minor collections in a row,
 * and what the second moves to the old generation (the first copies what it finds alive; what is still
 * alive at the second is promoted). Nothing may run in between: both are synchronous.
 */
export function keptByScavenges(): number {
  const gc = collector();
  gc({ type: 'minor' });
  const before = used('old_space') + used('large_object_space');
  gc({ type: 'minor' });
  return Math.max(0, used('old_space') + used('large_object_space') - before);
}
