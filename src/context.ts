import type { GatewayConfig } from './config.ts';
import type { ExportJobs } from './exports/types.ts';
import type { Live } from './live/index.ts';
import { createLoaders } from './loaders/index.ts';
import type { GatewayContext } from './schema/builder.ts';
import type { Upstream } from './upstream/index.ts';
import type { UpstreamSession } from './upstream/session.ts';

/**
 * Each operation's context, of the subsystems' parts: the caller (whether it sent a key, its
 * organization) and its session with the upstream, the operation's loaders and planner, and live data.
 */
export function createContext(
  config: GatewayConfig,
  upstream: Upstream,
  live: Live,
  exports: ExportJobs,
): (initial: { request: Request }) => GatewayContext {
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
      exports,
    };
  };
}

/** The context an export job's table runs in: its own session (the job's key), loaders and planner, no request. */
export function jobContext(
  config: GatewayConfig,
  live: Live,
  exports: ExportJobs,
): (session: UpstreamSession, signal: AbortSignal) => GatewayContext {
  return (session, signal) => ({
    authenticated: true,
    organizationRefused: false,
    session,
    loaders: createLoaders(session, config.pageConcurrency, config.planner),
    defaultPageSize: config.defaultPageSize,
    warnings: new Set<string>(),
    explain: false,
    live: live.context(signal, () => ({ session, loaders: createLoaders(session, config.pageConcurrency, config.planner) })),
    exports,
  });
}
