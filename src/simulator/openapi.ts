/**
 * The simulator's OpenAPI 3.1 description of what it serves, at `GET /api/v3/openapi.yaml` (the real
 * API documents itself there). Generated, never written by hand: the paths and methods come from the
 * route table (`API_ROUTES`), every data type's route, scopes, key scope, parameters (with their
 * checks), sorts, page limit and record fields from its spec (`SIMULATOR_DATA_TYPES`); the other routes
 * add a summary, their key scope, query parameters and body here (`OPERATIONS`, one entry per route and
 * method: a route without one fails the generation, and a test).
 */
import { stringify } from 'yaml';
import { API_ROUTES } from './api.ts';
import { DEPLOYMENT_STATUSES } from './model.ts';
import {
  acceptedParams,
  DATA_TYPE_PATHS,
  DEFAULT_MAX_LIMIT,
  FORMATS,
  SIMULATOR_DATA_TYPES,
  type DataTypePath,
  type DataTypeSpec,
  type ParamSpec,
} from './spec.ts';

type Schema = Record<string, unknown>;

/** A query parameter of a route that is not a data type's. */
interface QueryDoc {
  schema: Schema;
  description: string;
}

/** What the route table cannot say about a route and method. */
interface OperationDoc {
  summary: string;
  /** The key scope it needs; null: any valid key. */
  scope: string | null;
  query?: Record<string, QueryDoc>;
  /** Whether it takes a JSON object body. */
  body?: boolean;
  /** Its success status (200 unless said). */
  status?: 200 | 201 | 202;
  /** Whether it reads `X-Organization-Id` (a shared experiment), or needs it. */
  organization?: 'optional' | 'required';
}

/** Routes answered before the router, without a key. */
export const PUBLIC_ROUTES = ['/health', '/openapi.yaml'] as const;

const page = (defaultLimit: number, maxLimit: number): Record<string, QueryDoc> => ({
  limit: { schema: { type: 'integer', minimum: 1, maximum: maxLimit, default: defaultLimit }, description: 'Rows a page' },
  offset: { schema: { type: 'integer', minimum: 0, default: 0 }, description: 'Rows skipped' },
});
const search: QueryDoc = { schema: { type: 'string' }, description: 'Words the name or description contains (case-insensitive)' };

/** The routes besides the data types', by `METHOD /pattern`. */
const OPERATIONS: Record<string, OperationDoc> = {
  'GET /health': { summary: 'Whether the API is up (no key)', scope: null },
  'GET /openapi.yaml': { summary: 'This description (no key)', scope: null },
  'GET /data/check-access/experiment/:id': {
    summary: "Whether the key may view and export an experiment's data",
    scope: null,
    organization: 'optional',
  },
  'POST /data/events/batch': { summary: 'Record 1 to 100 events', scope: 'write:events', body: true, status: 201 },
  'GET /data/recordings/download/:roomId/:recordingId': {
    summary: 'A short-lived signed download URL of one recording',
    scope: 'read:recordings',
    organization: 'optional',
  },
  'GET /data/agent-decisions/room/:roomId/decision/:decisionId': {
    summary: "One agent decision with its detail (prompt, reasoning, chain, the peer model's snapshot)",
    scope: 'read:events',
    organization: 'optional',
  },
  'GET /experiments': { summary: 'List your experiments', scope: 'read:experiments', query: { search, ...page(50, 100) } },
  'POST /experiments': { summary: 'Create an experiment (the SDK schema)', scope: 'write:experiments', body: true, status: 201 },
  'POST /experiments/validate': { summary: 'Validate an experiment without saving it', scope: 'write:experiments', body: true },
  'GET /experiments/shared': {
    summary: 'List experiments other organizations shared with the X-Organization-Id organization (you must be one of its members)',
    scope: 'read:experiments',
    query: { search, ...page(50, 100) },
    organization: 'required',
  },
  'GET /experiments/:id': { summary: 'Get an experiment', scope: 'read:experiments', organization: 'optional' },
  'PUT /experiments/:id': { summary: 'Update an experiment (fields given replace)', scope: 'write:experiments', body: true },
  'DELETE /experiments/:id': {
    summary: 'Soft-delete an experiment',
    scope: 'delete:experiments',
    query: { skipDataCheck: { schema: { type: 'boolean', default: false }, description: 'Delete even with collected data' } },
  },
  'GET /experiments/:id/config': { summary: "An experiment's raw configuration", scope: 'read:experiments', organization: 'optional' },
  'GET /experiments/:id/export': {
    summary: 'The portable export: { experiment, mediaAssets }, with filename and mediaAssetsCount in the metadata',
    scope: 'read:experiments',
    organization: 'optional',
  },
  'GET /deployments': {
    summary: 'List your deployments',
    scope: 'read:experiments',
    query: {
      experimentId: { schema: { type: 'string' }, description: 'Only those of this experiment' },
      status: { schema: { type: 'string', enum: [...DEPLOYMENT_STATUSES] }, description: 'Only those in this status' },
    },
  },
  'POST /deployments': {
    summary: 'Create an agent-only deployment (its rooms start at once; the agent-role preflight must pass)',
    scope: 'write:deployments',
    body: true,
    status: 201,
  },
  'GET /deployments/:id': { summary: 'Get a deployment', scope: 'read:experiments' },
  'GET /deployments/:id/sessions': { summary: "A deployment's rooms", scope: 'read:experiments' },
  'GET /deployments/:id/agent-spend': { summary: "An agent deployment's spend, in all and per room", scope: 'read:experiments' },
  'POST /deployments/:id/run-more': {
    summary: 'Start more agent rooms (adds to the budget cap)',
    scope: 'write:deployments',
    body: true,
    status: 202,
  },
  'POST /deployments/:id/rooms/:roomId/stop': { summary: 'Force-end an agent room (no body)', scope: 'write:deployments' },
  'POST /deployments/:id/rooms/:roomId/retry': {
    summary: 'Replace a room whose spawn failed (no body)',
    scope: 'write:deployments',
    status: 202,
  },
  'GET /personas': { summary: 'List the personas you own or may use', scope: 'read:personas' },
  'POST /personas': { summary: 'Create a persona', scope: 'write:personas', body: true, status: 201 },
  'GET /personas/:id': { summary: 'Get a persona', scope: 'read:personas' },
  'PUT /personas/:id': { summary: 'Change a persona (JSON merge-patch)', scope: 'write:personas', body: true },
  'DELETE /personas/:id': { summary: 'Delete a persona', scope: 'write:personas' },
  'POST /personas/:id/duplicate': { summary: 'A private copy of a persona, named "<name> (copy)"', scope: 'write:personas', status: 201 },
  'GET /agent-cognition/catalog': { summary: 'The building blocks of a persona’s cognition', scope: 'read:personas' },
};

/** The common listing parameters (`LISTING_PARAMS`) as the simulator checks them. */
function listingParam(name: string, spec: DataTypeSpec): QueryDoc {
  switch (name) {
    case 'startTime':
    case 'endTime':
      return {
        schema: { type: 'string', format: 'date-time' },
        description: `Rows at or ${name === 'startTime' ? 'after' : 'before'} this instant`,
      };
    case 'limit':
      return page(Math.min(DEFAULT_MAX_LIMIT, spec.maxLimit ?? 1), spec.maxLimit ?? 1).limit as QueryDoc;
    case 'offset':
      return page(0, 1).offset as QueryDoc;
    case 'sort':
      return { schema: { type: 'string', enum: ['timestamp', ...spec.sorts], default: spec.defaultSort }, description: 'Sort field' };
    case 'order':
      return { schema: { type: 'string', enum: ['asc', 'desc'], default: 'asc' }, description: 'Sort order' };
    case 'format':
      return {
        schema: { type: 'string', enum: [...FORMATS], default: 'json' },
        description: 'json (an envelope), csv or ndjson (paging in headers)',
      };
    case 'deploymentId':
      return { schema: { type: 'string' }, description: 'Only rows of this deployment' };
    case 'roomId':
      return { schema: { type: 'string' }, description: "The participant's room: required at participant scope" };
    default:
      return { schema: { type: 'string' }, description: name };
  }
}

/** A data type's own parameter, as its spec checks it. */
function ownParam(param: ParamSpec): QueryDoc {
  switch (param.kind) {
    case 'enum':
      return { schema: { type: 'string', enum: [...param.values] }, description: `One of the ${param.name} values` };
    case 'string':
      return { schema: { type: 'string', minLength: 1, maxLength: 200 }, description: `Only rows of this ${param.name} (an open set)` };
    case 'bool':
      return { schema: { type: 'boolean', ...(param.default === undefined ? {} : { default: param.default }) }, description: param.name };
    case 'int':
      return {
        schema: {
          type: 'integer',
          minimum: param.min,
          maximum: param.max,
          ...(param.default === undefined ? {} : { default: param.default }),
        },
        description: param.name,
      };
  }
}

/** `Events`, `RatingsContinuous`, `AgentDecisions`: a data type's name in `components.schemas`. */
const schemaName = (path: string): string =>
  path
    .split(/[/-]/)
    .map((part) => `${part[0]?.toUpperCase() ?? ''}${part.slice(1)}`)
    .join('');

const ref = (kind: 'schemas' | 'parameters' | 'responses', name: string): Schema => ({ $ref: `#/components/${kind}/${name}` });

const envelope = (data: Schema): Schema => ({
  allOf: [ref('schemas', 'Success'), { type: 'object', properties: { data } }],
});

const ERRORS = { '400': 'BadRequest', '401': 'Unauthorized', '403': 'Forbidden', '404': 'NotFound', '429': 'RateLimited' } as const;

/** The OpenAPI operation id of a route and method: `getDataEventsScopeId`. */
function operationId(method: string, pattern: string): string {
  const words = pattern
    .split(/[/:.-]/)
    .filter(Boolean)
    .map((w) => `${w[0]?.toUpperCase() ?? ''}${w.slice(1)}`);
  return `${method.toLowerCase()}${words.join('')}`;
}

/** `/experiments/:id` → `/experiments/{id}`. */
export const openApiPath = (pattern: string): string => pattern.replace(/:(\w+)/g, '{$1}');

function pathParams(pattern: string, scopes: readonly string[] | null): Schema[] {
  return [...pattern.matchAll(/:(\w+)/g)].map(([, name]) => ({
    name,
    in: 'path',
    required: true,
    schema: name === 'scope' && scopes !== null ? { type: 'string', enum: [...scopes] } : { type: 'string' },
  }));
}

function queryParams(query: Record<string, QueryDoc>): Schema[] {
  return Object.entries(query).map(([name, doc]) => ({
    name,
    in: 'query',
    required: false,
    description: doc.description,
    schema: doc.schema,
  }));
}

function dataTypeOperation(type: DataTypePath, pattern: string): Schema {
  const spec = SIMULATOR_DATA_TYPES[type];
  const names = [...new Set(spec.scopes.flatMap((scope) => acceptedParams(spec, scope)))];
  const own = new Map(spec.params.map((p) => [p.name, p]));
  const query = Object.fromEntries(
    names.map((name) => [name, own.has(name) ? ownParam(own.get(name) as ParamSpec) : listingParam(name, spec)]),
  );
  const rows = envelope({ type: 'array', items: ref('schemas', `${schemaName(type)}Record`) });
  const content: Schema = spec.paginated
    ? {
        'application/json': { schema: rows },
        'text/csv': { schema: { type: 'string' } },
        'application/x-ndjson': { schema: { type: 'string' } },
      }
    : { 'application/json': { schema: rows } };
  return {
    operationId: operationId('GET', pattern),
    summary: spec.paginated
      ? `List ${spec.dataType} at ${spec.scopes.join(', ')} scope (pages of at most ${spec.maxLimit ?? 0})`
      : `Read ${spec.dataType} at ${spec.scopes.join(', ')} scope (no pages)`,
    tags: ['data'],
    'x-required-scope': spec.requiredScope,
    parameters: [...pathParams(pattern, spec.scopes), ...queryParams(query), ref('parameters', 'OrganizationId')],
    responses: { '200': { description: `${spec.dataType} rows`, content }, ...errorResponses() },
  };
}

function errorResponses(): Schema {
  return Object.fromEntries(Object.entries(ERRORS).map(([status, name]) => [status, ref('responses', name)]));
}

function documentedOperation(method: string, pattern: string): Schema {
  const doc = OPERATIONS[`${method} ${pattern}`];
  if (!doc) throw new Error(`openapi.ts: no OPERATIONS entry for ${method} ${pattern}`);
  const publicRoute = (PUBLIC_ROUTES as readonly string[]).includes(pattern);
  const organization =
    doc.organization === undefined
      ? []
      : [doc.organization === 'required' ? ref('parameters', 'RequiredOrganizationId') : ref('parameters', 'OrganizationId')];
  const status = String(doc.status ?? 200);
  const success =
    pattern === '/openapi.yaml'
      ? { description: 'This document', content: { 'application/yaml': { schema: { type: 'string' } } } }
      : pattern === '/health'
        ? { description: 'Up', content: { 'application/json': { schema: ref('schemas', 'Health') } } }
        : { description: doc.summary, content: { 'application/json': { schema: envelope({}) } } };
  return {
    operationId: operationId(method, pattern),
    summary: doc.summary,
    tags: [publicRoute ? 'meta' : (pattern.split('/')[1] ?? '')],
    ...(doc.scope === null ? {} : { 'x-required-scope': doc.scope }),
    ...(publicRoute ? { security: [] } : {}),
    parameters: [...pathParams(pattern, null), ...queryParams(doc.query ?? {}), ...organization],
    ...(doc.body ? { requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } } } : {}),
    responses: publicRoute ? { [status]: success } : { [status]: success, ...errorResponses() },
  };
}

/** The routes served (public ones first), each with its methods. */
export function servedRoutes(): { pattern: string; methods: string[] }[] {
  return [
    ...PUBLIC_ROUTES.map((pattern) => ({ pattern, methods: ['GET'] })),
    ...API_ROUTES.map((route) => ({ pattern: route.pattern, methods: Object.keys(route.methods) })),
  ];
}

/** The OpenAPI 3.1 document of everything the simulator serves. */
export function openApiDocument(): Schema {
  const dataRoutes = new Map(DATA_TYPE_PATHS.map((type) => [`/data/${type}/:scope/:id`, type]));
  const paths: Record<string, Schema> = {};
  const served = servedRoutes();
  const stale = Object.keys(OPERATIONS).filter((key) => !served.some((r) => r.methods.some((m) => `${m} ${r.pattern}` === key)));
  if (stale.length > 0) throw new Error(`openapi.ts: OPERATIONS entries for routes not served: ${stale.join(', ')}`);
  for (const { pattern, methods } of served) {
    const type = dataRoutes.get(pattern);
    paths[openApiPath(pattern)] = Object.fromEntries(
      methods.map((method) => [
        method.toLowerCase(),
        type === undefined ? documentedOperation(method, pattern) : dataTypeOperation(type, pattern),
      ]),
    );
  }
  const error = (description: string): Schema => ({ description, content: { 'application/json': { schema: ref('schemas', 'Error') } } });
  return {
    openapi: '3.1.1',
    info: {
      title: 'HyperStudy API v3 (simulator)',
      version: '3.0.0',
      description:
        'What the hyperstudy-graphql simulator serves, generated from its route table and data type spec. Every request but /health and /openapi.yaml carries X-API-Key; the limits are 1000 requests an hour per key and 100 a minute per endpoint (429 with Retry-After).',
    },
    servers: [{ url: '/api/v3' }],
    security: [{ ApiKey: [] }],
    paths,
    components: {
      securitySchemes: { ApiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' } },
      parameters: {
        OrganizationId: {
          name: 'X-Organization-Id',
          in: 'header',
          required: false,
          description: 'Your organization: reads an experiment shared with it (you must be one of its members)',
          schema: { type: 'string' },
        },
        RequiredOrganizationId: {
          name: 'X-Organization-Id',
          in: 'header',
          required: true,
          description: 'Your organization (you must be one of its members)',
          schema: { type: 'string' },
        },
      },
      responses: {
        BadRequest: error('INVALID_PARAMETER or VALIDATION_ERROR, with details'),
        Unauthorized: error('UNAUTHORIZED (no key) or AUTHENTICATION_ERROR (an invalid key)'),
        Forbidden: error('FORBIDDEN: a scope the key lacks (details.required, details.provided) or no access'),
        NotFound: error('NOT_FOUND'),
        RateLimited: {
          ...error('RATE_LIMIT_EXCEEDED'),
          headers: { 'Retry-After': { description: 'Seconds to wait', schema: { type: 'integer' } } },
        },
      },
      schemas: {
        Health: {
          type: 'object',
          required: ['status', 'version', 'timestamp'],
          properties: { status: { const: 'healthy' }, version: { type: 'string' }, timestamp: { type: 'string', format: 'date-time' } },
        },
        Success: {
          type: 'object',
          required: ['status', 'data'],
          properties: {
            status: { const: 'success' },
            data: { description: 'Records, or one object (bare or as a one-element array)' },
            metadata: {
              type: 'object',
              properties: {
                timestamp: { type: 'string', format: 'date-time' },
                pagination: ref('schemas', 'Pagination'),
                _warnings: { type: 'array', items: { type: 'string' } },
              },
            },
          },
        },
        Pagination: {
          type: 'object',
          required: ['total', 'returned', 'hasMore', 'limit', 'offset'],
          properties: {
            total: { type: 'integer' },
            returned: { type: 'integer' },
            hasMore: { type: 'boolean' },
            limit: { type: 'integer' },
            offset: { type: 'integer' },
            nextOffset: { type: 'integer', description: 'Only when hasMore' },
          },
        },
        Error: {
          type: 'object',
          required: ['status', 'error'],
          properties: {
            status: { const: 'error' },
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object' } },
            },
          },
        },
        ...Object.fromEntries(
          DATA_TYPE_PATHS.map((type) => [
            `${schemaName(type)}Record`,
            {
              type: 'object',
              description: `A ${SIMULATOR_DATA_TYPES[type].dataType} row (unknown extra fields may appear)`,
              properties: Object.fromEntries(SIMULATOR_DATA_TYPES[type].recordFields.map((field) => [field, {}])),
            },
          ]),
        ),
      },
    },
  };
}

/** The document as YAML (no anchors or aliases: every repeated part written out). */
export function openApiYaml(): string {
  return stringify(openApiDocument(), { aliasDuplicateObjects: false, lineWidth: 0 });
}
