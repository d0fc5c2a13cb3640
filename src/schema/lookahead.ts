import {
  getArgumentValues,
  getNamedType,
  isObjectType,
  Kind,
  type GraphQLObjectType,
  type GraphQLResolveInfo,
  type SelectionSetNode,
} from 'graphql';
import type { Scope } from '../upstream/routes.ts';
import type { GatewayContext } from './builder.ts';
import { selectWindow, MAX_FIRST } from './connection.ts';
import { DATA_FIELDS, type DataArgs } from './data.ts';

const RECORD_TYPES = new Set(['Experiment', 'Room', 'Participant']);

interface Found {
  parentType: string;
  field: string;
  args: DataArgs;
  /** How many Experiment/Room/Participant levels below the root the parent is (0: the root itself). */
  depth: number;
}

function collect(info: GraphQLResolveInfo, type: GraphQLObjectType, selection: SelectionSetNode, depth: number, out: Found[]): void {
  for (const node of selection.selections) {
    if (node.kind === Kind.INLINE_FRAGMENT || node.kind === Kind.FRAGMENT_SPREAD) {
      const fragment = node.kind === Kind.INLINE_FRAGMENT ? node : info.fragments[node.name.value];
      if (!fragment) continue;
      const condition = fragment.typeCondition ? info.schema.getType(fragment.typeCondition.name.value) : type;
      if (condition && isObjectType(condition)) collect(info, condition, fragment.selectionSet, depth, out);
      continue;
    }
    const definition = type.getFields()[node.name.value];
    if (!definition) continue;
    let args: DataArgs;
    try {
      args = getArgumentValues(definition, node, info.variableValues) as DataArgs;
    } catch {
      continue;
    }
    if (RECORD_TYPES.has(type.name) && node.name.value in DATA_FIELDS)
      out.push({ parentType: type.name, field: node.name.value, args, depth });
    const child = getNamedType(definition.type);
    if (node.selectionSet && isObjectType(child))
      collect(info, child, node.selectionSet, depth + (RECORD_TYPES.has(child.name) ? 1 : 0), out);
  }
}

/** Whether a connection's window lies inside the first upstream page, so a probe can serve it. */
function fitsFirstPage(args: DataArgs, defaultSize: number): boolean {
  if (args.after || args.before || (args.last !== null && args.last !== undefined)) return false;
  try {
    const { end } = selectWindow(args, defaultSize);
    return end !== null && end <= MAX_FIRST;
  } catch {
    return false;
  }
}

/**
 * Reads the operation below a root experiment or room and starts, at once and in parallel, the first
 * page of every listing the nested fields will need — at the root's own scope, so that nested rooms
 * and participants can later be served from them (scope lifting) without another round trip.
 */
export function lookahead(ctx: GatewayContext, info: GraphQLResolveInfo, root: Scope & { kind: 'experiment' | 'room' }): void {
  const { planner } = ctx.loaders;
  if (!planner.enabled) return;
  const rootType = getNamedType(info.returnType);
  if (!isObjectType(rootType)) return;
  const found: Found[] = [];
  for (const node of info.fieldNodes) if (node.selectionSet) collect(info, rootType, node.selectionSet, 0, found);
  for (const { parentType, field, args, depth } of found) {
    const spec = DATA_FIELDS[field];
    if (!spec) continue;
    const nested = depth > 0 && parentType !== 'Experiment';
    const atRoot = depth === 0 && parentType === rootType.name && fitsFirstPage(args, ctx.defaultPageSize);
    if (!nested && !atRoot) continue;
    if (root.kind === 'room' && spec.type === 'rooms') continue;
    try {
      planner.prefetch(spec.type, spec.params(args), root);
    } catch {
      // A bad argument is reported by the field's own resolver, before any upstream call.
    }
  }
}
