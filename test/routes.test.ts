import { describe, expect, it } from 'vitest';
import { endpointOf as simulatorEndpointOf } from '../src/simulator/api.ts';
import { DATA_ROUTES } from '../src/simulator/routes/data.ts';
import { DEPLOYMENT_ROUTES } from '../src/simulator/routes/deployments.ts';
import { EXPERIMENT_ROUTES } from '../src/simulator/routes/experiments.ts';
import { PERSONA_ROUTES } from '../src/simulator/routes/personas.ts';
import { DATA_TYPE_PATHS, SIMULATOR_DATA_TYPES } from '../src/simulator/spec.ts';
import { LISTINGS } from '../src/spec/data-types.ts';
import { endpointOf, OTHER_DATA, requiredScope, ROUTE_TEMPLATES, routes } from '../src/upstream/routes.ts';

// The gateway's route table (src/upstream/routes.ts) and the simulator's (src/simulator/routes/) are
// written apart — the simulator imports nothing of the gateway — and held together here.

/** A route pattern with every parameter written `:id`, as the gateway's templates have them. */
const asTemplate = (pattern: string): string => pattern.replace(/:\w+/g, ':id');

/** The simulator's routes besides the data types (`/data/{type}/:scope/:id`): template → methods. */
const SIMULATED = new Map<string, string[]>([
  // Answered before routing (and without a key), as the upstream does.
  ['/health', ['GET']],
  ...[...DATA_ROUTES, ...EXPERIMENT_ROUTES, ...DEPLOYMENT_ROUTES, ...PERSONA_ROUTES]
    .filter((route) => !route.pattern.includes(':scope'))
    .map((route): [string, string[]] => [asTemplate(route.pattern), Object.keys(route.methods).sort()]),
]);

const GATEWAY = new Map(ROUTE_TEMPLATES.map(([template, methods]) => [template, Object.keys(methods).sort()]));

/** A path of a template, each `:id` a sample id. */
const pathOf = (template: string): string => template.replace(/:id/g, 'id1');

describe('the gateway’s routes and the simulator’s', () => {
  it('every route the gateway calls is served by the simulator with the same methods, and the other way round', () => {
    expect(Object.fromEntries(GATEWAY)).toEqual(Object.fromEntries([...SIMULATED].filter(([template]) => GATEWAY.has(template))));
    // What the simulator serves that the gateway never calls.
    expect([...SIMULATED.keys()].filter((template) => !GATEWAY.has(template))).toEqual([]);
  });

  it('every path `routes` builds is one of the templates', () => {
    const built = Object.entries(routes)
      .filter(([name]) => name !== 'data')
      .map(([name, build]) => [
        name,
        asTemplate((build as (...ids: string[]) => string)(...Array<string>(build.length).fill('id1')).replace(/id1/g, ':id')),
      ]);
    for (const [name, template] of built) expect(GATEWAY.has(template ?? ''), `${name}: ${template}`).toBe(true);
    expect(new Set(built.map(([, template]) => template))).toEqual(new Set(GATEWAY.keys()));
  });

  it('counts each request as the same endpoint as the simulator does (the per-minute limit is per endpoint)', () => {
    const requests = [
      ...ROUTE_TEMPLATES.flatMap(([template, methods]) => Object.keys(methods).map((method) => [method, pathOf(template)] as const)),
      ...DATA_TYPE_PATHS.flatMap((type) =>
        SIMULATOR_DATA_TYPES[type].scopes.map((scope) => ['GET', `/data/${type}/${scope}/id1`] as const),
      ),
    ];
    for (const [method, path] of requests) {
      expect(endpointOf(method, path), `${method} ${path}`).toBe(asTemplate(simulatorEndpointOf(method, path.split('/').filter(Boolean))));
    }
    expect(requests.length).toBe(65);
  });

  it('orders each listing by the instant the simulator sorts it by (a table merges parents’ listings by it)', () => {
    for (const listing of LISTINGS) {
      const simulated = SIMULATOR_DATA_TYPES[listing.path as keyof typeof SIMULATOR_DATA_TYPES];
      expect([listing.path, listing.instant]).toEqual([listing.path, simulated.timeField]);
    }
  });

  it('asks of each data type the scope the simulator requires, where the upstream documents one', () => {
    const scopes = Object.fromEntries(DATA_TYPE_PATHS.map((type) => [type, requiredScope(`/data/${type}/room/id1`)]));
    for (const type of DATA_TYPE_PATHS) {
      const { requiredScope: simulated, scopes: served } = SIMULATOR_DATA_TYPES[type];
      for (const scope of served) expect([null, simulated], type).toContain(requiredScope(`/data/${type}/${scope}/id1`));
    }
    // Every data type the gateway reads is a listing of src/spec/ or one of OTHER_DATA; those without a
    // documented scope are these.
    expect(new Set(DATA_TYPE_PATHS)).toEqual(new Set([...LISTINGS.map((l) => l.path), ...Object.keys(OTHER_DATA)]));
    expect(Object.keys(scopes).filter((type) => scopes[type] === null)).toEqual(['eyetracking', 'variables', 'counts']);
  });
});
