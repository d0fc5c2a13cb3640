import { GraphQLError, type GraphQLErrorOptions } from 'graphql';

/** One error code: the HTTP status of answers that carry it, when it happens and what the caller does. */
export interface ErrorEntry {
  /**
   * The HTTP status of an answer that carries the code; where one code answers with several, each
   * status with when. 200 is GraphQL over HTTP's: the field is null with its error and the rest of the
   * answer arrives (or, for a subscription, the stream ends with it).
   */
  status: number | Readonly<Record<number, string>>;
  /** When it happens. */
  when: string;
  /** What the caller does about it. */
  then: string;
  /** It marks the operation's trace span as failed: a fault of the gateway or the upstream, not an answer to the request. */
  fault?: true;
  /** The library that emits it, passed through unchanged, when the gateway's own code never does. */
  library?: string;
}

/** How the catalogue says a table's status. */
const TABLE = 'a table (CSV, TSV, NDJSON, Parquet or Arrow) refused before its first byte';

/**
 * Every code the gateway answers with, in `extensions.code` (or in the JSON body of an HTTP refusal, or
 * a `recordEvents` failure's `code`). A code outside it does not type-check (`ErrorCode`); a test finds
 * the code literals in src/ and holds them to it; docs/errors.md is printed from it (scripts/print-errors.ts).
 */
export const ERRORS = {
  UNAUTHENTICATED: {
    status: 401,
    when:
      'No API key (refused before any upstream call), or a key the upstream refused; the rest of the operation, and the ' +
      "key's operations for `KEY_REFUSAL_TTL_MS`, are then refused without asking the upstream again. Introspection, " +
      '`__typename` and `_service { sdl }` need no key.',
    then: 'Send a valid key in `X-API-Key` (or `Authorization: Bearer <key>`).',
  },
  FORBIDDEN: {
    status: { 200: 'the field is null with its error; the rest of the answer arrives', 403: `for ${TABLE}` },
    when:
      "The key lacks the scope the data needs (e.g. `hst_test_demo_events` asking for recordings), or the experiment is someone else's. " +
      'A refusal the gateway remembers for the key is answered without asking again (`extensions.upstream.details.mirrored`).',
    then: 'Use a key with the scope (`extensions.upstream.details.required` names it, when the upstream said), or leave the field out; the rest of the answer is there.',
  },
  NOT_FOUND: {
    status: { 200: 'the field is null with its error; the rest of the answer arrives', 404: `for ${TABLE}` },
    when: 'No such experiment, room, participant, … (the upstream answered 404, or a listing did not hold it).',
    then: 'Check the id; the rest of the answer is there.',
  },
  BAD_USER_INPUT: {
    status: {
      200: "for a field's argument, refused before any upstream call, or input the upstream refused (400, 422): the field is null",
      400:
        'for a variable that does not coerce, an input object in the variables wider than its type, or an `X-Organization-Id` that is not an organization id: the operation is refused before it runs; ' +
        'for a table the operation cannot be made of (several candidate lists and no `@table`, `@table` on a field that is not a list, two columns of one name, no list and no column, a mutation) or an unknown `format=`',
      406: 'for an `Accept` of no type the gateway serves (the `accept` header lists those it does), or a subscription asked for as a table (subscriptions stream over SSE or WebSocket)',
    },
    when:
      "The caller's input is wrong: an argument (`extensions.argument` names it) or a variable the gateway refuses before any upstream " +
      'call, or input the upstream refused (its message, and its details in `extensions.upstream`).',
    then: 'Fix the input; sent again unchanged it fails again.',
  },
  OPERATION_LIMIT_EXCEEDED: {
    status: 400,
    when:
      'The operation is deeper, or has more tokens, directives, aliases, lookups or list items than the gateway allows ' +
      '(`extensions.limit`, `max`, `found`); refused before any upstream call.',
    then: 'Split the operation, or (running the gateway) raise the limit: `MAX_DEPTH`, `MAX_TOKENS`, `MAX_DIRECTIVES`, `MAX_ALIASES`, `MAX_ROOT_ALIASES`, `MAX_LOOKUPS`, `MAX_LIST_ITEMS`; for a table `TABLE_MAX_ROWS`, `TABLE_MAX_ANSWER_RECORDS`.',
  },
  UPSTREAM_BUDGET_EXCEEDED: {
    status: {
      200: 'the fields past the budget are null with it (or, refused before any upstream call, the operation has no data)',
      422: 'for a table that needs more than `TABLE_BUDGET` upstream requests, refused before its first row',
    },
    when:
      'The operation needs more than `UPSTREAM_BUDGET` upstream requests (`extensions.needed`, `budget`): refused before any ' +
      'upstream call, without data; or it spent its budget while running, and the fields past it fail.',
    then: 'Ask for fewer lists, or fewer pages of them, in one operation; or split it.',
  },
  RATE_LIMITED: {
    status: {
      200: 'the field is null with its error (a subscription ends with it)',
      429: "for a table that needs more upstream requests than the key has left this hour, refused before its first row (with `Retry-After`), or one refused for the key's quota before its first byte",
    },
    when:
      "The key's upstream quota is spent: the upstream answered 429, or the gateway's quota guard refused before sending " +
      '(`extensions.upstream.details.source: "gateway"`); or a live limit: the key\'s live polling used its share of the hour, ' +
      'too many feeds or subscriptions for the key (or for the gateway), or too many operations on one WebSocket connection.',
    then: 'Wait `extensions.retryAfter` seconds (when given) before asking again.',
  },
  EXPORT_LIMIT_EXCEEDED: {
    status: 200,
    when:
      'startExport or resumeExport past a cap: the key has `EXPORT_MAX_JOBS_PER_KEY` export jobs going, or the process `EXPORT_MAX_JOBS` ' +
      '(`extensions.limit`, `max`); nothing was started.',
    then: 'Wait for a job to end (exportProgress), or cancel one, then try again.',
  },
  EXPORT_TOO_LARGE: {
    status: 200,
    when: "An export job's next page would take the jobs' files past `EXPORT_MAX_BYTES` in `EXPORT_DIR`: the job is `FAILED` with it, its pages kept.",
    then: "resumeExport once other jobs' files have expired or been removed (or, running the gateway, raise `EXPORT_MAX_BYTES`).",
  },
  UPSTREAM_ERROR: {
    status: { 200: 'the field is null with its error; the rest of the answer arrives', 502: `for ${TABLE}` },
    when:
      'The upstream failed: a 5xx, a lost connection, a body that is not its envelope, an answer over `UPSTREAM_MAX_BODY_BYTES` ' +
      'or a value nested too deep; or the circuit is open after repeated faults (`extensions.upstream.details.circuit`). Reads were retried first.',
    then: 'Try again later. A failed write says in `extensions.outcome` whether it may have been applied: read back before writing again.',
    fault: true,
  },
  UPSTREAM_TIMEOUT: {
    status: { 200: 'the field is null with its error; the rest of the answer arrives', 504: `for ${TABLE}` },
    when: "The upstream did not answer in time, or the operation's deadline passed (or it was cancelled) before it answered.",
    then: 'Try again later, or ask for less in one operation. A failed write may have been applied (`extensions.outcome`).',
    fault: true,
  },
  SHUTTING_DOWN: {
    status: 200,
    when:
      'The gateway is stopping (a deploy, not a fault): subscriptions over SSE and WebSocket end with it, and WebSocket ' +
      'operations sent meanwhile are refused with it.',
    then: 'Reconnect: another process answers.',
  },
  SUBSCRIBER_TOO_SLOW: {
    status: 200,
    when: 'A subscriber left more than `LIVE_MAX_BACKLOG` items unread (`extensions.maxBacklog`): its subscription ends.',
    then: 'Read faster, or subscribe again.',
  },
  PERSISTED_QUERY_ONLY: {
    status: 400,
    when: "Under `TRUSTED_DOCUMENTS`: the request carried a document's text (GraphiQL, curl) instead of its id.",
    then: "Send the operation's id as `documentId` (or `extensions.persistedQuery.sha256Hash`).",
  },
  PERSISTED_QUERY_NOT_FOUND: {
    status: 400,
    when: 'Under `TRUSTED_DOCUMENTS`: the id is not in the allow-list.',
    then: 'Send the id your build wrote into its persisted-documents manifest, and deploy that manifest with the gateway.',
  },
  PERSISTED_QUERY_ID_REQUIRED: {
    status: 200,
    when: 'Under `TRUSTED_DOCUMENTS`: the request carried neither a document nor an id (message "PersistedQueryKeyNotFound").',
    then: "Send the operation's id as `documentId` (or `extensions.persistedQuery.sha256Hash`).",
    library: '@graphql-yoga/plugin-persisted-operations',
  },
  GRAPHQL_PARSE_FAILED: {
    status: {
      200: 'when the answer is `application/json` (no `Accept`, `*/*`, or `application/json` asked for first), as GraphQL over HTTP has it',
      400: 'when it is `application/graphql-response+json` (asked for first)',
    },
    when: 'The document does not parse.',
    then: 'Fix its syntax (the error has its line and column).',
    library: 'graphql-yoga',
  },
  GRAPHQL_VALIDATION_FAILED: {
    status: {
      200: 'when the answer is `application/json` (no `Accept`, `*/*`, or `application/json` asked for first), as GraphQL over HTTP has it',
      400: 'when it is `application/graphql-response+json` (asked for first)',
    },
    when: 'The document asks for what the schema does not have (a misspelt field, a missing argument, a value of the wrong type).',
    then: 'Fix it against the schema (`schema.graphql`, or GraphiQL).',
    library: 'graphql-yoga',
  },
  OPERATION_RESOLUTION_FAILURE: {
    status: 400,
    when: '`operationName` names no operation of the document, or the document has several operations and no `operationName`.',
    then: 'Send the name of the operation to run as `operationName`.',
    library: 'graphql-yoga',
  },
  BAD_REQUEST: {
    status: {
      400: 'for no operation (200 when the answer is `application/json`), a body that is not JSON, a form without an operation, or a batch with batching off',
      405: 'for a mutation over GET',
      413: 'for a batch of more than `BATCHING_LIMIT` operations',
      415: 'for a content type GraphQL does not read, or none',
    },
    when: 'The request is not a GraphQL request the gateway reads; over WebSocket, an operation that could not be read.',
    then: 'POST the operation as JSON with `content-type: application/json`: `{"query": "…", "variables": {…}}`.',
  },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    when: 'The request body is larger than `MAX_BODY_BYTES` (a chunked body too, once it passes the limit); the connection is closed.',
    then: 'Send less in one request: split the operation (e.g. `recordEvents` in several calls).',
  },
  INTERNAL_SERVER_ERROR: {
    status: { 200: 'beside data (the field is null)', 500: 'without data' },
    when: 'An unexpected error in the gateway; its message is masked ("Unexpected error."); the operation\'s log line has its code and path.',
    then: "Report it with the answer's `X-Request-Id`.",
    fault: true,
    library: 'graphql-yoga',
  },
  NOT_SENT: {
    status: 200,
    when:
      "In `recordEvents`' `failures[].code`, not in `errors`: a batch not sent because an earlier batch failed with a code that " +
      'stops the rest (its message names it); none of its events were recorded (`outcome: NOT_RECORDED`).',
    then: 'Resolve the earlier failure, then send these events again.',
  },
} as const satisfies Record<string, ErrorEntry>;

/** A code the gateway answers with: one of the catalogue's. */
export type ErrorCode = keyof typeof ERRORS;

/** Every catalogued code, in the catalogue's order. */
export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

/** The HTTP statuses the catalogue gives a code. */
export type StatusOf<C extends ErrorCode> = (typeof ERRORS)[C]['status'] extends infer S
  ? S extends number
    ? S
    : keyof S & number
  : never;

/** The HTTP statuses the catalogue gives a code, as numbers. */
export function statusesOf(code: ErrorCode): number[] {
  const { status } = ERRORS[code] as ErrorEntry;
  return typeof status === 'number' ? [status] : Object.keys(status).map(Number);
}

export interface GatewayErrorOptions<C extends ErrorCode> extends Omit<GraphQLErrorOptions, 'extensions'> {
  /** Extensions beside the code. */
  extensions?: Record<string, unknown>;
  /** The HTTP status of the answer (`extensions.http.status`): one the catalogue gives the code. Without it, Yoga's own. */
  status?: Exclude<StatusOf<C>, 200>;
}

/** The extensions of an error with a catalogued code: the code, the others, and the HTTP status when given. */
export function errorExtensions<C extends ErrorCode>(code: C, extensions: Record<string, unknown> = {}, status?: StatusOf<C>) {
  return { code, ...extensions, ...(status === undefined ? {} : { http: { status } }) };
}

/** A GraphQL error with a catalogued code (and, when given, one of its catalogued HTTP statuses). */
export function gatewayError<C extends ErrorCode>(code: C, message: string, options: GatewayErrorOptions<C> = {}): GraphQLError {
  const { extensions, status, ...rest } = options;
  return new GraphQLError(message, { ...rest, extensions: errorExtensions(code, extensions, status) });
}
