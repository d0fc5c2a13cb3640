import {
  getOperationAST,
  Kind,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';

/**
 * Visits every field an operation selects, fragments resolved (each once along a path), telling
 * whether the field is at the root. Returns the operation, or null when the document has none.
 */
export function visitFields(
  document: DocumentNode,
  operationName: string | null | undefined,
  visit: (field: FieldNode, atRoot: boolean) => void,
): OperationDefinitionNode | null {
  const operation = getOperationAST(document, operationName ?? undefined);
  if (!operation) return null;
  const fragments = new Map(
    document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]),
  );
  const walk = (selection: SelectionSetNode, atRoot: boolean, seen: ReadonlySet<string>): void => {
    for (const s of selection.selections) {
      if (s.kind === Kind.FIELD) {
        visit(s, atRoot);
        if (s.selectionSet) walk(s.selectionSet, false, seen);
      } else if (s.kind === Kind.INLINE_FRAGMENT) walk(s.selectionSet, atRoot, seen);
      else if (!seen.has(s.name.value)) {
        const fragment = fragments.get(s.name.value);
        if (fragment) walk(fragment.selectionSet, atRoot, new Set([...seen, s.name.value]));
      }
    }
  };
  walk(operation.selectionSet, true, new Set());
  return operation;
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
