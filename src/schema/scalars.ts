import { DateTimeResolver } from 'graphql-scalars';
import { BoundedJSON } from './json.ts';
import { GraphQLError, Kind, type ValueNode } from 'graphql';
import { EVENT_CATEGORIES } from '../spec/spec.ts';
import { eventCategory } from '../spec/params.ts';
import { builder } from './builder.ts';

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('JSON', BoundedJSON);

const NOT_A_CATEGORY = 'An event category is a name (MEDIA) or a string ("media")';

/** A category as given, checked; the error is the schema's (validation or variable coercion), not a field's. */
function category(value: unknown, asName = false): string {
  if (typeof value !== 'string') throw new GraphQLError(NOT_A_CATEGORY);
  try {
    return eventCategory(value, 'category', asName);
  } catch (error) {
    throw new GraphQLError(error instanceof Error ? error.message : NOT_A_CATEGORY);
  }
}

/**
 * Event categories are an open set upstream: a category the gateway has never seen must neither
 * make a filter impossible nor fail a record. Known categories are also accepted as enum-style names,
 * as the schema's earlier enum took them.
 */
builder.scalarType('EventCategory', {
  description: `An event category: a known one by name (${EVENT_CATEGORIES.map((c) => c.toUpperCase()).join(', ')}) or as the upstream writes it ("media"), or any other category as a string. An unknown one in capitals that looks like a slip of a known one (COMPONENTS) is refused, naming the known one; in lower case ("components") it is sent as given, with a warning in extensions.upstream.warnings.`,
  serialize: (value) => String(value),
  parseValue: (value) => category(value),
  parseLiteral: (node: ValueNode) => {
    if (node.kind === Kind.ENUM || node.kind === Kind.STRING) return category(node.value, node.kind === Kind.ENUM);
    throw new GraphQLError(NOT_A_CATEGORY);
  },
});

export const SortOrder = builder.enumType('SortOrder', {
  values: { ASC: { value: 'asc' }, DESC: { value: 'desc' } } as const,
});
