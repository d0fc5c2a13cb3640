import { Counter, Gauge, type Registry } from 'prom-client';
import type { SharedState } from './state.ts';

/**
 * The shared state in /metrics: whether Redis is in use, its transitions and the calls answered from
 * local state instead, and the per-key limits this process enforces right now (the upstream's own
 * while they are shared in Redis; its share, 1/(WORKERS × REPLICAS), while they are local).
 */
export function registerStateMetrics(registry: Registry, state: SharedState): void {
  const initial = state.status();
  if (initial.backend === 'redis') {
    new Gauge({
      name: 'hsgql_shared_state_redis_up',
      help: 'Whether the shared state (quota, Retry-After blocks, scope mirror, cache) is in Redis right now: 1 yes, 0 this process falls back to local state',
      registers: [registry],
      collect() {
        this.set(state.status().redisUp === true ? 1 : 0);
      },
    });
    const transitions = new Counter({
      name: 'hsgql_shared_state_transitions_total',
      help: 'Times Redis became unavailable (to="down") or available again (to="up")',
      labelNames: ['to'],
      registers: [registry],
    });
    const fallbacks = new Counter({
      name: 'hsgql_shared_state_fallbacks_total',
      help: 'Shared-state calls answered from local state because Redis was down, slow or failed, by part',
      labelNames: ['part'],
      registers: [registry],
    });
    for (const to of ['down', 'up']) transitions.inc({ to }, 0);
    for (const part of ['cache', 'quota', 'scopes', 'live', 'exports']) fallbacks.inc({ part }, 0);
    state.observe({ transition: (to) => transitions.inc({ to }), fallback: (part) => fallbacks.inc({ part }) });
  }
  new Gauge({
    name: 'hsgql_quota_limit',
    help: 'Per-key upstream limit this process enforces now, by window (the upstream limit while shared in Redis; its share while local)',
    labelNames: ['window'],
    registers: [registry],
    collect() {
      const { limits } = state.status();
      if (limits === null) return;
      this.set({ window: 'hour' }, limits.perHour);
      this.set({ window: 'minute' }, limits.perMinutePerEndpoint);
    },
  });
  new Gauge({
    name: 'hsgql_quota_processes',
    help: 'Processes the per-key limits are split between while they are local (WORKERS × REPLICAS)',
    registers: [registry],
    collect() {
      this.set(state.status().processes);
    },
  });
}
