import type { GatewayConfig } from './config.ts';
import type { Live } from './live/index.ts';
import { createLoaders } from './loaders/index.ts';
import type { GatewayContext } from './schema/builder.ts';
import type { Upstream } from './upstream/index.ts';
import type { UpstreamSession } from './upstream/session.ts';

/**
 * Each operation's context, of the subsystems' parts: the caller (whether it sent a key, its
 * organization) and its session with the upstream, the operation's loaders and planner, and live data.
 */
export function createContext(config: GatewayConfig, upstream: Upstream, live: Live): (initial: { request: Request }) => GatewayContext {
  const operation = (session: UpstreamSession) => ({ session, loaders: createLoaders(session, config.pageConcurrency, config.planner) });
  return ({ request }) => {
    const caller = upstream.caller(request);
    let payloads = 0;
    return {
      authenticated: caller.authenticated,
      organizationRefused: caller.organizationRefused,
      ...operation(caller.session()),
      defaultPageSize: config.defaultPageSize,
      warnings: new Set<string>(),
      explain: request.headers.get('x-explain-plan') === '1',
      live: live.context(request.signal, () => operation(caller.session(++payloads))),
    };
  };
}
