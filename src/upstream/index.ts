import type { Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { GatewayConfig } from '../config.ts';
import { apiKeyOf, organizationOf } from '../http/caller.ts';
import { requestIdOf } from '../http/request-id.ts';
import { scrapedGauge, type Metrics } from '../observability.ts';
import { registerStateMetrics } from '../state/metrics.ts';
import { createSharedState } from '../state/redis.ts';
import { SharedReads } from '../state/shared-reads.ts';
import type { SharedState } from '../state/state.ts';
import { UpstreamClient } from './client.ts';
import { KeyGate } from './key-gate.ts';
import { UpstreamSession, type SessionDeps } from './session.ts';

/** Who asks, as one request's headers say it: each operation of the request gets a session of its own. */
export interface Caller {
  /** Whether the caller sent an API key (the key itself stays inside the sessions). */
  authenticated: boolean;
  /** Whether the caller sent an X-Organization-Id that is not a plain id (its operations are refused). */
  organizationRefused: boolean;
  /** A session bound to the caller's key; `part` numbers the further ones (a subscription's payloads). */
  session(part?: number): UpstreamSession;
}

/**
 * The upstream as the gateway holds it for all callers: the REST client (one keep-alive pool), each
 * key's shared state (quota, scope mirror, cache: in memory, or in Redis), the shared reads and the key
 * gate, with their metrics; and, per request, the caller.
 */
export interface Upstream {
  client: UpstreamClient;
  state: SharedState;
  shared: SharedReads;
  caller(request: Request): Caller;
  /** Ends the shared reads, the pool (cancelling what is in flight when `abort`) and the shared state. */
  close(abort: boolean): Promise<void>;
}

export interface UpstreamDeps {
  metrics: Metrics;
  logger: Logger;
  tracer: Tracer;
  /** Replaces the keep-alive pool (tests). */
  dispatcher?: Dispatcher;
}

export function createUpstream(config: GatewayConfig, { metrics, logger, tracer, dispatcher }: UpstreamDeps): Upstream {
  const client = new UpstreamClient({
    apiUrl: config.upstream.apiUrl,
    timeoutMs: config.upstream.timeoutMs,
    connections: config.upstream.connections,
    keyConcurrency: config.upstream.keyConcurrency,
    maxBodyBytes: config.upstream.maxBodyBytes,
    maxKeys: config.maxKeys,
    dispatcher,
    resilience: config.upstream.resilience,
    observer: metrics.upstream,
    onFailureNote: (route, note) => logger.debug({ route, ...note }, 'upstream error answer'),
    tracer,
  });
  const cache = { ttlMs: config.cache.ttlMs, maxEntries: config.cache.maxEntries, maxBytes: config.cache.maxBytes };
  const state = createSharedState(
    {
      cache,
      quota: config.quota,
      retryAfterMaxMs: config.retryAfterMaxMs,
      scopeCacheTtlMs: config.scopeCacheTtlMs,
      maxKeys: config.maxKeys,
      processes: config.workers * config.replicas,
    },
    config.redis,
    logger,
  );
  const deps: SessionDeps = {
    client,
    shared: new SharedReads({ ...cache, cache: state.cache }),
    scopes: state.scopes,
    quota: state.quota,
    keys: new KeyGate({ maxKeys: config.maxKeys, keyRefusalTtlMs: config.keyRefusalTtlMs }),
    budget: config.budget,
    deadlineMs: config.deadlineMs,
    operationConcurrency: config.operationConcurrency,
    observer: metrics.upstream,
  };
  registerMetrics(metrics, client, deps, state);
  return {
    client,
    state,
    shared: deps.shared,
    caller(request) {
      const key = apiKeyOf(request.headers);
      const organization = organizationOf(request.headers);
      const requestId = requestIdOf(request.headers.get('x-request-id'));
      return {
        authenticated: key !== null,
        organizationRefused: organization.refused,
        session: (part) =>
          new UpstreamSession(deps, key, part === undefined ? requestId : `${requestId}:${part}`, request.signal, organization.id),
      };
    },
    async close(abort) {
      deps.shared.close();
      await Promise.all([client.close(abort), state.close()]);
    },
  };
}

function registerMetrics({ registry }: Metrics, client: UpstreamClient, deps: SessionDeps, state: SharedState): void {
  registerStateMetrics(registry, state);
  scrapedGauge(registry, 'hsgql_upstream_circuit_open', 'The shared upstream circuit: 0 closed, 1 open, 0.5 half-open', () =>
    client.circuit === 'open' ? 1 : client.circuit === 'half-open' ? 0.5 : 0,
  );
  scrapedGauge(
    registry,
    'hsgql_upstream_key_circuits_open',
    'Keys whose own upstream circuit is open (their requests keep failing)',
    () => client.openKeyCircuits,
  );
  scrapedGauge(
    registry,
    'hsgql_cache_bytes',
    'Bytes held by the shared response cache (sizes of the upstream bodies)',
    () => deps.shared.bytes,
  );
  scrapedGauge(registry, 'hsgql_cache_entries', 'Answers held by the shared response cache', () => deps.shared.size);
  scrapedGauge(
    registry,
    'hsgql_key_state_entries',
    'Keys whose state the gateway holds, by kind',
    () => ({
      quota: deps.quota.size,
      scopes: deps.scopes.size,
      confirmed: deps.keys.size.confirmed,
      refused: deps.keys.size.refused,
    }),
    'kind',
  );
  scrapedGauge(
    registry,
    'hsgql_upstream_queue',
    'Upstream requests in flight and waiting for their turn',
    () => ({ active: client.load.active, waiting: client.load.waiting }),
    'state',
  );
}
