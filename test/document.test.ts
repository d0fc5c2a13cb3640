import { buildSchema, getNamedType, isInterfaceType, isObjectType, parse, type FieldNode, type GraphQLNamedType } from 'graphql';
import { describe, expect, it } from 'vitest';
import { fragmentsOf, selectionWalk, type SelectionFold } from '../src/document.ts';

const schema = buildSchema(`
  interface Named { name: String }
  type Room implements Named { name: String, events: [String] }
  type Participant implements Named { name: String, room: Room }
  type Query { room: Room, participant: Participant, named: Named }
`);

/** Every field a selection reaches, as `Parent.field` (`?.field` where the walk knows no type), in order. */
const paths: SelectionFold<string[]> = {
  none: [],
  add: (a, b) => [...a, ...b],
  field: (f, parent, walk) => [`${parent?.name ?? '?'}.${f.name.value}`, ...walk(f.selectionSet, childOf(f, parent))],
};

const childOf = (f: FieldNode, parent: GraphQLNamedType | undefined): GraphQLNamedType | undefined =>
  isObjectType(parent) || isInterfaceType(parent) ? getNamedType(parent.getFields()[f.name.value]?.type) : undefined;

describe('selectionWalk (the one walk over a query’s selections)', () => {
  it('folds fields in document order, inline and named fragments resolved under their type conditions', () => {
    const document = parse(`
      query { room { ...R } named { name ... on Participant { room { events } } } }
      fragment R on Room { name events }
    `);
    const walk = selectionWalk(paths, fragmentsOf(document), schema);
    const operation = document.definitions[0];
    if (operation?.kind !== 'OperationDefinition') throw new Error('no operation');
    expect(walk(operation.selectionSet, schema.getQueryType() ?? undefined)).toEqual([
      'Query.room',
      'Room.name',
      'Room.events',
      'Query.named',
      'Named.name',
      'Participant.room',
      'Room.events',
    ]);
    // Untyped (no schema): the same fields, no parents.
    const untyped = selectionWalk(paths, fragmentsOf(document));
    expect(untyped(operation.selectionSet)).toEqual(['?.room', '?.name', '?.events', '?.named', '?.name', '?.room', '?.events']);
  });

  it('folds a named fragment once however often it is spread, and counts each spread', () => {
    // F0 spreads F1 twice, F1 spreads F2 twice, …: 2^20 expansions of F20's one field.
    let text = 'query { ...F0 }\n';
    for (let i = 0; i < 20; i++) text += `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }\n`;
    text += 'fragment F20 on Query { room { name } }\n';
    const document = parse(text);
    let calls = 0;
    const count = selectionWalk<number>(
      {
        none: 0,
        add: (a, b) => a + b,
        field: (f, _parent, walk) => {
          calls++;
          return 1 + walk(f.selectionSet);
        },
      },
      fragmentsOf(document),
    );
    const operation = document.definitions[0];
    if (operation?.kind !== 'OperationDefinition') throw new Error('no operation');
    expect(count(operation.selectionSet)).toBe(2 * 2 ** 20);
    expect(calls).toBe(2);
  });

  it('adds nothing for a fragment spread within itself, or one the document lacks', () => {
    const document = parse('query { ...A ...Missing } fragment A on Query { room { name } ...A }');
    const walk = selectionWalk(paths, fragmentsOf(document), schema);
    const operation = document.definitions[0];
    if (operation?.kind !== 'OperationDefinition') throw new Error('no operation');
    expect(walk(operation.selectionSet, schema.getQueryType() ?? undefined)).toEqual(['Query.room', 'Room.name']);
  });
});
