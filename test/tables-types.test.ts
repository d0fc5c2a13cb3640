/**
 * Tables from the graph (issue 20): every data type at every scope, as typed Arrow (read by Arrow JS)
 * and Parquet (read by DuckDB) columns, equal to the JSON answer of the same selection flattened.
 */
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LISTINGS } from '../src/spec/data-types.ts';
import type { FieldKind, RecordTypeSpec } from '../src/spec/spec.ts';
import { nodes, startStack, type Stack } from './helpers/stack.ts';
import { Duck, fetchTable, restAll } from './helpers/tables.ts';

const EXP = 'exp_movie01';

const ARROW_TYPES: Record<FieldKind, string> = {
  String: 'Utf8',
  Int: 'Int32',
  Float: 'Float64',
  Boolean: 'Bool',
  DateTime: 'Timestamp<MILLISECOND, UTC>',
  JSON: 'Utf8',
  StringList: 'Utf8',
};

const DUCKDB_TYPES: Record<FieldKind, string> = {
  String: 'VARCHAR',
  Int: 'INTEGER',
  Float: 'DOUBLE',
  Boolean: 'BOOLEAN',
  DateTime: 'TIMESTAMP WITH TIME ZONE',
  JSON: 'VARCHAR',
  StringList: 'VARCHAR',
};

/** A JSON answer's value as the typed column holds it: epoch ms for DateTime, JSON text for JSON values and lists. */
const typed = (value: unknown, kind: FieldKind): unknown =>
  value === null || value === undefined
    ? null
    : kind === 'DateTime'
      ? Date.parse(String(value))
      : kind === 'JSON' || kind === 'StringList'
        ? JSON.stringify(value)
        : value;

let stack: Stack;
let duck: Duck;
let scopes: { kind: string; root: (selection: string) => string }[];

beforeAll(async () => {
  stack = await startStack({ rooms: 2, participantsPerRoom: 2 });
  duck = await Duck.open();
  const participant = (await restAll(stack.rest, `/data/participants/experiment/${EXP}`))[0] as Record<string, unknown>;
  const roomId = String(participant.roomId ?? participant.sessionId);
  scopes = [
    { kind: 'experiment', root: (s) => `experiment(id: "${EXP}") { ${s} }` },
    { kind: 'room', root: (s) => `room(id: "${roomId}") { ${s} }` },
    { kind: 'participant', root: (s) => `participant(id: "${String(participant.id)}", roomId: "${roomId}") { ${s} }` },
  ];
});
afterAll(async () => {
  duck?.close();
  await stack?.close();
});

const types = LISTINGS.filter((spec): spec is typeof spec & { node: RecordTypeSpec } => typeof spec.node !== 'string');

describe('every data type at every scope', () => {
  it.each(types.map((spec) => [spec.field, spec] as const))(
    '%s: typed Arrow and Parquet columns equal the JSON answer',
    async (field, spec) => {
      for (const scope of scopes.filter((s) => spec.scopes.includes(s.kind as never))) {
        const names = spec.node.fields.map(([name]) => name);
        const selection = names.join(' ');
        const root = scope.root('').split('(')[0] as string;
        const json = await stack.gql<Record<string, Record<string, unknown>>>(
          `{ ${scope.root(`${field}(first: 1000) { edges { node { ${selection} } } }`)} }`,
        );
        expect(json.body.errors, `${field} at ${scope.kind}`).toBeUndefined();
        const records = nodes<Record<string, unknown>>(json.body.data?.[root]?.[field]);
        expect(records.length, `${field} at ${scope.kind}`).toBeGreaterThan(0);
        const columns = names.map((n) => `${root}.${field}.${n}`);
        const query = `{ ${scope.root(`${field} { edges { node { ${selection} } } }`)} }`;

        const arrow = tableFromIPC((await fetchTable(stack.url, query, { format: 'arrow' })).bytes);
        expect(
          arrow.schema.fields.map((f) => [f.name, String(f.type)]),
          `${field} at ${scope.kind}`,
        ).toEqual(spec.node.fields.map(([name, kind]) => [`${root}.${field}.${name}`, ARROW_TYPES[kind]]));
        expect(
          arrow.toArray().map((row) => columns.map((c) => (row as Record<string, unknown>)[c] ?? null)),
          `${field} at ${scope.kind}`,
        ).toEqual(records.map((r) => spec.node.fields.map(([name, kind]) => typed(r[name], kind))));

        const parquet = await fetchTable(stack.url, query, { format: 'parquet' });
        const read = await duck.read(parquet.bytes, 'parquet', (p) => `select * from read_parquet(${p})`);
        expect(read.columns).toEqual(columns);
        expect(read.types, `${field} at ${scope.kind}`).toEqual(spec.node.fields.map(([, kind]) => DUCKDB_TYPES[kind]));
        expect(read.rows).toHaveLength(records.length);
      }
    },
  );
});
