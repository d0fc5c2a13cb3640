import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LISTINGS } from '../src/spec/data-types.ts';
import { filtersOf } from '../src/spec/spec.ts';
import { LISTING_PARAMS, SIMULATOR_DATA_TYPES, type DataTypeSpec } from '../src/simulator/spec.ts';
import { startStack, type Stack } from './helpers/stack.ts';

const EXP = 'exp_movie01';
const ROOM = 'room_movie01_002';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack.close());
beforeEach(() => stack.sim.stats.reset());

/** The upstream query parameters of the data requests the simulator served, by data type path. */
function sentParams(path: string): URLSearchParams[] {
  return stack.sim.stats.requests.filter((r) => r.path.startsWith(`/api/v3/data/${path}/`)).map((r) => new URLSearchParams(r.query));
}

const ROOTS = { experiment: `experiment(id: "${EXP}")`, room: `room(id: "${ROOM}")` } as const;

describe('the data-type spec drives what reaches the upstream', () => {
  for (const spec of LISTINGS) {
    it(`${spec.field}: every declared filter, the sort and the order arrive upstream as their parameters`, async () => {
      const level = spec.scopes.includes('experiment') ? 'experiment' : 'room';
      const args = [...filtersOf(spec).map((f) => `${f.arg}: ${f.example[0]}`), 'sort: TIMESTAMP', 'order: DESC', 'first: 1'].join(', ');
      await stack.gql(`{ x: ${ROOTS[level]} { ${spec.field}(${args}) { totalCount } } }`);
      const sent = sentParams(spec.path);
      expect(sent.length, spec.field).toBeGreaterThan(0);
      for (const query of sent) {
        for (const filter of filtersOf(spec)) expect(query.get(filter.param), `${spec.field}.${filter.arg}`).toBe(filter.example[1]);
        expect([query.get('sort'), query.get('order')]).toEqual(['timestamp', 'desc']);
      }
    });
  }

  it('passes a category the gateway does not know as given, and an unknown name as the upstream writes it', async () => {
    await stack.gql(
      `{ room(id: "${ROOM}") { a: events(category: "brand_new.kind") { totalCount } b: events(category: EYE_BLINK) { totalCount } } }`,
    );
    expect(
      sentParams('events')
        .map((q) => q.get('category'))
        .sort(),
    ).toEqual(['brand_new.kind', 'eye_blink']);
  });
});

describe('the gateway’s spec and the simulator’s cannot drift apart', () => {
  const simulated = SIMULATOR_DATA_TYPES as Readonly<Record<string, DataTypeSpec>>;
  for (const spec of LISTINGS) {
    it(`${spec.path}: same scopes, filters, sorts, page size and fields on both sides`, () => {
      const sim = simulated[spec.path];
      expect(sim, spec.path).toBeDefined();
      if (!sim) return;
      expect([...spec.scopes].sort()).toEqual([...sim.scopes].sort());
      if (spec.requiredScope !== null) expect(spec.requiredScope).toBe(sim.requiredScope);
      // Every filter the gateway sends is one the upstream takes, and every one it takes is offered.
      const accepted = new Set([...LISTING_PARAMS, ...sim.params.map((p) => p.name)]);
      for (const filter of filtersOf(spec)) expect(accepted.has(filter.param), `${spec.field}.${filter.arg}`).toBe(true);
      expect(sim.params.map((p) => p.name).sort()).toEqual(spec.filters.map((f) => f.param).sort());
      expect([...spec.sort.fields].sort()).toEqual([...sim.sorts].sort());
      expect(spec.pageLimit).toBe(sim.maxLimit);
      if (typeof spec.node === 'string') return;
      // Every field the upstream sends is a field of the record type (besides ownership and `_type`), and
      // a field the upstream no longer sends is one the gateway keeps for older records.
      const gateway = new Set(spec.node.fields.map(([name]) => name));
      const ownership = new Set(['experimentId', 'roomId', 'sessionId', 'participantId', 'downloadUrl']);
      expect(sim.recordFields.filter((f) => !gateway.has(f) && !ownership.has(f))).toEqual([]);
      const legacy = spec.node.fields.filter(([name, , description]) => !sim.recordFields.includes(name) && !/older/i.test(description));
      expect(legacy).toEqual([]);
    });
  }
});
