/**
 * Every environment variable the gateway reads, each declared once: its name, what it accepts (a zod
 * schema, built by the small constructors below), its default, its meaning, and — by where it stands
 * in `settings` — its place and name in the typed config. A subsystem's option carries the same name
 * (`LIVE_MAX_FEEDS_PER_KEY` is `live.maxFeedsPerKey`, and `LiveOptions.maxFeedsPerKey`). The config type,
 * the zod schema and the table of docs/configuration.md (scripts/print-config.ts) are derived from it.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';

/** What a variable accepts: its schema (from the raw string), and how the docs show it and its default. */
interface Kind<T> {
  readonly schema: z.ZodType<T>;
  /** The values accepted, as the docs list them. */
  readonly accepts: string;
  /** The default as written in the environment; null: unset. */
  readonly fallback: string | null;
}

/** One environment variable. */
export class Setting<T> {
  readonly schema: z.ZodType<T>;
  readonly accepts: string;
  readonly fallback: string | null;
  constructor(
    readonly env: string,
    kind: Kind<T>,
    /** What it means: said with each refusal of a bad value, and in the docs. */
    readonly description: string,
    /** The docs' wording (markdown), where they say more than `description`. */
    readonly docs: string = description,
  ) {
    this.schema = kind.schema.describe(description);
    this.accepts = kind.accepts;
    this.fallback = kind.fallback;
  }
}

/** A value of the config computed from settings (declared inside `inputs`, or declared elsewhere and named again). */
export class Derived<T> {
  constructor(
    readonly inputs: Declarations,
    readonly compute: (values: never) => T,
  ) {}
}

interface Declarations {
  readonly [name: string]: Setting<unknown> | Derived<unknown> | Declarations;
}

/** The config that declarations describe. */
export type ValueOf<D> = D extends Setting<infer T> ? T : D extends Derived<infer T> ? T : { -readonly [K in keyof D]: ValueOf<D[K]> };

const setting = <T>(env: string, kind: Kind<T>, description: string, docs?: string): Setting<T> =>
  new Setting(env, kind, description, docs);

const derive = <const I extends Declarations, T>(inputs: I, compute: (values: ValueOf<I>) => T): Derived<T> => new Derived(inputs, compute);

const unset = <T extends z.ZodType>(schema: T) => schema.nullable().default(null);

/** An integer from `min` to `max`; without a default, unset is null. */
function int(min: number, max: number, fallback: number, unit?: string): Kind<number>;
function int(min: number, max: number): Kind<number | null>;
function int(min: number, max: number, fallback?: number, unit = ''): Kind<number> | Kind<number | null> {
  const schema = z.coerce.number().int().min(min).max(max);
  const accepts = `${min}–${max}${unit}`;
  return fallback === undefined
    ? { schema: unset(schema), accepts, fallback: null }
    : { schema: schema.default(fallback), accepts, fallback: String(fallback) };
}

/** A duration in ms, from `min` to `max`. */
const ms = (min: number, max: number, fallback: number): Kind<number> => int(min, max, fallback, ' ms');

/** A share from 0 (or just above it) to 1. */
const share = (fallback: number, above0 = false): Kind<number> => ({
  schema: (above0 ? z.coerce.number().gt(0) : z.coerce.number().min(0)).max(1).default(fallback),
  accepts: above0 ? 'above 0, up to 1' : '0–1',
  fallback: String(fallback),
});

/** `true`/`false` (or `1`/`0`). */
const bool = (fallback: boolean): Kind<boolean> => ({
  schema: z
    .enum(['true', 'false', '1', '0'])
    .transform((v) => v === 'true' || v === '1')
    .default(fallback),
  accepts: '`true`, `false`, `1`, `0`',
  fallback: String(fallback),
});

/** `on`/`off`, read as a boolean. */
const onOff = (fallback: 'on' | 'off'): Kind<boolean> => ({
  schema: z
    .enum(['on', 'off'])
    .default(fallback)
    .transform((v) => v === 'on'),
  accepts: '`on`, `off`',
  fallback,
});

const oneOf = <const V extends readonly [string, ...string[]]>(values: V, fallback: V[number]): Kind<V[number]> => ({
  schema: z.enum(values).default(fallback),
  accepts: values.map((v) => `\`${v}\``).join(', '),
  fallback,
});

/** Text (of `min` to `max` characters); without a default, unset is null. */
function text(fallback: string, options?: { min?: number; max?: number; accepts?: string }): Kind<string>;
function text(fallback: null, options?: { accepts?: string }): Kind<string | null>;
function text(
  fallback: string | null,
  {
    min,
    max,
    accepts = max === undefined ? 'text' : `text of up to ${max} characters`,
  }: { min?: number; max?: number; accepts?: string } = {},
): Kind<string> | Kind<string | null> {
  let schema = z.string();
  if (min !== undefined) schema = schema.min(min);
  if (max !== undefined) schema = schema.max(max);
  return fallback === null ? { schema: unset(schema), accepts, fallback: null } : { schema: schema.default(fallback), accepts, fallback };
}

/** A URL (of one of `protocol`'s schemes, with `error` when it is not); unset is null. */
const url = (accepts: string, options?: { protocol: RegExp; error: string }): Kind<string | null> => ({
  schema: unset(options ? z.url(options) : z.url()),
  accepts,
  fallback: null,
});

const parsedUrl = (v: string): URL | null => (URL.canParse(v) ? new URL(v) : null);

const budget = setting(
  'UPSTREAM_BUDGET',
  int(1, 100_000, 300),
  'Upstream requests one GraphQL operation may send',
  'Upstream requests one GraphQL operation may send; past it fields fail with `UPSTREAM_BUDGET_EXCEEDED`',
);

/** The key's upstream limits: what the quota guard enforces, and what live polling paces itself by (also with the guard off). */
const quotaLimits = {
  perHour: setting('UPSTREAM_HOURLY_LIMIT', int(1, 1_000_000, 1000), 'Upstream requests per hour per key (documented: 1000)'),
  perMinutePerEndpoint: setting(
    'UPSTREAM_MINUTE_LIMIT',
    int(1, 1_000_000, 100),
    'Upstream requests per minute per endpoint per key (documented: 100)',
  ),
  minuteMs: setting(
    'UPSTREAM_MINUTE_WINDOW_MS',
    ms(1_000, 3_600_000, 60_000),
    "How long the upstream's per-minute window is, in ms (documented: a minute); shorter only in front of a simulator run with --rate-limit-minute-ms (tests)",
    "How long the upstream's per-minute window is, in ms (documented: a minute); shorter only in front of a simulator run with `--rate-limit-minute-ms` (tests)",
  ),
};

/** Every setting, where it stands in the config. */
export const settings = {
  port: setting('PORT', int(0, 65_535, 4000), 'Port the gateway listens on'),
  host: setting('HOST', text('0.0.0.0', { min: 1, accepts: 'a host name or IP address' }), 'Interface the gateway listens on'),
  /** The REST client (`UpstreamClientOptions`). */
  upstream: {
    /** The upstream base including `/api/v3`, without trailing slashes. */
    apiUrl: setting(
      'HYPERSTUDY_API_URL',
      {
        schema: z
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
          .transform((v) => v.replace(/\/+$/, '')),
        accepts: 'an `http://` or `https://` URL',
        fallback: 'https://api.hyperstudy.io/api/v3',
      },
      'Upstream base URL, including /api/v3',
      'Upstream base URL, including `/api/v3`: `http://` or `https://`, without credentials (`user:password@`), query or fragment — each refused at start',
    ),
    timeoutMs: setting('UPSTREAM_TIMEOUT_MS', ms(100, 120_000, 10_000), 'Connect, header and body timeout of one upstream request, in ms'),
    connections: setting('UPSTREAM_CONNECTIONS', int(1, 1024, 32), 'Keep-alive connections the gateway opens to the upstream'),
    keyConcurrency: setting(
      'UPSTREAM_KEY_CONCURRENCY',
      int(1, 1024, 16),
      'Upstream requests one key has in flight at once across its operations; when the pool is busy, keys take turns',
      'Upstream requests one key has in flight at once across its operations; when the pool is busy, waiting keys take turns',
    ),
    maxBodyBytes: setting(
      'UPSTREAM_MAX_BODY_BYTES',
      int(65_536, 1_073_741_824, 33_554_432),
      'Largest upstream answer read, in bytes; a longer one is cut off and fails UPSTREAM_ERROR',
      'Largest upstream answer read, in bytes; past it the gateway stops reading, closes the connection and answers `UPSTREAM_ERROR`',
    ),
    /** Retries and circuit breakers (`ResilienceOptions`). */
    resilience: {
      retries: setting(
        'UPSTREAM_RETRIES',
        int(0, 10, 3),
        'Retries of an upstream read (GET) after a 5xx, network error or timeout; writes are never retried',
      ),
      retryBaseMs: setting(
        'UPSTREAM_RETRY_BASE_MS',
        ms(1, 60_000, 100),
        'First retry delay ceiling (exponential backoff with full jitter), in ms',
      ),
      retryMaxMs: setting('UPSTREAM_RETRY_MAX_MS', ms(1, 60_000, 2_000), 'Largest retry delay, in ms'),
      breakerThreshold: setting(
        'BREAKER_THRESHOLD',
        int(1, 10_000, 10),
        'Consecutive upstream outages (5xx, network, timeout) of one key that open its circuit; of several keys, the shared one',
        'Consecutive upstream outages (5xx, network, timeout) of one key that open its own circuit; of `BREAKER_MIN_KEYS` keys or more, the shared circuit',
      ),
      breakerHalfOpenMs: setting(
        'BREAKER_HALF_OPEN_MS',
        ms(100, 600_000, 10_000),
        'How long the open circuit fails fast before trying the upstream again, in ms',
        'How long an open circuit fails fast before letting one request try the upstream again, in ms (the `/ready` probe tries whatever the state)',
      ),
      breakerMinKeys: setting(
        'BREAKER_MIN_KEYS',
        int(1, 1_000, 3),
        'Distinct keys (the health probe counts as one) among the consecutive outages that open the shared circuit',
        "Distinct keys (the `/ready` probe counts as one) among the consecutive outages that open the shared circuit; fewer open only the failing keys' own circuits",
      ),
    },
  },
  /** Of the planner's listings (`createLoaders`). */
  pageConcurrency: setting(
    'UPSTREAM_PAGE_CONCURRENCY',
    int(1, 64, 16),
    'Pages of one listing fetched from the upstream at once',
    'Pages of one listing fetched from the upstream at once (after the first, which tells the total)',
  ),
  /** Of each operation's session (`SessionDeps`), like `budget` and `deadlineMs`. */
  operationConcurrency: setting(
    'UPSTREAM_OPERATION_CONCURRENCY',
    int(1, 256, 16),
    'Upstream requests one GraphQL operation has in flight at once (every fan-out waits its turn)',
    'Upstream requests one GraphQL operation has in flight at once; the rest of a fan-out (`nodes(ids:)`, pages, loaders) waits its turn',
  ),
  budget,
  deadlineMs: setting(
    'OPERATION_DEADLINE_MS',
    ms(100, 600_000, 30_000),
    'How long one GraphQL operation may wait for the upstream in all, in ms',
    'How long one GraphQL operation may wait for the upstream in all, in ms (then `UPSTREAM_TIMEOUT`)',
  ),
  /** Of queries answered as tables (`useTables`, `TablesOptions`). */
  tables: {
    budget: setting(
      'TABLE_BUDGET',
      int(1, 1_000_000, 1000),
      'Upstream requests one table (a query answered as CSV, TSV, NDJSON, Parquet or Arrow) may send; a table that needs more, or more than the key has left this hour, is refused before its first row',
      'Upstream requests one table (a query answered as CSV, TSV, NDJSON, Parquet or Arrow) may send; a table that needs more (`UPSTREAM_BUDGET_EXCEEDED`), or more than the key has left this hour (`RATE_LIMITED`), is refused before its first row',
    ),
    maxRows: setting(
      'TABLE_MAX_ROWS',
      int(1_000, 100_000_000, 1_000_000),
      'Rows one table may have (the records TABLE_BUDGET pages hold at 1,000 a page), counting the records its answer reads above the row list; records repeated through back-links (events → experiment → events) multiply them. A table past it is refused before its first row',
      'Rows one table may have (the records TABLE_BUDGET pages hold at 1,000 a page), counting the records its answer reads above the row list; records repeated through back-links (events → experiment → events) multiply them. A table past it is refused before its first row (`OPERATION_LIMIT_EXCEEDED`, 400)',
    ),
    maxAnswerRecords: setting(
      'TABLE_MAX_ANSWER_RECORDS',
      int(100, 10_000_000, 20_000),
      'Records a table may read in the answer above its row list (the row list’s parents and theirs: an experiment’s rooms and participants), counted as the answer is read',
      'Records a table may read in the answer above its row list (the row list’s parents and theirs: an experiment’s rooms and participants), counted as the answer is read; past it the table is refused (`OPERATION_LIMIT_EXCEEDED`, 400). Each parent costs far more than a row',
    ),
    deadlineMs: setting(
      'TABLE_DEADLINE_MS',
      ms(1_000, 86_400_000, 900_000),
      'How long one table may take in all, in ms (its pages are paced within the per-minute limit)',
    ),
    rowGroupRows: setting(
      'TABLE_PARQUET_ROW_GROUP_ROWS',
      int(100, 1_000_000, 10_000),
      'Rows of each Parquet row group a table writes (the gateway holds one row group of a Parquet table at a time)',
    ),
  },
  /** Export jobs (`ExportsOptions`). */
  exports: {
    dir: setting(
      'EXPORT_DIR',
      text('exports', { min: 1, accepts: 'a directory path' }),
      'Directory where export jobs keep their pages (checkpoints) and finished files; replicas share one (never holds a key)',
      'Directory where export jobs keep their pages (checkpoints) and finished files, created if missing; with several replicas, one shared volume. It never holds an API key, only a hash of it',
    ),
    quotaShare: setting(
      'EXPORT_QUOTA_SHARE',
      share(0.5, true),
      "Share of a key's hourly and per-minute upstream limits its export jobs may spend; the rest is left to its interactive use",
    ),
    ttlMs: setting(
      'EXPORT_TTL_MS',
      ms(1_000, 2_592_000_000, 86_400_000),
      'How long a finished export job (and its file) is kept, in ms; a paused one, since it was last touched',
      'How long a finished export job and its file are kept, in ms (a paused one: since its last change); then both are removed',
    ),
    maxBytes: setting(
      'EXPORT_MAX_BYTES',
      int(1_024, Number.MAX_SAFE_INTEGER, 10_737_418_240),
      "Bytes export jobs' pages and files may take in EXPORT_DIR in all (with REDIS_URL: every replica's jobs); a job that would take more fails EXPORT_TOO_LARGE, keeping its pages",
      "Bytes export jobs' pages and files may take in `EXPORT_DIR` in all (with `REDIS_URL`: every replica's jobs, as they share it); a job that would take more fails `EXPORT_TOO_LARGE`, keeping its pages (resumable)",
    ),
    maxJobsPerKey: setting(
      'EXPORT_MAX_JOBS_PER_KEY',
      int(1, 1_000, 2),
      'Export jobs one key may have going (queued, running or waiting) at once; more are EXPORT_LIMIT_EXCEEDED',
      'Export jobs one key may have going (queued, running or waiting) at once; more are `EXPORT_LIMIT_EXCEEDED`',
    ),
    maxJobs: setting(
      'EXPORT_MAX_JOBS',
      int(1, 100_000, 20),
      'Export jobs one gateway process has going at once, over all keys; more are EXPORT_LIMIT_EXCEEDED',
      'Export jobs one gateway process has going at once, over all keys; more are `EXPORT_LIMIT_EXCEEDED`',
    ),
    leaseMs: setting(
      'EXPORT_LEASE_MS',
      ms(300, 600_000, 30_000),
      'With REDIS_URL: how long the lease of the replica running an export job lasts unless renewed, in ms; a job whose replica died is PAUSED once it expires',
      'With `REDIS_URL`: how long the lease of the replica running an export job lasts unless renewed (every third of it), in ms; a job whose replica died is `PAUSED` once it expires, to be resumed by its key from any replica. A cancel from another replica reaches the runner at once (pub/sub), not at a renewal',
    ),
    retries: setting(
      'EXPORT_RETRIES',
      int(0, 100, 5),
      "Times in a row an export job tries again after a failure (a page's upstream fault, after the client's own retries) before it ends FAILED, keeping its pages; rate limits are waited out without counting",
      "Times in a row an export job tries again after a failure (a page's upstream fault, after the client's own retries) before it ends `FAILED`, keeping its pages; rate limits are waited out and do not count",
    ),
  },
  defaultPageSize: setting(
    'DEFAULT_PAGE_SIZE',
    int(1, 1000, 100),
    'Edges a connection returns when neither first nor last is given',
    'Edges a connection returns when neither `first` nor `last` is given',
  ),
  graphiql: setting('GRAPHIQL', bool(true), 'Serve GraphiQL at /graphql to browsers', 'Serve GraphiQL at `/graphql` to browsers'),
  graphiqlExampleKey: setting(
    'GRAPHIQL_EXAMPLE_KEY',
    text(null, { accepts: 'an API key' }),
    "A key to prefill GraphiQL's X-API-Key header with (npm run demo sets the public demo key); never set it to a real key",
    "A key to prefill GraphiQL's `X-API-Key` header with (`npm run demo` sets the public demo key); never a real key",
  ),
  /** The operation limits (graphql-armor's, `AliasLimits`, `ListLimits`, the body limit). */
  limits: {
    depth: setting(
      'MAX_DEPTH',
      int(1, 1_000, 16),
      'Deepest selection an operation may have (Relay connections take 3 levels each)',
      'Deepest selection an operation may have (a Relay connection takes 3 levels)',
    ),
    aliases: setting(
      'MAX_ALIASES',
      int(0, 10_000, 15),
      'Aliases the selection of one root field may use (below the root, aliases multiply the work of every parent)',
      'Aliases the selection of one root field may use: below the root an alias repeats its field under every parent, so these multiply',
    ),
    rootAliases: setting(
      'MAX_ROOT_ALIASES',
      int(0, 10_000, 100),
      'Aliased root fields an operation may have (batching gateways send one per entity; each is one lookup)',
      'Aliased root fields an operation may have: they only add up (each is one lookup the budget estimate counts), and batching gateways send one per entity',
    ),
    tokens: setting(
      'MAX_TOKENS',
      int(10, 1_000_000, 5_000),
      'Tokens an operation document may have (a batching gateway sends some 40 per entity it delegates)',
      'Tokens an operation document may have (a batching gateway sends some 40 per entity it delegates: 50 entities take about 2,000)',
    ),
    directives: setting('MAX_DIRECTIVES', int(0, 10_000, 50), 'Directives an operation may use'),
    listItems: setting(
      'MAX_LIST_ITEMS',
      int(1, 1_000_000, 10_000),
      'Items the list arguments of one operation may hold in all, nested lists in input objects included, counted in literals and variables before execution (recordEvents takes up to 10,000 events: 100 upstream batches)',
      'Items the list arguments of one operation may hold in all (nested lists in input objects too), counted before execution; `recordEvents` takes 10,000 events',
    ),
    /** Unset: the budget, since more lookups could never all be answered. */
    lookups: derive(
      {
        lookups: setting(
          'MAX_LOOKUPS',
          int(1, 100_000),
          'Ids of nodes(ids:) and representations of _entities one operation may hold in all: each is an upstream request, so unset it is UPSTREAM_BUDGET (more could never all be answered)',
          'Ids of `nodes(ids:)` and representations of `_entities` one operation may hold in all; unset: `UPSTREAM_BUDGET` (each is an upstream request)',
        ),
        budget,
      },
      ({ lookups, budget }) => lookups ?? budget,
    ),
    bodyBytes: setting('MAX_BODY_BYTES', int(1_024, 100_000_000, 4_194_304), 'Largest request body accepted, in bytes (413 beyond)'),
    batching: setting(
      'BATCHING_LIMIT',
      int(0, 100, 0),
      'Operations one batched (array) request may hold; 0 turns batching off',
      'Operations one batched (array) request may hold; `0` turns batching off',
    ),
  },
  introspection: setting(
    'INTROSPECTION',
    bool(true),
    'Answer introspection; when off, no error suggests names either ("Did you mean …")',
    'Answer introspection; when `false`, no error suggests a name ("Did you mean …", in literals and variables) either (set with `GRAPHIQL=false` in production)',
  ),
  shutdownGraceMs: setting(
    'SHUTDOWN_GRACE_MS',
    ms(0, 600_000, 10_000),
    'On SIGTERM/SIGINT, how long in-flight operations may finish before connections are closed, in ms',
    'On SIGTERM/SIGINT: stop accepting, let in-flight operations finish this long, then close connections and the upstream pool, in ms',
  ),
  /** CORS (`CorsOptions`); null: off. */
  cors: derive(
    {
      origins: setting(
        'CORS_ORIGINS',
        {
          schema: z
            .string()
            .default('*')
            .refine(
              (v) => ['*', 'off'].includes(v.trim()) || v.split(',').every((o) => /^https?:\/\/[^\s/,]+$/.test(o.trim())),
              "'*', 'off', or origins such as https://app.example.org, separated by commas",
            ),
          accepts: '`*`, `off`, or origins, comma-separated',
          fallback: '*',
        },
        "Origins allowed by CORS: '*' (any), a comma-separated list, or 'off'",
        'Origins allowed by CORS: `*` (any), a comma-separated list, or `off`',
      ),
    },
    ({ origins }): { origins: '*' | string[] } | null => {
      const trimmed = origins.trim();
      if (trimmed === 'off') return null;
      if (trimmed === '*') return { origins: '*' };
      return {
        origins: origins
          .split(',')
          .map((o) => o.trim())
          .filter(Boolean),
      };
    },
  ),
  trustedDocuments: setting(
    'TRUSTED_DOCUMENTS',
    text(null, { accepts: 'a file path' }),
    'Path of a JSON allow-list (id → document); when set, only those operations run',
    'Path of a JSON allow-list (`{ "id": "query …" }`); when set, only those operations run, sent by id (`extensions.persistedQuery.sha256Hash` or `documentId`)',
  ),
  tracing: {
    endpoint: setting(
      'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
      url('a URL'),
      'OTLP/HTTP traces endpoint (for example http://collector:4318/v1/traces); when set, operations and upstream requests are traced',
      'OTLP/HTTP traces endpoint (for example `http://collector:4318/v1/traces`); when set, each operation is a span with a child span per upstream request',
    ),
    serviceName: setting(
      'OTEL_SERVICE_NAME',
      text('hyperstudy-graphql', { min: 1 }),
      'service.name of the traces',
      '`service.name` of the traces',
    ),
  },
  logLevel: setting(
    'LOG_LEVEL',
    oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
    'Log level of the JSON logs on stdout',
    'Level of the JSON logs on stdout (`fatal` … `trace`, `silent`)',
  ),
  logSampleRate: setting(
    'LOG_SAMPLE_RATE',
    share(1),
    'Share of successful operations that get a log line (0 to 1); operations with errors are always logged',
    'Share of successful operations that get a log line (`0` to `1`, e.g. `0.1`); operations with errors (and refused ones) are always logged; metrics and traces count every operation',
  ),
  planner: setting(
    'PLANNER',
    onOff('on'),
    'Query planner (lookahead, scope lifting); off fetches per parent',
    'Query planner (lookahead, scope lifting); `off` fetches per parent, for comparison and debugging',
  ),
  graphqlJit: setting(
    'GRAPHQL_JIT',
    onOff('on'),
    "Run queries and mutations compiled by graphql-jit (once per document); off: Yoga's own executor runs them, as it always runs subscriptions and @defer/@stream",
    "Run queries and mutations compiled by graphql-jit (once per document); `off`: Yoga's own executor (graphql-js semantics) runs them, as it always runs subscriptions and `@defer`/`@stream`",
  ),
  /** The shared cache (`MemoryCacheOptions`, `SharedStateOptions.cache`). */
  cache: {
    ttlMs: setting(
      'CACHE_TTL_MS',
      ms(0, 3_600_000, 5_000),
      'How long identical upstream GETs of one key are answered from memory, in ms (0: never)',
      'How long identical upstream GETs of one key are answered from memory, in ms (`0`: never); a write by the key clears its entries',
    ),
    maxEntries: setting('CACHE_MAX_ENTRIES', int(1, 1_000_000, 5_000), 'Answers the shared cache holds at most'),
    maxBytes: setting(
      'CACHE_MAX_BYTES',
      int(1_024, 4_294_967_296, 33_554_432),
      'Bytes the shared cache holds at most, counted as the sizes of the upstream answers (least recently used dropped first)',
      'Bytes the shared cache holds at most, counted as the sizes of the upstream bodies (least recently used dropped first); expired answers are swept',
    ),
  },
  maxKeys: setting(
    'KEY_STATE_MAX_KEYS',
    int(100, 10_000_000, 10_000),
    "Keys whose quota, scope and circuit state is held at most (the least recently active key's is dropped first)",
    "Keys whose quota, scope and circuit state is held at most (the least recently active key's is dropped first; keys the upstream refuses as invalid hold none)",
  ),
  keyRefusalTtlMs: setting(
    'KEY_REFUSAL_TTL_MS',
    ms(0, 3_600_000, 60_000),
    'How long a key the upstream refused (401) is refused here without asking again, in ms (0: only within its operation)',
    'How long a key the upstream refused (401) is refused here without asking again, in ms (`0`: only within its operation)',
  ),
  scopeCacheTtlMs: setting(
    'SCOPE_CACHE_TTL_MS',
    ms(0, 86_400_000, 60_000),
    'How long a scope the upstream said a key lacks is answered FORBIDDEN without asking, in ms (0: never)',
    'How long a scope the upstream said a key lacks is answered `FORBIDDEN` without asking, in ms (`0`: never)',
  ),
  /** The key's upstream limits (`QuotaLimits`), enforced or not. */
  quotaLimits,
  /** The limits the quota guard enforces; null: the guard is off. */
  quota: derive(
    {
      guard: setting(
        'UPSTREAM_QUOTA_GUARD',
        onOff('on'),
        "Refuse requests that would exceed a key's upstream limits before sending them",
        "Refuse requests that would exceed a key's upstream limits (`RATE_LIMITED`) before sending them",
      ),
      limits: quotaLimits,
    },
    ({ guard, limits }) => (guard ? limits : null),
  ),
  retryAfterMaxMs: setting(
    'RETRY_AFTER_MAX_MS',
    ms(0, 600_000, 5_000),
    'Longest 429 Retry-After a request waits out (with every operation of the key) before failing RATE_LIMITED, in ms',
    'Longest 429 `Retry-After` a request waits out (with every operation of the key) before failing `RATE_LIMITED`, in ms',
  ),
  readyCacheMs: setting(
    'READY_CACHE_MS',
    ms(0, 60_000, 1_000),
    'How long one upstream /health probe answers /ready, in ms (concurrent /ready calls share one probe)',
    'How long one upstream `/health` probe answers `/ready`, in ms (concurrent calls share one probe)',
  ),
  /** Live data (`LiveOptions`, `RedisFleetOptions`, the subscriptions' context). */
  live: {
    quotaShare: setting(
      'LIVE_QUOTA_SHARE',
      share(0.5, true),
      "Share of a key's hourly upstream limit that live polling (subscriptions) may use; the rest is left for queries",
    ),
    minIntervalMs: setting(
      'LIVE_MIN_INTERVAL_MS',
      ms(10, 3_600_000, 2_000),
      'Shortest interval between two polls of one live poller, in ms (the quota usually asks for more)',
    ),
    maxBackoffMs: setting(
      'LIVE_MAX_BACKOFF_MS',
      ms(100, 3_600_000, 60_000),
      'Longest a live poller waits after upstream faults or a 429 before trying again, in ms',
    ),
    maxFeedsPerKey: setting(
      'LIVE_MAX_FEEDS_PER_KEY',
      int(1, 10_000, 50),
      'Live feeds (pollers: a data type at a scope with filters) one key may have at once; each further subscription is RATE_LIMITED',
      'Live feeds (pollers: a data type at a scope with filters) one key may have at once; each further subscription is `RATE_LIMITED`',
    ),
    maxSubscriptionsPerKey: setting(
      'LIVE_MAX_SUBSCRIPTIONS_PER_KEY',
      int(1, 1_000_000, 200),
      'Subscriptions one key may have open at once, over all its feeds; further ones are RATE_LIMITED',
      'Subscriptions one key may have open at once, over all its feeds; further ones are `RATE_LIMITED`',
    ),
    maxSubscriptions: setting(
      'LIVE_MAX_SUBSCRIPTIONS',
      int(1, 10_000_000, 10_000),
      'Subscriptions one gateway process holds at most, over all keys; further ones are RATE_LIMITED',
      'Subscriptions one gateway process holds at most, over all keys; further ones are `RATE_LIMITED`',
    ),
    maxBacklog: setting(
      'LIVE_MAX_BACKLOG',
      int(100, 10_000_000, 100_000),
      'Items one subscriber may leave unread before its subscription ends with SUBSCRIBER_TOO_SLOW',
      'Items one subscriber may leave unread before its subscription ends with `SUBSCRIBER_TOO_SLOW`',
    ),
    lateMs: setting(
      'LIVE_LATE_MS',
      ms(0, 3_600_000, 2_000),
      'How late (by its own timestamp) a record may arrive upstream and still be delivered to subscribers, in ms',
    ),
    leaseMs: setting(
      'LIVE_LEASE_MS',
      ms(300, 600_000, 10_000),
      'With REDIS_URL: how long the lease of the one process polling a live feed for the whole fleet lasts unless renewed, in ms (a follower takes over within it when the leader dies)',
      'With `REDIS_URL`: how long the lease of the one process polling a live feed for the whole fleet lasts unless renewed, in ms; a follower takes over within it when the leader dies',
    ),
  },
  /** GraphQL over WebSocket: connection caps and timeouts (`WebSocketOptions`). */
  websocket: {
    maxConnections: setting(
      'WEBSOCKET_MAX_CONNECTIONS',
      int(1, 1_000_000, 10_000),
      'WebSocket connections one gateway process holds at most; a further one is closed with 1013 (try again later)',
      'WebSocket connections one gateway process holds at most, initialised or not; a further one is closed at once with 1013',
    ),
    maxConnectionsPerKey: setting(
      'WEBSOCKET_MAX_CONNECTIONS_PER_KEY',
      int(1, 1_000_000, 100),
      'WebSocket connections one key may hold open at once in one process; a further one is closed with 1013 at connection_init',
      'WebSocket connections one key may hold open at once in one process; a further one is closed with 1013 at `connection_init`',
    ),
    idleTimeoutMs: setting(
      'WEBSOCKET_IDLE_TIMEOUT_MS',
      ms(100, 86_400_000, 300_000),
      'How long a WebSocket connection with no operation running stays open, in ms; then it is closed with 1000',
    ),
    initTimeoutMs: setting(
      'WEBSOCKET_INIT_TIMEOUT_MS',
      ms(100, 600_000, 3_000),
      'How long a new WebSocket may take to send connection_init, in ms; then it is closed with 4408',
      'How long a new WebSocket may take to send `connection_init`, in ms; then it is closed with 4408',
    ),
  },
  /** Shared state in Redis (`RedisSettings`); null: each process keeps its own. */
  redis: derive(
    {
      url: setting(
        'REDIS_URL',
        url('a `redis://` or `rediss://` URL', { protocol: /^rediss?$/, error: 'a redis:// or rediss:// URL' }),
        "Redis (redis://[user:password@]host:port[/db]) that shares each key's quota, Retry-After blocks, scope mirror and response cache between every process and replica; unset: each process keeps its own",
        "Redis (`redis://host:port`) sharing each key's quota, Retry-After blocks, scope mirror and cache among all processes; unset: each keeps its own",
      ),
      keyPrefix: setting(
        'REDIS_KEY_PREFIX',
        text('hsgql:', { min: 1, max: 64 }),
        'Prefix of every Redis key the gateway writes',
        'Prefix of every Redis key the gateway writes (several deployments may share one Redis)',
      ),
      timeoutMs: setting(
        'REDIS_TIMEOUT_MS',
        ms(5, 10_000, 200),
        'How long one Redis call may take, in ms; past it (or with Redis down) the gateway uses local state until Redis answers again',
      ),
    },
    ({ url, ...redis }) => (url === null ? null : { url, ...redis }),
  ),
  /** Processes serving one port. */
  workers: setting(
    'WORKERS',
    {
      schema: z
        .string()
        .regex(/^(auto|[1-9]\d{0,2})$/, "a number of processes from 1, or 'auto'")
        .default('1')
        .transform((v) => (v === 'auto' ? availableParallelism() : Number(v))),
      accepts: '1–999, `auto`',
      fallback: '1',
    },
    "Processes serving one port (node:cluster); 'auto': one per core",
    'Processes serving one port (node:cluster); `auto`: one per core',
  ),
  /** Replicas serving the same keys (with `workers`, what the local limits are split by). */
  replicas: setting(
    'REPLICAS',
    int(1, 1_000, 1),
    'Gateway replicas (hosts or containers) serving the same keys; without Redis each process enforces 1/(REPLICAS × WORKERS) of each upstream limit, and while Redis is down that share of what is left of it',
    'Replicas (hosts, containers) serving the same keys: without Redis, each process enforces 1/(`REPLICAS` × `WORKERS`) of each limit',
  ),
};

export type GatewayConfig = ValueOf<typeof settings>;

/** Every setting once, in the order of `settings` (a setting named again as an input counts where it first stands). */
export const variables: readonly Setting<unknown>[] = (() => {
  const found = new Set<Setting<unknown>>();
  const walk = (node: Setting<unknown> | Derived<unknown> | Declarations): void => {
    if (node instanceof Setting) found.add(node);
    else if (node instanceof Derived) walk(node.inputs);
    else for (const child of Object.values(node)) walk(child);
  };
  walk(settings);
  return [...found];
})();

/** Every environment variable the gateway reads, as one zod schema (what `loadConfig` parses). */
export const configSchema = z.object(Object.fromEntries(variables.map((v) => [v.env, v.schema])));

/**
 * What is allowed but most likely a mistake, said once at start (a warning each): an upstream URL that
 * does not end with /api/v3, to which every path the gateway asks (/experiments …) is appended.
 */
export function configWarnings(config: { upstream: Pick<GatewayConfig['upstream'], 'apiUrl'> }): string[] {
  const path = new URL(config.upstream.apiUrl).pathname.replace(/\/+$/, '');
  return path.endsWith('/api/v3')
    ? []
    : [
        `HYPERSTUDY_API_URL does not end with /api/v3 (its path is '${path || '/'}'): the gateway appends paths such as /experiments to it, so the HyperStudy API would answer 404 to everything; add /api/v3 unless a proxy serves the API at this path`,
      ];
}

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
      const description = variables.find((v) => v.env === name)?.description ?? '';
      return `${name}: ${issue.message} (${description})`;
    });
    throw new ConfigError(`Invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const values: Record<string, unknown> = parsed.data;
  const build = (node: Setting<unknown> | Derived<unknown> | Declarations): unknown => {
    if (node instanceof Setting) return values[node.env];
    if (node instanceof Derived) return (node.compute as (values: unknown) => unknown)(build(node.inputs));
    return Object.fromEntries(Object.entries(node).map(([name, child]) => [name, build(child)]));
  };
  return build(settings) as GatewayConfig;
}
