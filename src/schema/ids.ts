import { NODE_TYPES } from './builder.ts';
import { badInput, requireId } from './errors.ts';

/** A Relay node id this API hands out (base64 of `Type:id`, `Type` a node type), decoded; null for anything else. */
export function decodeNodeId(value: string): { typename: string; id: string } | null {
  const text = Buffer.from(value, 'base64').toString('utf8');
  // Only an exact encoding counts, so an upstream id (`exp_…`, `room_…`) is never mistaken for one.
  if (value === '' || Buffer.from(text, 'utf8').toString('base64') !== value) return null;
  const colon = text.indexOf(':');
  if (colon <= 0 || !NODE_TYPES.has(text.slice(0, colon))) return null;
  return { typename: text.slice(0, colon), id: text.slice(colon + 1) };
}

const article = (type: string): string => `${/^[AEIOU]/.test(type) ? 'an' : 'a'} ${type}`;

/** Refuses a node id of another type than the argument takes, naming both. */
export function checkNodeType(node: { typename: string }, type: string, argument: string, value: string): void {
  if (node.typename !== type)
    throw badInput(
      `'${argument}' is the node id of ${article(node.typename)}, not of ${article(type)} (pass its \`id\` or its upstream id)`,
      argument,
      { value, type: node.typename },
    );
}

/**
 * The upstream id a root field's argument names: the argument is either the upstream id itself, or
 * the Relay node id (`id`) the graph handed out for an object of this type.
 */
export function upstreamId(value: string | number, argument: string, type: string): string {
  const node = decodeNodeId(String(value));
  if (node === null) return requireId(value, argument);
  checkNodeType(node, type, argument, String(value));
  return requireId(node.id, argument);
}
