import type { GatewayConfig } from '../config.ts';
import { scrapedGauge, type Metrics } from '../observability.ts';
import type { GatewayContext } from '../schema/builder.ts';
import { shareOf, type SharedState } from '../state/state.ts';
import { LiveHub } from './hub.ts';

/** The live part of an operation's context. */
type LiveContext = GatewayContext['live'];

/** Live data for subscriptions: the hub of pollers, paced by the key's limits, shared by the fleet through Redis when the state is. */
export interface Live {
  hub: LiveHub;
  context(signal: AbortSignal, renew: LiveContext['renew']): LiveContext;
}

export function createLive(config: GatewayConfig, state: SharedState, { registry }: Metrics): Live {
  const limits = config.quotaLimits;
  const hub = new LiveHub(
    {
      quotaShare: config.live.quotaShare,
      limits: () => {
        // Shared through Redis (and up): the fleet's pacing uses the whole limits; else this process's share.
        const { redisUp, processes } = state.status();
        return redisUp === true
          ? limits
          : {
              ...limits,
              perHour: shareOf(limits.perHour, processes),
              perMinutePerEndpoint: shareOf(limits.perMinutePerEndpoint, processes),
            };
      },
      minIntervalMs: config.live.minIntervalMs,
      maxBackoffMs: config.live.maxBackoffMs,
      maxFeedsPerKey: config.live.maxFeedsPerKey,
      maxSubscriptionsPerKey: config.live.maxSubscriptionsPerKey,
      maxSubscriptions: config.live.maxSubscriptions,
      maxBacklog: config.live.maxBacklog,
    },
    state.fleet({ leaseMs: config.live.leaseMs }),
  );
  scrapedGauge(
    registry,
    'hsgql_live_pollers',
    'Live pollers (one per key and feed), those following another process that polls (with Redis), and the subscriptions they serve',
    () => {
      const pollers = hub.pollers();
      return {
        pollers: pollers.length,
        following: pollers.filter((p) => p.role === 'follower').length,
        subscribers: pollers.reduce((n, p) => n + p.subscribers, 0),
      };
    },
    'what',
  );
  return {
    hub,
    context: (signal, renew) => ({ hub, lateMs: config.live.lateMs, status: null, signal, renew }),
  };
}
