import { describe, expect, expectTypeOf, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import type { BodyLimitOptions } from '../src/http/body-limit.ts';
import type { CorsOptions } from '../src/http/cors.ts';
import type { ReadinessOptions } from '../src/http/readiness.ts';
import type { WebSocketOptions } from '../src/http/websocket.ts';
import type { RedisFleetOptions } from '../src/live/fleet.ts';
import type { LiveOptions } from '../src/live/hub.ts';
import type { AliasLimits } from '../src/plugins/use-alias-limits.ts';
import type { ListLimits } from '../src/plugins/use-list-limits.ts';
import type { ReportOptions } from '../src/plugins/use-operation-report.ts';
import type { TablesOptions } from '../src/plugins/use-tables.ts';
import type { MemoryCacheOptions } from '../src/state/cache.ts';
import type { QuotaLimits } from '../src/state/quota.ts';
import type { RedisSettings, SharedStateOptions } from '../src/state/state.ts';
import type { BreakerOptions } from '../src/upstream/breaker.ts';
import type { ResilienceOptions, UpstreamClientOptions } from '../src/upstream/client.ts';
import type { KeyGateOptions } from '../src/upstream/key-gate.ts';
import type { SessionDeps } from '../src/upstream/session.ts';

describe('configuration names', () => {
  // Type tests (checked by tsc in npm run check): a config value and the option that takes it share their
  // name, so renaming either side alone fails. LIVE_MAX_FEEDS_PER_KEY is live.maxFeedsPerKey in the config
  // and maxFeedsPerKey in LiveOptions.
  it('give each subsystem its settings under the names of its own options', () => {
    const config = loadConfig({});
    type Config = typeof config;
    expectTypeOf<Config['upstream']>().toExtend<Omit<UpstreamClientOptions, 'maxKeys'>>();
    expectTypeOf<Config['upstream']['resilience']>().toExtend<ResilienceOptions>();
    expectTypeOf<Config['upstream']['resilience'] & Pick<Config, 'maxKeys'>>().toExtend<BreakerOptions>();
    expectTypeOf<Config>().toExtend<Pick<SessionDeps, 'budget' | 'deadlineMs' | 'operationConcurrency'>>();
    expectTypeOf<Config>().toExtend<KeyGateOptions>();
    expectTypeOf<Config>().toExtend<Omit<SharedStateOptions, 'processes'>>();
    expectTypeOf<Config['cache']>().toExtend<MemoryCacheOptions>();
    expectTypeOf<Config['quotaLimits']>().toEqualTypeOf<Required<QuotaLimits>>();
    expectTypeOf<Config['redis']>().toEqualTypeOf<RedisSettings | null>();
    expectTypeOf<Config['live']>().toExtend<Omit<LiveOptions, 'limits'> & RedisFleetOptions>();
    expectTypeOf<Config['websocket'] & Pick<Config['limits'], 'bodyBytes'>>().toExtend<
      Pick<WebSocketOptions, 'maxConnections' | 'maxConnectionsPerKey' | 'idleTimeoutMs' | 'initTimeoutMs' | 'bodyBytes'>
    >();
    expectTypeOf<Config['limits']>().toExtend<AliasLimits & ListLimits & Pick<BodyLimitOptions, 'bodyBytes'>>();
    expectTypeOf<Config>().toExtend<Pick<ReadinessOptions, 'readyCacheMs'> & ReportOptions>();
    expectTypeOf<Config['cors']>().toExtend<Pick<CorsOptions, 'origins'> | null>();
    expectTypeOf<Config['tables']>().toExtend<Pick<TablesOptions, 'budget' | 'deadlineMs' | 'rowGroupRows'>>();
    // The same at run time, for the groups handed over whole.
    expect(Object.keys(config.live)).toEqual([
      'quotaShare',
      'minIntervalMs',
      'maxBackoffMs',
      'maxFeedsPerKey',
      'maxSubscriptionsPerKey',
      'maxSubscriptions',
      'maxBacklog',
      'lateMs',
      'leaseMs',
    ]);
    expect(Object.keys(config.websocket)).toEqual(['maxConnections', 'maxConnectionsPerKey', 'idleTimeoutMs', 'initTimeoutMs']);
    expect(Object.keys(config.cache)).toEqual(['ttlMs', 'maxEntries', 'maxBytes']);
  });
});
