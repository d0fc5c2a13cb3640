/**
 * The simulator's router: one table of route patterns (from each route module), matched on path
 * segments. The per-endpoint rate limit counts a request against the pattern it matched.
 */
import { ApiFailure } from './errors.ts';
import { methodNotAllowed, type ApiContext, type ApiRequest, type ApiResult, type Handler, type Route } from './routes/common.ts';
import { DATA_ROUTES, dataPathFailure } from './routes/data.ts';
import { DEPLOYMENT_ROUTES } from './routes/deployments.ts';
import { EXPERIMENT_ROUTES } from './routes/experiments.ts';
import { PERSONA_ROUTES } from './routes/personas.ts';

export type { ApiContext, ApiRequest, ApiResult } from './routes/common.ts';

interface CompiledRoute {
  route: Route;
  segments: string[];
  literals: number;
}

/** Every route the router serves (besides `/health` and `/openapi.yaml`, answered before it, without a key). */
export const API_ROUTES: readonly Route[] = [...DATA_ROUTES, ...EXPERIMENT_ROUTES, ...DEPLOYMENT_ROUTES, ...PERSONA_ROUTES];

const ROUTES: CompiledRoute[] = API_ROUTES.map((route) => {
  const segments = route.pattern.split('/').filter(Boolean);
  return { route, segments, literals: segments.filter((s) => !s.startsWith(':')).length };
});

function decodeSegment(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** The route a path matches (the one with most literal segments when several do), with its parameters. */
function match(segments: string[]): { route: CompiledRoute; params: Record<string, string> } | null {
  let best: { route: CompiledRoute; params: Record<string, string> } | null = null;
  for (const route of ROUTES) {
    if (route.segments.length !== segments.length || (best !== null && best.route.literals >= route.literals)) continue;
    const params: Record<string, string> = {};
    const ok = route.segments.every((part, i) => {
      const value = segments[i] ?? '';
      if (part.startsWith(':')) params[part.slice(1)] = decodeSegment(value);
      return part.startsWith(':') || part === value;
    });
    if (ok) best = { route, params };
  }
  return best;
}

/** Routes an authenticated, rate-checked request. Throws ApiFailure for every documented error. */
export async function routeApi(ctx: ApiContext, req: ApiRequest): Promise<ApiResult> {
  const found = match(req.segments);
  if (!found) {
    const [head, ...rest] = req.segments;
    if (head === 'data') throw dataPathFailure(rest);
    throw new ApiFailure(404, 'NOT_FOUND', `No route for ${req.method} /api/v3/${req.segments.join('/')}`);
  }
  const handler: Handler | undefined = found.route.route.methods[req.method];
  if (!handler) throw methodNotAllowed(req, Object.keys(found.route.route.methods));
  return handler(ctx, req, found.params);
}

/**
 * The route template a request matched, as the per-endpoint rate limit counts it: parameters stay
 * placeholders (`GET /deployments/:id/sessions`), except a data route's scope (`/data/events/room/:id`).
 */
export function endpointOf(method: string, segments: string[]): string {
  const found = match(segments);
  if (!found) return `${method} /${segments.join('/')}`;
  const template = found.route.segments.map((part) => (part === ':scope' ? (found.params.scope ?? part) : part));
  return `${method} /${template.join('/')}`;
}
