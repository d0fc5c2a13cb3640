import {
  Kind,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLNamedType,
  type GraphQLSchema,
  type NamedTypeNode,
  type SelectionSetNode,
} from 'graphql';

/** Where a walk finds the fragments a selection spreads, by name. */
export type Fragments = (name: string) => FragmentDefinitionNode | null | undefined;

/** The fragments a document defines. */
export function fragmentsOf(document: DocumentNode): Fragments {
  const byName = new Map(
    document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]),
  );
  return (name) => byName.get(name);
}

/** What a walk makes of a selection set: one value per field, added up in document order. */
export interface SelectionFold<T> {
  /** The value of a selection without fields. */
  readonly none: T;
  /** Two values together (`a` selected before `b`); neither is changed. */
  add(a: T, b: T): T;
  /**
   * One field's value. `parent` is the type it is selected on, when the walk is typed and knows it.
   * The field's own selection set is the field's to fold: with `walk` (this walk), another, or not at all.
   */
  field(node: FieldNode, parent: GraphQLNamedType | undefined, walk: SelectionWalk<T>): T;
}

/** A walk's fold of one selection set, on the type `parent` when it is typed. */
export type SelectionWalk<T> = (selection: SelectionSetNode | undefined, parent?: GraphQLNamedType) => T;

/**
 * The walk over a query's selections that every reader of a document uses (the planner's lookahead,
 * the list, alias and key checks, the budget estimate): folds a selection set field by field, inline
 * fragments and named fragments resolved in place, each under its type condition when a schema is
 * given. A named fragment is folded once per walk and its value reused wherever it is spread, so a
 * document that spreads fragments within fragments costs its size, not its expansion; a fragment
 * spread within itself (validation refuses such documents) adds nothing there.
 */
export function selectionWalk<T>(fold: SelectionFold<T>, fragments: Fragments, schema: GraphQLSchema | null = null): SelectionWalk<T> {
  const known = new Map<string, T>();
  const typeOf = (condition: NamedTypeNode | undefined, parent: GraphQLNamedType | undefined): GraphQLNamedType | undefined =>
    condition === undefined ? parent : (schema?.getType(condition.name.value) ?? undefined);
  const spread = (name: string): T => {
    if (known.has(name)) return known.get(name) as T;
    known.set(name, fold.none);
    const fragment = fragments(name);
    const value = fragment ? walk(fragment.selectionSet, typeOf(fragment.typeCondition, undefined)) : fold.none;
    known.set(name, value);
    return value;
  };
  const walk: SelectionWalk<T> = (selection, parent) => {
    let value = fold.none;
    for (const s of selection?.selections ?? []) {
      if (s.kind === Kind.FIELD) value = fold.add(value, fold.field(s, parent, walk));
      else if (s.kind === Kind.INLINE_FRAGMENT) value = fold.add(value, walk(s.selectionSet, typeOf(s.typeCondition, parent)));
      else value = fold.add(value, spread(s.name.value));
    }
    return value;
  };
  return walk;
}

/** Root fields answered without the upstream: introspection, and the Federation subgraph SDL. */
export const keyless = (name: string): boolean => name.startsWith('__') || name === '_service';

/**
 * What a document's operations need, worked out once per document (Yoga hands the same document
 * object for the same text) and operation name.
 */
export function perOperation<T>(compute: (document: DocumentNode, operationName: string | null | undefined) => T) {
  const known = new WeakMap<DocumentNode, Map<string, T>>();
  return (document: DocumentNode, operationName: string | null | undefined): T => {
    let byName = known.get(document);
    if (!byName) known.set(document, (byName = new Map()));
    const name = operationName ?? '';
    if (byName.has(name)) return byName.get(name) as T;
    const value = compute(document, operationName);
    byName.set(name, value);
    return value;
  };
}
