/**
 * `GET /api/v3/openapi.yaml`: the simulator's OpenAPI 3.1 description of what it serves, generated from
 * its route table and data type spec, parsed as YAML, validated against the OpenAPI 3.1 schema, and held
 * to the routes it serves (both ways) and to what its routes accept.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { describeSimulator, parseSimulatorArgs } from '../src/simulator/cli.ts';
import { openApiPath, servedRoutes } from '../src/simulator/openapi.ts';
import { startSimulator, type Simulator } from '../src/simulator/server.ts';
import { DATA_TYPE_PATHS, SIMULATOR_DATA_TYPES } from '../src/simulator/spec.ts';
import { call } from './helpers/http.ts';
import { FULL, NO_RATE_LIMIT } from './helpers/simulator.ts';

type Json = Record<string, unknown>;
interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema?: Json;
  $ref?: string;
}
interface Operation {
  operationId: string;
  summary: string;
  parameters: Parameter[];
  'x-required-scope'?: string;
  security?: unknown[];
  requestBody?: Json;
  responses: Record<string, Json>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { parameters: Record<string, Parameter> };
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

let sim: Simulator;
let text: string;
let doc: Document;
beforeAll(async () => {
  sim = await startSimulator({ rateLimit: NO_RATE_LIMIT });
  const res = await fetch(`${sim.url}/openapi.yaml`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/yaml; charset=utf-8');
  text = await res.text();
  doc = parse(text) as Document;
});
afterAll(() => sim.close());

/** The query parameters an operation documents, by name. */
const queryOf = (operation: Operation | undefined): Record<string, Parameter> =>
  Object.fromEntries((operation?.parameters ?? []).filter((p) => p.in === 'query').map((p) => [p.name, p]));

describe('the OpenAPI description at /api/v3/openapi.yaml', () => {
  it('is served without a key, is YAML without aliases, and a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toBe('3.1.1');
    // Every repeated part written out: a reader need not resolve YAML anchors.
    expect(text).not.toMatch(/(^|\s)[&*][A-Za-z0-9]+\s/m);
    const validator = new Validator();
    const result = await validator.validate(doc as unknown as Record<string, unknown>);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    // The same text every time (generated once per simulator, deterministic).
    expect(await (await fetch(`${sim.url}/openapi.yaml`)).text()).toBe(text);
    expect(sim.stats.byPath()['/api/v3/openapi.yaml']).toBe(2);
    // `npm run simulator` and `npm run demo` say where it is.
    expect(describeSimulator(sim.url, parseSimulatorArgs([]))).toContain(`  OpenAPI 3.1 description: ${sim.url}/openapi.yaml`);
  });

  it('holds every route and method the simulator serves, and nothing else', () => {
    const served = servedRoutes().flatMap(({ pattern, methods }) => methods.map((m) => `${m.toLowerCase()} ${openApiPath(pattern)}`));
    const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((k) => METHODS.includes(k))
        .map((m) => `${m} ${path}`),
    );
    expect(documented.sort()).toEqual(served.sort());
    // 15 data types, 28 other routes and methods, /health and /openapi.yaml.
    expect(DATA_TYPE_PATHS.length).toBe(15);
    expect(served.length).toBe(45);
    const ids = Object.values(doc.paths).flatMap((item) => Object.values(item).map((o) => o.operationId));
    expect(new Set(ids).size).toBe(ids.length);
    // Each path parameter is declared, required.
    for (const [path, item] of Object.entries(doc.paths)) {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const operation of Object.values(item)) {
        expect(
          operation.parameters.filter((p) => p.in === 'path').map((p) => [p.name, p.required]),
          path,
        ).toEqual(names.map((n) => [n, true]));
      }
    }
  });

  it("derives each data type's operation from its spec: scopes, key scope, parameters, sorts, page limit, record fields", () => {
    const events = doc.paths['/data/events/{scope}/{id}']?.get;
    expect(events?.['x-required-scope']).toBe('read:events');
    expect(events?.parameters.find((p) => p.name === 'scope')?.schema).toEqual({
      type: 'string',
      enum: ['experiment', 'room', 'participant'],
    });
    const query = queryOf(events);
    expect(Object.keys(query)).toEqual([
      'startTime',
      'endTime',
      'limit',
      'offset',
      'sort',
      'order',
      'format',
      'deploymentId',
      'roomId',
      'category',
    ]);
    expect(query.sort?.schema).toEqual({ type: 'string', enum: ['timestamp', ...SIMULATOR_DATA_TYPES.events.sorts], default: 'timestamp' });
    expect(query.limit?.schema).toEqual({ type: 'integer', minimum: 1, maximum: 1000, default: 1000 });
    expect(query.format?.schema).toEqual({ type: 'string', enum: ['json', 'csv', 'ndjson'], default: 'json' });
    expect(Object.keys(events?.responses['200']?.content as Json)).toEqual(['application/json', 'text/csv', 'application/x-ndjson']);
    expect(queryOf(doc.paths['/data/rooms/{scope}/{id}']?.get).limit?.schema).toMatchObject({ maximum: 5000 });
    const participants = doc.paths['/data/participants/{scope}/{id}']?.get;
    expect(participants?.parameters.find((p) => p.name === 'scope')?.schema).toEqual({ type: 'string', enum: ['experiment', 'room'] });
    expect(queryOf(participants).completionCode?.schema).toEqual({
      type: 'string',
      enum: ['SUCCESS', 'TIMEOUT', 'TECHNICAL', 'NOCONSENT', 'ABANDONED', 'IN_PROGRESS', 'COMPLETED_NO_CODE'],
    });
    expect(Object.keys(queryOf(doc.paths['/data/agent-decisions/{scope}/{id}']?.get))).toEqual(['detail', 'limit']);
    expect(Object.keys(queryOf(doc.paths['/data/counts/{scope}/{id}']?.get))).toEqual(['roomId']);
    const records = (doc.components as unknown as { schemas: Record<string, { properties: Json }> }).schemas;
    for (const type of DATA_TYPE_PATHS) {
      const name = `${type
        .split(/[/-]/)
        .map((w) => `${w[0]?.toUpperCase() ?? ''}${w.slice(1)}`)
        .join('')}Record`;
      expect(Object.keys(records[name]?.properties ?? {}), type).toEqual([...SIMULATOR_DATA_TYPES[type].recordFields]);
    }
    // Data routes read a shared experiment with X-Organization-Id; the shared listing needs it.
    expect(events?.parameters.at(-1)).toEqual({ $ref: '#/components/parameters/OrganizationId' });
    expect(doc.paths['/experiments/shared']?.get?.parameters.at(-1)).toEqual({ $ref: '#/components/parameters/RequiredOrganizationId' });
  });

  it("accepts every query parameter a data type's operation documents, at every documented scope, and refuses another type's", async () => {
    const participant = (await call<{ data: Json[] }>(`${sim.url}/data/participants/room/room_movie01_001?limit=1`, { key: FULL })).body
      .data[0];
    const scopeIds: Record<string, string> = { experiment: 'exp_movie01', room: 'room_movie01_001', participant: String(participant?.id) };
    /** A valid value of a documented parameter. */
    const sample = (p: Parameter): string => {
      const schema = p.schema ?? {};
      if (p.name === 'roomId') return 'room_movie01_001';
      if (Array.isArray(schema.enum)) return String(schema.enum[0]);
      if (schema.type === 'integer') return String(schema.default ?? schema.minimum);
      if (schema.type === 'boolean') return 'true';
      if (schema.format === 'date-time') return '2024-10-01T00:00:00.000Z';
      return 'x';
    };
    const dataOperations = DATA_TYPE_PATHS.map((type) => [type, doc.paths[`/data/${type}/{scope}/{id}`]?.get] as const);
    const everyParam = new Set(dataOperations.flatMap(([, op]) => Object.keys(queryOf(op))));
    let requests = 0;
    for (const [type, operation] of dataOperations) {
      const documented = Object.values(queryOf(operation));
      const scopes = (operation?.parameters.find((p) => p.name === 'scope')?.schema?.enum ?? []) as string[];
      for (const scope of scopes) {
        const params = new URLSearchParams(documented.map((p) => [p.name, sample(p)]));
        // The counts take roomId at participant scope only; the listings take it at every scope.
        if (scope !== 'participant' && !SIMULATOR_DATA_TYPES[type].paginated) params.delete('roomId');
        if (scope === 'participant') params.set('roomId', 'room_movie01_001');
        const res = await call<{ error?: Json }>(`${sim.url}/data/${type}/${scope}/${scopeIds[scope]}?${params.toString()}`, { key: FULL });
        requests++;
        expect([res.status, res.body.error], `${type} at ${scope}: ${params.toString()}`).toEqual([200, undefined]);
      }
      const scope = scopes[0] ?? 'experiment';
      for (const name of [...everyParam].filter((n) => !(n in queryOf(operation)))) {
        const res = await call<{ error?: { details: Json } }>(`${sim.url}/data/${type}/${scope}/${scopeIds[scope]}?${name}=1`, {
          key: FULL,
        });
        requests++;
        expect([res.status, res.body.error?.details.parameter], `${type}: ${name}`).toEqual([400, name]);
      }
    }
    // 36 pairs of a data type and a scope, and 132 parameters of other types.
    expect(requests).toBe(168);
  });

  it('documents the other routes as they behave: no key for /health, scopes, bodies, statuses and query parameters', async () => {
    expect(doc.paths['/health']?.get?.security).toEqual([]);
    expect(doc.paths['/openapi.yaml']?.get?.security).toEqual([]);
    expect(doc.paths['/experiments']?.post).toMatchObject({ 'x-required-scope': 'write:experiments', requestBody: { required: true } });
    expect(Object.keys(doc.paths['/experiments']?.post?.responses ?? {})).toEqual(['201', '400', '401', '403', '404', '429']);
    expect(doc.paths['/deployments/{id}/rooms/{roomId}/stop']?.post?.requestBody).toBeUndefined();
    expect(Object.keys(doc.paths['/deployments/{id}/run-more']?.post?.responses ?? {})[0]).toBe('202');
    expect(Object.keys(queryOf(doc.paths['/experiments']?.get))).toEqual(['search', 'limit', 'offset']);
    expect(queryOf(doc.paths['/experiments']?.get).limit?.schema).toEqual({ type: 'integer', minimum: 1, maximum: 100, default: 50 });
    expect(Object.keys(queryOf(doc.paths['/deployments']?.get))).toEqual(['experimentId', 'status']);

    // What the document says of a route is what the route does: the documented limits are the checked ones.
    const over = await call<{ error: { details: Json } }>(`${sim.url}/experiments?limit=101`, { key: FULL });
    expect(over.status).toBe(400);
    expect(over.body.error.details).toEqual({ parameter: 'limit', value: '101', expected: 'integer between 1 and 100' });
    const roomsOver = await call<{ error: { details: Json } }>(`${sim.url}/data/rooms/experiment/exp_movie01?limit=5001`, { key: FULL });
    expect(roomsOver.body.error.details).toMatchObject({ parameter: 'limit', value: '5001' });
    expect((await call(`${sim.url}/data/rooms/experiment/exp_movie01?limit=5000`, { key: FULL })).status).toBe(200);
    // And every documented scope is served, every undocumented one refused.
    for (const type of DATA_TYPE_PATHS) {
      const scopes = (doc.paths[`/data/${type}/{scope}/{id}`]?.get?.parameters.find((p) => p.name === 'scope')?.schema?.enum ??
        []) as string[];
      expect(scopes, type).toEqual([...SIMULATOR_DATA_TYPES[type].scopes]);
    }
  });
});
