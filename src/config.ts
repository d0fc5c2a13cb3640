import { availableParallelism } from 'node:os';
import { z } from 'zod';

const parsedUrl = (v: string): URL | null => (URL.canParse(v) ? new URL(v) : null);

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** Every environment variable the gateway reads, with its default and meaning (the table of docs/configuration.md, which test/readme.test.ts holds to it). */
export const configSchema = z.object({
  HYPERSTUDY_API_URL: z
    .url({ protocol: /^https?$/, error: 'an http:// or https:// URL' })
    // The gateway forwards each caller's own key and nothing else: credentials in the URL would go unused
    // (and be printed in the `listening` line), so they are refused, without echoing them.
    .refine((v) => {
      const url = parsedUrl(v);
      return url === null || (url.username === '' && url.password === '');
    }, 'must not hold credentials (user:password@): the gateway sends each caller its own key')
    // Paths are appended to the base: a query or fragment would end up in the middle of every request's URL.
    .refine((v) => {
      const url = parsedUrl(v);
      return url === null || (url.search === '' && url.hash === '' && !v.includes('?') && !v.includes('#'));
    }, 'must be a base URL, without a query or fragment')
    .default('https://api.hyperstudy.io/api/v3')
    .describe('Upstream base URL, including /api/v3'),
  PORT: z.coerce.number().int().min(0).max(65_535).default(4000).describe('Port the gateway listens on'),
  HOST: z.string().min(1).default('0.0.0.0').describe('Interface the gateway listens on'),
  UPSTREAM_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(120_000)
    .default(10_000)
    .describe('Connect, header and body timeout of one upstream request, in ms'),
  UPSTREAM_CONNECTIONS: z.coerce
    .number()
    .int()
    .min(1)
    .max(1024)
    .default(32)
    .describe('Keep-alive connections the gateway opens to the upstream'),
  UPSTREAM_PAGE_CONCURRENCY: z.coerce
    .number()
    .int()
    .min(1)
    .max(64)
    .default(16)
    .describe('Pages of one listing fetched from the upstream at once'),
  UPSTREAM_OPERATION_CONCURRENCY: z.coerce
    .number()
    .int()
    .min(1)
    .max(256)
    .default(16)
    .describe('Upstream requests one GraphQL operation has in flight at once (every fan-out waits its turn)'),
  UPSTREAM_KEY_CONCURRENCY: z.coerce
    .number()
    .int()
    .min(1)
    .max(1024)
    .default(16)
    .describe('Upstream requests one key has in flight at once across its operations; when the pool is busy, keys take turns'),
  UPSTREAM_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(65_536)
    .max(1_073_741_824)
    .default(33_554_432)
    .describe('Largest upstream answer read, in bytes; a longer one is cut off and fails UPSTREAM_ERROR'),
  DEFAULT_PAGE_SIZE: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(100)
    .describe('Edges a connection returns when neither first nor last is given'),
  GRAPHIQL: bool.default(true).describe('Serve GraphiQL at /graphql to browsers'),
  GRAPHIQL_EXAMPLE_KEY: z
    .string()
    .optional()
    .describe("A key to prefill GraphiQL's X-API-Key header with (npm run demo sets the public demo key); never set it to a real key"),
  MAX_DEPTH: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000)
    .default(16)
    .describe('Deepest selection an operation may have (Relay connections take 3 levels each)'),
  MAX_ALIASES: z.coerce
    .number()
    .int()
    .min(0)
    .max(10_000)
    .default(15)
    .describe('Aliases the selection of one root field may use (below the root, aliases multiply the work of every parent)'),
  MAX_ROOT_ALIASES: z.coerce
    .number()
    .int()
    .min(0)
    .max(10_000)
    .default(100)
    .describe('Aliased root fields an operation may have (batching gateways send one per entity; each is one lookup)'),
  MAX_TOKENS: z.coerce
    .number()
    .int()
    .min(10)
    .max(1_000_000)
    .default(5_000)
    .describe('Tokens an operation document may have (a batching gateway sends some 40 per entity it delegates)'),
  MAX_DIRECTIVES: z.coerce.number().int().min(0).max(10_000).default(50).describe('Directives an operation may use'),
  MAX_LIST_ITEMS: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(10_000)
    .describe(
      'Items the list arguments of one operation may hold in all, nested lists in input objects included, counted in literals and variables before execution (recordEvents takes up to 10,000 events: 100 upstream batches)',
    ),
  MAX_LOOKUPS: z.coerce
    .number()
    .int()
    .min(1)
    .max(100_000)
    .optional()
    .describe(
      'Ids of nodes(ids:) and representations of _entities one operation may hold in all: each is an upstream request, so unset it is UPSTREAM_BUDGET (more could never all be answered)',
    ),
  MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1_024)
    .max(100_000_000)
    .default(4_194_304)
    .describe('Largest request body accepted, in bytes (413 beyond)'),
  BATCHING_LIMIT: z.coerce
    .number()
    .int()
    .min(0)
    .max(100)
    .default(0)
    .describe('Operations one batched (array) request may hold; 0 turns batching off'),
  INTROSPECTION: bool.default(true).describe('Answer introspection; when off, no error suggests names either ("Did you mean …")'),
  SHUTDOWN_GRACE_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(600_000)
    .default(10_000)
    .describe('On SIGTERM/SIGINT, how long in-flight operations may finish before connections are closed, in ms'),
  CORS_ORIGINS: z
    .string()
    .default('*')
    .refine(
      (v) => ['*', 'off'].includes(v.trim()) || v.split(',').every((o) => /^https?:\/\/[^\s/,]+$/.test(o.trim())),
      "'*', 'off', or origins such as https://app.example.org, separated by commas",
    )
    .describe("Origins allowed by CORS: '*' (any), a comma-separated list, or 'off'"),
  TRUSTED_DOCUMENTS: z.string().optional().describe('Path of a JSON allow-list (id → document); when set, only those operations run'),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z
    .url()
    .optional()
    .describe(
      'OTLP/HTTP traces endpoint (for example http://collector:4318/v1/traces); when set, operations and upstream requests are traced',
    ),
  OTEL_SERVICE_NAME: z.string().min(1).default('hyperstudy-graphql').describe('service.name of the traces'),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('Log level of the JSON logs on stdout'),
  LOG_SAMPLE_RATE: z.coerce
    .number()
    .min(0)
    .max(1)
    .default(1)
    .describe('Share of successful operations that get a log line (0 to 1); operations with errors are always logged'),
  PLANNER: z.enum(['on', 'off']).default('on').describe('Query planner (lookahead, scope lifting); off fetches per parent'),
  GRAPHQL_JIT: z
    .enum(['on', 'off'])
    .default('on')
    .describe(
      "Run queries and mutations compiled by graphql-jit (once per document); off: Yoga's own executor runs them, as it always runs subscriptions and @defer/@stream",
    ),
  UPSTREAM_BUDGET: z.coerce.number().int().min(1).max(100_000).default(300).describe('Upstream requests one GraphQL operation may send'),
  CACHE_TTL_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(3_600_000)
    .default(5_000)
    .describe('How long identical upstream GETs of one key are answered from memory, in ms (0: never)'),
  CACHE_MAX_ENTRIES: z.coerce.number().int().min(1).max(1_000_000).default(5_000).describe('Answers the shared cache holds at most'),
  CACHE_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1_024)
    .max(4_294_967_296)
    .default(33_554_432)
    .describe('Bytes the shared cache holds at most, counted as the sizes of the upstream answers (least recently used dropped first)'),
  KEY_STATE_MAX_KEYS: z.coerce
    .number()
    .int()
    .min(100)
    .max(10_000_000)
    .default(10_000)
    .describe("Keys whose quota, scope and circuit state is held at most (the least recently active key's is dropped first)"),
  KEY_REFUSAL_TTL_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(3_600_000)
    .default(60_000)
    .describe('How long a key the upstream refused (401) is refused here without asking again, in ms (0: only within its operation)'),
  SCOPE_CACHE_TTL_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(86_400_000)
    .default(60_000)
    .describe('How long a scope the upstream said a key lacks is answered FORBIDDEN without asking, in ms (0: never)'),
  UPSTREAM_QUOTA_GUARD: z
    .enum(['on', 'off'])
    .default('on')
    .describe("Refuse requests that would exceed a key's upstream limits before sending them"),
  UPSTREAM_HOURLY_LIMIT: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(1000)
    .describe('Upstream requests per hour per key (documented: 1000)'),
  OPERATION_DEADLINE_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(600_000)
    .default(30_000)
    .describe('How long one GraphQL operation may wait for the upstream in all, in ms'),
  UPSTREAM_RETRIES: z.coerce
    .number()
    .int()
    .min(0)
    .max(10)
    .default(3)
    .describe('Retries of an upstream read (GET) after a 5xx, network error or timeout; writes are never retried'),
  UPSTREAM_RETRY_BASE_MS: z.coerce
    .number()
    .int()
    .min(1)
    .max(60_000)
    .default(100)
    .describe('First retry delay ceiling (exponential backoff with full jitter), in ms'),
  UPSTREAM_RETRY_MAX_MS: z.coerce.number().int().min(1).max(60_000).default(2_000).describe('Largest retry delay, in ms'),
  RETRY_AFTER_MAX_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(600_000)
    .default(5_000)
    .describe('Longest 429 Retry-After a request waits out (with every operation of the key) before failing RATE_LIMITED, in ms'),
  BREAKER_THRESHOLD: z.coerce
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(10)
    .describe('Consecutive upstream outages (5xx, network, timeout) of one key that open its circuit; of several keys, the shared one'),
  BREAKER_HALF_OPEN_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(600_000)
    .default(10_000)
    .describe('How long the open circuit fails fast before trying the upstream again, in ms'),
  BREAKER_MIN_KEYS: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000)
    .default(3)
    .describe('Distinct keys (the health probe counts as one) among the consecutive outages that open the shared circuit'),
  READY_CACHE_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(60_000)
    .default(1_000)
    .describe('How long one upstream /health probe answers /ready, in ms (concurrent /ready calls share one probe)'),
  TABLE_BUDGET: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(1000)
    .describe(
      'Upstream requests one table (a query answered as CSV, TSV, NDJSON, Parquet or Arrow) may send; a table that needs more, or more than the key has left this hour, is refused before its first row',
    ),
  TABLE_DEADLINE_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .max(86_400_000)
    .default(900_000)
    .describe('How long one table may take in all, in ms (its pages are paced within the per-minute limit)'),
  TABLE_PARQUET_ROW_GROUP_ROWS: z.coerce
    .number()
    .int()
    .min(100)
    .max(1_000_000)
    .default(10_000)
    .describe('Rows of each Parquet row group a table writes (the gateway holds one row group of a Parquet table at a time)'),
  UPSTREAM_MINUTE_LIMIT: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(100)
    .describe('Upstream requests per minute per endpoint per key (documented: 100)'),
  LIVE_QUOTA_SHARE: z.coerce
    .number()
    .gt(0)
    .max(1)
    .default(0.5)
    .describe("Share of a key's hourly upstream limit that live polling (subscriptions) may use; the rest is left for queries"),
  LIVE_MIN_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(10)
    .max(3_600_000)
    .default(2_000)
    .describe('Shortest interval between two polls of one live poller, in ms (the quota usually asks for more)'),
  LIVE_MAX_BACKOFF_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(3_600_000)
    .default(60_000)
    .describe('Longest a live poller waits after upstream faults or a 429 before trying again, in ms'),
  LIVE_MAX_FEEDS_PER_KEY: z.coerce
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(50)
    .describe(
      'Live feeds (pollers: a data type at a scope with filters) one key may have at once; each further subscription is RATE_LIMITED',
    ),
  LIVE_MAX_SUBSCRIPTIONS_PER_KEY: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(200)
    .describe('Subscriptions one key may have open at once, over all its feeds; further ones are RATE_LIMITED'),
  LIVE_MAX_SUBSCRIPTIONS: z.coerce
    .number()
    .int()
    .min(1)
    .max(10_000_000)
    .default(10_000)
    .describe('Subscriptions one gateway process holds at most, over all keys; further ones are RATE_LIMITED'),
  LIVE_MAX_BACKLOG: z.coerce
    .number()
    .int()
    .min(100)
    .max(10_000_000)
    .default(100_000)
    .describe('Items one subscriber may leave unread before its subscription ends with SUBSCRIBER_TOO_SLOW'),
  LIVE_LATE_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(3_600_000)
    .default(2_000)
    .describe('How late (by its own timestamp) a record may arrive upstream and still be delivered to subscribers, in ms'),
  LIVE_LEASE_MS: z.coerce
    .number()
    .int()
    .min(300)
    .max(600_000)
    .default(10_000)
    .describe(
      'With REDIS_URL: how long the lease of the one process polling a live feed for the whole fleet lasts unless renewed, in ms (a follower takes over within it when the leader dies)',
    ),
  WEBSOCKET_MAX_CONNECTIONS: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(10_000)
    .describe('WebSocket connections one gateway process holds at most; a further one is closed with 1013 (try again later)'),
  WEBSOCKET_MAX_CONNECTIONS_PER_KEY: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(100)
    .describe('WebSocket connections one key may hold open at once in one process; a further one is closed with 1013 at connection_init'),
  WEBSOCKET_IDLE_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(86_400_000)
    .default(300_000)
    .describe('How long a WebSocket connection with no operation running stays open, in ms; then it is closed with 1000'),
  WEBSOCKET_INIT_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(600_000)
    .default(3_000)
    .describe('How long a new WebSocket may take to send connection_init, in ms; then it is closed with 4408'),
  REDIS_URL: z
    .url({ protocol: /^rediss?$/, error: 'a redis:// or rediss:// URL' })
    .optional()
    .describe(
      "Redis (redis://[user:password@]host:port[/db]) that shares each key's quota, Retry-After blocks, scope mirror and response cache between every process and replica; unset: each process keeps its own",
    ),
  REDIS_KEY_PREFIX: z.string().min(1).max(64).default('hsgql:').describe('Prefix of every Redis key the gateway writes'),
  REDIS_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(5)
    .max(10_000)
    .default(200)
    .describe(
      'How long one Redis call may take, in ms; past it (or with Redis down) the gateway uses local state until Redis answers again',
    ),
  WORKERS: z
    .string()
    .regex(/^(auto|[1-9]\d{0,2})$/, "a number of processes from 1, or 'auto'")
    .default('1')
    .describe("Processes serving one port (node:cluster); 'auto': one per core"),
  REPLICAS: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000)
    .default(1)
    .describe(
      'Gateway replicas (hosts or containers) serving the same keys; without Redis each process enforces 1/(REPLICAS × WORKERS) of each upstream limit, and while Redis is down that share of what is left of it',
    ),
});

/**
 * What is allowed but most likely a mistake, said once at start (a warning each): an upstream URL that
 * does not end with /api/v3, to which every path the gateway asks (/experiments …) is appended.
 */
export function configWarnings(config: Pick<GatewayConfig, 'apiUrl'>): string[] {
  const path = new URL(config.apiUrl).pathname.replace(/\/+$/, '');
  return path.endsWith('/api/v3')
    ? []
    : [
        `HYPERSTUDY_API_URL does not end with /api/v3 (its path is '${path || '/'}'): the gateway appends paths such as /experiments to it, so the HyperStudy API would answer 404 to everything; add /api/v3 unless a proxy serves the API at this path`,
      ];
}

export type GatewayConfig = {
  apiUrl: string;
  port: number;
  host: string;
  upstreamTimeoutMs: number;
  upstreamConnections: number;
  pageConcurrency: number;
  operationConcurrency: number;
  keyConcurrency: number;
  upstreamMaxBodyBytes: number;
  defaultPageSize: number;
  graphiql: boolean;
  graphiqlExampleKey: string | null;
  limits: {
    depth: number;
    aliases: number;
    rootAliases: number;
    tokens: number;
    directives: number;
    bodyBytes: number;
    batching: number;
    /** Items of the list arguments of one operation, in all. */
    listItems: number;
    /** Ids of nodes(ids:) and representations of _entities of one operation, in all. */
    lookups: number;
  };
  introspection: boolean;
  logLevel: string;
  /** Share of successful operations logged; operations with errors always are. */
  logSampleRate: number;
  trustedDocuments: string | null;
  tracing: { endpoint: string | null; serviceName: string };
  shutdownGraceMs: number;
  /** null: CORS off; '*': any origin; else the allowed origins. */
  corsOrigins: '*' | string[] | null;
  planner: boolean;
  jit: boolean;
  budget: number;
  cacheTtlMs: number;
  cacheMaxEntries: number;
  cacheMaxBytes: number;
  maxKeys: number;
  /** How long a key the upstream refused is refused without asking again, in ms. */
  keyRefusalTtlMs: number;
  readyCacheMs: number;
  live: {
    quotaShare: number;
    minIntervalMs: number;
    maxBackoffMs: number;
    lateMs: number;
    maxFeedsPerKey: number;
    maxSubscriptionsPerKey: number;
    maxSubscriptions: number;
    maxBacklog: number;
    /** With Redis: how long a feed's lease lasts unless renewed, in ms. */
    leaseMs: number;
    /** The key's limits live polling paces itself by (also when the quota guard is off). */
    perHour: number;
    perMinutePerEndpoint: number;
  };
  /** GraphQL over WebSocket: connection caps and timeouts. */
  websocket: { maxConnections: number; maxConnectionsPerKey: number; idleTimeoutMs: number; initTimeoutMs: number };
  scopeCacheTtlMs: number;
  quota: { perHour: number; perMinutePerEndpoint: number } | null;
  /** Shared state in Redis (null: each process keeps its own). */
  redis: { url: string; prefix: string; timeoutMs: number } | null;
  /** Processes serving one port. */
  workers: number;
  /** Replicas serving the same keys (with `workers`, what the local limits are split by). */
  replicas: number;
  deadlineMs: number;
  /** Queries answered as tables (src/tables): their upstream budget, deadline and Parquet row groups. */
  tables: { budget: number; deadlineMs: number; rowGroupRows: number };
  retryAfterMaxMs: number;
  resilience: {
    retries: number;
    retryBaseMs: number;
    retryMaxMs: number;
    breakerThreshold: number;
    breakerHalfOpenMs: number;
    breakerMinKeys: number;
  };
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the environment once; a bad variable throws with its name and what it should be. */
export function loadConfig(env: Record<string, string | undefined> = process.env): GatewayConfig {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = configSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      const description = configSchema.shape[name as keyof typeof configSchema.shape]?.description ?? '';
      return `${name}: ${issue.message} (${description})`;
    });
    throw new ConfigError(`Invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const c = parsed.data;
  return {
    apiUrl: c.HYPERSTUDY_API_URL.replace(/\/+$/, ''),
    port: c.PORT,
    host: c.HOST,
    upstreamTimeoutMs: c.UPSTREAM_TIMEOUT_MS,
    upstreamConnections: c.UPSTREAM_CONNECTIONS,
    pageConcurrency: c.UPSTREAM_PAGE_CONCURRENCY,
    operationConcurrency: c.UPSTREAM_OPERATION_CONCURRENCY,
    keyConcurrency: c.UPSTREAM_KEY_CONCURRENCY,
    upstreamMaxBodyBytes: c.UPSTREAM_MAX_BODY_BYTES,
    defaultPageSize: c.DEFAULT_PAGE_SIZE,
    graphiql: c.GRAPHIQL,
    graphiqlExampleKey: c.GRAPHIQL_EXAMPLE_KEY ?? null,
    limits: {
      depth: c.MAX_DEPTH,
      aliases: c.MAX_ALIASES,
      rootAliases: c.MAX_ROOT_ALIASES,
      tokens: c.MAX_TOKENS,
      directives: c.MAX_DIRECTIVES,
      bodyBytes: c.MAX_BODY_BYTES,
      batching: c.BATCHING_LIMIT,
      listItems: c.MAX_LIST_ITEMS,
      lookups: c.MAX_LOOKUPS ?? c.UPSTREAM_BUDGET,
    },
    introspection: c.INTROSPECTION,
    logLevel: c.LOG_LEVEL,
    logSampleRate: c.LOG_SAMPLE_RATE,
    trustedDocuments: c.TRUSTED_DOCUMENTS ?? null,
    tracing: { endpoint: c.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? null, serviceName: c.OTEL_SERVICE_NAME },
    shutdownGraceMs: c.SHUTDOWN_GRACE_MS,
    corsOrigins:
      c.CORS_ORIGINS.trim() === 'off'
        ? null
        : c.CORS_ORIGINS.trim() === '*'
          ? '*'
          : c.CORS_ORIGINS.split(',')
              .map((o) => o.trim())
              .filter(Boolean),
    planner: c.PLANNER === 'on',
    jit: c.GRAPHQL_JIT === 'on',
    budget: c.UPSTREAM_BUDGET,
    cacheTtlMs: c.CACHE_TTL_MS,
    cacheMaxEntries: c.CACHE_MAX_ENTRIES,
    cacheMaxBytes: c.CACHE_MAX_BYTES,
    maxKeys: c.KEY_STATE_MAX_KEYS,
    keyRefusalTtlMs: c.KEY_REFUSAL_TTL_MS,
    readyCacheMs: c.READY_CACHE_MS,
    live: {
      quotaShare: c.LIVE_QUOTA_SHARE,
      minIntervalMs: c.LIVE_MIN_INTERVAL_MS,
      maxBackoffMs: c.LIVE_MAX_BACKOFF_MS,
      lateMs: c.LIVE_LATE_MS,
      maxFeedsPerKey: c.LIVE_MAX_FEEDS_PER_KEY,
      maxSubscriptionsPerKey: c.LIVE_MAX_SUBSCRIPTIONS_PER_KEY,
      maxSubscriptions: c.LIVE_MAX_SUBSCRIPTIONS,
      maxBacklog: c.LIVE_MAX_BACKLOG,
      leaseMs: c.LIVE_LEASE_MS,
      perHour: c.UPSTREAM_HOURLY_LIMIT,
      perMinutePerEndpoint: c.UPSTREAM_MINUTE_LIMIT,
    },
    websocket: {
      maxConnections: c.WEBSOCKET_MAX_CONNECTIONS,
      maxConnectionsPerKey: c.WEBSOCKET_MAX_CONNECTIONS_PER_KEY,
      idleTimeoutMs: c.WEBSOCKET_IDLE_TIMEOUT_MS,
      initTimeoutMs: c.WEBSOCKET_INIT_TIMEOUT_MS,
    },
    scopeCacheTtlMs: c.SCOPE_CACHE_TTL_MS,
    quota: c.UPSTREAM_QUOTA_GUARD === 'on' ? { perHour: c.UPSTREAM_HOURLY_LIMIT, perMinutePerEndpoint: c.UPSTREAM_MINUTE_LIMIT } : null,
    redis: c.REDIS_URL === undefined ? null : { url: c.REDIS_URL, prefix: c.REDIS_KEY_PREFIX, timeoutMs: c.REDIS_TIMEOUT_MS },
    workers: c.WORKERS === 'auto' ? availableParallelism() : Number(c.WORKERS),
    replicas: c.REPLICAS,
    deadlineMs: c.OPERATION_DEADLINE_MS,
    tables: { budget: c.TABLE_BUDGET, deadlineMs: c.TABLE_DEADLINE_MS, rowGroupRows: c.TABLE_PARQUET_ROW_GROUP_ROWS },
    retryAfterMaxMs: c.RETRY_AFTER_MAX_MS,
    resilience: {
      retries: c.UPSTREAM_RETRIES,
      retryBaseMs: c.UPSTREAM_RETRY_BASE_MS,
      retryMaxMs: c.UPSTREAM_RETRY_MAX_MS,
      breakerThreshold: c.BREAKER_THRESHOLD,
      breakerHalfOpenMs: c.BREAKER_HALF_OPEN_MS,
      breakerMinKeys: c.BREAKER_MIN_KEYS,
    },
  };
}
