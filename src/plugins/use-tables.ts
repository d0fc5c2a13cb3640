import { setImmediate } from 'node:timers/promises';
import { getOperationAST, GraphQLError, type ExecutionArgs, type ExecutionResult } from 'graphql';
import { isAsyncIterable, processRegularResult, type Plugin } from 'graphql-yoga';
import { Counter, type Registry } from 'prom-client';
import { errorExtensions, ERRORS, gatewayError, statusesOf, type ErrorCode, type StatusOf } from '../errors.ts';
import type { StreamPlan } from '../loaders/planner.ts';
import type { GatewayContext } from '../schema/builder.ts';
import { contentTypeOf, negotiate, TABLE_FORMATS, type TableFormat } from '../tables/formats.ts';
import { project, type Cell, type Projection } from '../tables/projection.ts';
import { RowSchemas, TableErrors, tableRows } from '../tables/rows.ts';
import { createWriter } from '../tables/writers.ts';
import { endpointOf } from '../upstream/routes.ts';

export interface TablesOptions {
  /** Upstream requests one table may send (TABLE_BUDGET). */
  budget: number;
  /** How long one table may take, in ms (TABLE_DEADLINE_MS). */
  deadlineMs: number;
  /** Pages of the row list read ahead of the one being written (UPSTREAM_PAGE_CONCURRENCY). */
  ahead: number;
  /** Rows one table may have (TABLE_MAX_ROWS). */
  maxRows: number;
  /** Records one table's answer above its row list may read (TABLE_MAX_ANSWER_RECORDS). */
  maxAnswerRecords: number;
  /** Rows of a Parquet row group (TABLE_PARQUET_ROW_GROUP_ROWS). */
  rowGroupRows: number;
  /** Whether tables are planned against the key's hourly quota (UPSTREAM_QUOTA_GUARD); the budget always applies. */
  quotaGuard: boolean;
  /** Where the tables' metrics are registered. */
  registry: Registry;
}

/** A table being answered: its format and columns, and what it has written so far (for the report and metrics). */
export interface TableRun {
  format: TableFormat;
  projection: Projection;
  rows: number;
  bytes: number;
  /** Why it ended before its last row, when it did. */
  failure: string | null;
}

/** One payload of a table's answer: a chunk of rows, or its end (`hasNext: false`), or the errors that ended it. */
interface TablePayload extends ExecutionResult {
  hasNext: boolean;
  rows?: Cell[][];
}

/** What a table will take, answered to `X-Dry-Run: 1` and said in a refusal. */
export interface TablePlan {
  format: TableFormat;
  columns: string[];
  /** The rows the table will have (every record of the listings it reads, when each has its parent in the table). */
  rows: number;
  /** Upstream requests: made to plan it (the answer above the rows, the first page of each listing), still to make, and all by endpoint. */
  requests: { total: number; spent: number; remaining: number; byEndpoint: Record<string, number> };
  /** Requests one table may send (TABLE_BUDGET). */
  budget: number;
  /** The key's hourly quota as far as the gateway knows it (null when it does not guard it: UPSTREAM_QUOTA_GUARD=off). */
  quota: { left: number; limitPerHour: number } | null;
  /** Whether the table would be answered now. */
  fitsNow: boolean;
  /** Seconds until it would fit the key's quota (0: now; null: never within an hour, or never within the budget). */
  retryAfter: number | null;
  /**
   * Why its rows are made from the whole answer in memory (at most TABLE_BUDGET requests' records)
   * rather than streamed page by page; null when they are streamed (or there is no list).
   */
  inMemory: string | null;
}

/** A dry run's answer: the plan, instead of the rows. */
class DryRun extends Error {
  override name = 'DryRun';
  constructor(readonly plan: TablePlan) {
    super('dry run');
  }
}

/** The table of a request, read by the operation report (its log line carries rows and format). */
export const tableOf = (ctx: object): TableRun | null => (ctx as { tableRun?: TableRun }).tableRun ?? null;

/**
 * Answers before a table's first byte are JSON (errors, or a plan): with a status that is not 2xx when
 * there are errors, so that a client expecting a table never reads an error as one.
 */
function jsonAnswer(result: unknown, fetchAPI: Parameters<typeof processRegularResult>[1]): Response {
  const response = processRegularResult(result as ExecutionResult, fetchAPI, 'application/json') as Response;
  const errors = (result as ExecutionResult).errors ?? [];
  if (response.status !== 200 || errors.length === 0) return response;
  const code = errors.map((e) => e.extensions?.code).find((c): c is ErrorCode => typeof c === 'string' && c in ERRORS);
  // The status the catalogue gives the code besides GraphQL over HTTP's 200 (src/errors.ts: "for a table").
  const status = (code ? statusesOf(code) : []).find((s) => s !== 200) ?? 500;
  return new fetchAPI.Response(response.body, { status, headers: response.headers });
}

/** An X-Dry-Run header's meaning: absent or 0/false/no, 1/true/yes (any case), or null for anything else. */
function dryRunOf(header: string | null): boolean | null {
  if (header === null) return false;
  const value = header.trim().toLowerCase();
  if (['1', 'true', 'yes'].includes(value)) return true;
  if (['0', 'false', 'no', ''].includes(value)) return false;
  return null;
}

const refusal = (
  status: number,
  message: string,
  extensions: Record<string, unknown>,
  fetchAPI: { Response: typeof Response },
  headers: Record<string, string> = {},
) =>
  new fetchAPI.Response(JSON.stringify({ errors: [{ message, extensions }] }), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });

/**
 * Tables from the graph: a query's records as CSV, TSV, NDJSON, Parquet or Arrow from `/graphql`, by
 * content negotiation (`Accept`, or `format=`), the way Yoga answers JSON, multipart and SSE — a
 * result processor. The operation's execution is replaced by the table's (src/tables/rows.ts), whose
 * result is a stream of row chunks; the processor writes them in the format as they come. Errors
 * before the first byte are JSON with their status; a failure after it aborts the response (no final
 * chunk), so that a truncated table is never taken for a whole one.
 */
export function useTables(options: TablesOptions): Plugin<GatewayContext> {
  const asked = new WeakMap<Request, TableFormat>();
  const runs = new WeakMap<Request, TableRun>();
  const rowSchemas = new WeakMap<ExecutionArgs['schema'], RowSchemas>();
  const rows = new Counter({
    name: 'hsgql_table_rows_total',
    help: 'Rows written in tables, by format',
    labelNames: ['format'],
    registers: [options.registry],
  });
  const bytes = new Counter({
    name: 'hsgql_table_bytes_total',
    help: 'Bytes written in tables, by format',
    labelNames: ['format'],
    registers: [options.registry],
  });
  const tables = new Counter({
    name: 'hsgql_tables_total',
    help: 'Tables answered, by format and outcome (complete; aborted after their first byte; refused before it)',
    labelNames: ['format', 'outcome'],
    registers: [options.registry],
  });

  /** The table's execution: JSON errors until its first rows are in hand, then a stream of row chunks. */
  const runTable = async (
    args: ExecutionArgs,
    request: Request,
    format: TableFormat,
  ): Promise<ExecutionResult | AsyncIterable<TablePayload>> => {
    const ctx = args.contextValue as GatewayContext & { tableRun?: TableRun };
    const operation = getOperationAST(args.document, args.operationName ?? undefined);
    if (!operation) return { errors: [new GraphQLError('No operation to answer as a table')] };
    let projection: Projection;
    try {
      projection = project(args.schema, args.document, operation, args.variableValues ?? {});
    } catch (error) {
      if (error instanceof GraphQLError) return { errors: [error] };
      throw error;
    }
    ctx.session.widen({ budget: options.budget, deadlineMs: options.deadlineMs, pace: true });
    const dryRun = dryRunOf(request.headers.get('x-dry-run')) === true;
    let schemas = rowSchemas.get(args.schema);
    if (!schemas) rowSchemas.set(args.schema, (schemas = new RowSchemas(args.schema)));
    const source = tableRows(
      {
        schema: args.schema,
        rowSchemas: schemas,
        document: args.document,
        operation,
        variables: args.variableValues ?? undefined,
        ctx,
        ahead: options.ahead,
        maxRows: options.maxRows,
        maxAnswerRecords: options.maxAnswerRecords,
        onPlan: async (plan, inMemory) => {
          const table = await tablePlan(ctx, format, projection, plan, inMemory, options);
          if (dryRun) throw new DryRun(table);
          refuseUnfit(table);
        },
      },
      projection,
    );
    let first: IteratorResult<Cell[][]>;
    try {
      first = await source.next();
    } catch (error) {
      if (error instanceof DryRun) return { extensions: { table: error.plan } };
      tables.inc({ format, outcome: 'refused' });
      if (error instanceof TableErrors) return { data: error.data as ExecutionResult['data'], errors: error.errors };
      return { errors: [asGraphQLError(error)] };
    }
    const run: TableRun = { format, projection, rows: 0, bytes: 0, failure: null };
    runs.set(request, run);
    ctx.tableRun = run;
    return (async function* payloads(): AsyncGenerator<TablePayload> {
      try {
        if (!first.done) yield* slices(first.value);
        if (!first.done) for await (const chunk of source) yield* slices(chunk);
        yield { hasNext: false };
      } catch (error) {
        const errors = error instanceof TableErrors ? [...error.errors] : [asGraphQLError(error)];
        yield { hasNext: false, errors };
      } finally {
        await source.return(undefined);
      }
    })();
  };

  /** Writes the stream of row chunks in the format, as they come. */
  const tableResponse = (
    run: TableRun,
    result: AsyncIterable<TablePayload>,
    fetchAPI: { Response: typeof Response },
    res: unknown,
  ): Response => {
    const { format, projection } = run;
    const writer = createWriter(format, projection.columns, { rowGroupRows: options.rowGroupRows });
    const iterator = result[Symbol.asyncIterator]();
    let started = false;
    const send = (controller: ReadableStreamDefaultController<Uint8Array>, chunks: Uint8Array[]): void => {
      for (const chunk of chunks) {
        run.bytes += chunk.byteLength;
        bytes.inc({ format }, chunk.byteLength);
        controller.enqueue(chunk);
      }
    };
    /** Takes the next payload and writes it; false once the table is over (complete or aborted). */
    const step = async (controller: ReadableStreamDefaultController<Uint8Array>): Promise<boolean> => {
      const { value, done } = await iterator.next();
      if (done) {
        controller.close();
        return false;
      }
      if (value.errors?.length) {
        run.failure = value.errors.map((e) => e.message).join('; ');
        tables.inc({ format, outcome: 'aborted' });
        // Aborted: the client sees the connection end without the final chunk, never a short table that looks whole.
        const node = res as { destroy?: (error?: Error) => void } | undefined;
        if (node?.destroy) {
          node.destroy();
          controller.close();
        } else controller.error(new Error(`The table ended early: ${run.failure}`));
        await iterator.return?.();
        return false;
      }
      if (value.rows) {
        send(controller, writer.write(value.rows));
        run.rows += value.rows.length;
        rows.inc({ format }, value.rows.length);
      }
      if (!value.hasNext) {
        send(controller, writer.end());
        tables.inc({ format, outcome: 'complete' });
        controller.close();
        // The operation is over: its report (rows, bytes) is made now.
        await iterator.return?.();
        return false;
      }
      return true;
    };
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          if (!started) {
            started = true;
            send(controller, writer.start());
          }
          const before = run.bytes;
          // A pull that enqueues nothing is not called again: read on until some bytes go (a Parquet
          // row group fills over several chunks of rows) or the table is over.
          while ((await step(controller)) && run.bytes === before);
        } catch (error) {
          run.failure = error instanceof Error ? error.message : String(error);
          controller.error(error);
        }
      },
      async cancel() {
        run.failure ??= 'the client went away';
        await iterator.return?.();
      },
    });
    const extension = TABLE_FORMATS[format].extension;
    return new fetchAPI.Response(body, {
      status: 200,
      headers: {
        'content-type': contentTypeOf(format),
        'content-disposition': `attachment; filename="table.${extension}"`,
        'x-content-type-options': 'nosniff',
      },
    });
  };

  return {
    onRequest({ request, url, endResponse, fetchAPI }) {
      if (url.pathname !== '/graphql') return;
      const negotiated = negotiate(url, request.headers.get('accept'));
      const dryRun = dryRunOf(request.headers.get('x-dry-run'));
      if (dryRun === null)
        endResponse(
          refusal(
            400,
            'X-Dry-Run takes 1 (or true, yes) to plan a table without reading its rows, 0 (or false, no) to read them',
            { code: 'BAD_USER_INPUT' },
            fetchAPI,
          ),
        );
      else if (negotiated.kind === 'table') asked.set(request, negotiated.format);
      else if (dryRun)
        // A dry run plans a table; anything else would run for real (a mutation would write).
        endResponse(
          refusal(
            400,
            `X-Dry-Run plans a table: ask for one of ${Object.keys(TABLE_FORMATS).join(', ')} (Accept or ?format=) with it; without a table format the operation would run for real`,
            { code: 'BAD_USER_INPUT' },
            fetchAPI,
          ),
        );
      else if (negotiated.kind === 'unknown-format')
        endResponse(
          refusal(
            400,
            `Unknown format '${negotiated.format}': ask for one of ${Object.keys(TABLE_FORMATS).join(', ')} (or json)`,
            { code: 'BAD_USER_INPUT', format: negotiated.format, formats: Object.keys(TABLE_FORMATS) },
            fetchAPI,
          ),
        );
      else if (negotiated.kind === 'not-acceptable')
        // What it can serve, in the header and in words (JSON: what a client that asked for something else can still read).
        endResponse(
          refusal(
            406,
            `None of the types Accept lists can be served: ask for one of ${negotiated.acceptable.join(', ')} (or ?format=${Object.keys(TABLE_FORMATS).join('|')})`,
            { code: 'BAD_USER_INPUT', acceptable: negotiated.acceptable },
            fetchAPI,
            { accept: negotiated.acceptable.join(', ') },
          ),
        );
    },
    onExecute({ args, setExecuteFn }) {
      const request = (args.contextValue as { request?: Request }).request;
      const format = request ? asked.get(request) : undefined;
      if (!request || !format) return;
      setExecuteFn(((executeArgs: ExecutionArgs) => runTable(executeArgs, request, format)) as never);
    },
    onSubscribe({ args, setSubscribeFn }) {
      const request = (args.contextValue as { request?: Request }).request;
      const format = request ? asked.get(request) : undefined;
      if (!format) return;
      // Answered as JSON (onResultProcess) with the catalogue's status for it, rather than Yoga's empty 406.
      setSubscribeFn((() => ({
        errors: [
          gatewayError(
            'BAD_USER_INPUT',
            `A table (${format}) is read from a query; this operation is a subscription, whose events stream as JSON over SSE (Accept: text/event-stream) or WebSocket`,
            { extensions: { format }, status: 406 },
          ),
        ],
      })) as never);
    },
    onResultProcess({ request, result, setResultProcessor, serverContext }) {
      const format = asked.get(request);
      if (!format) return;
      const run = runs.get(request);
      const res = (serverContext as { res?: unknown } | undefined)?.res;
      if (run && isAsyncIterable(result)) {
        setResultProcessor(
          (r, fetchAPI) => tableResponse(run, r as AsyncIterable<TablePayload>, fetchAPI, res),
          TABLE_FORMATS[format].mediaType,
        );
      } else {
        setResultProcessor((r, fetchAPI) => jsonAnswer(r, fetchAPI), 'application/json');
      }
    },
  };
}

/**
 * A chunk's rows in slices of at most SLICE_ROWS, other requests let in between: a page whose records
 * repeat for many parents (a back-link) makes many rows at once.
 */
async function* slices(rows: Cell[][]): AsyncGenerator<TablePayload> {
  if (rows.length <= SLICE_ROWS) return yield { hasNext: true, rows };
  for (let i = 0; i < rows.length; i += SLICE_ROWS) {
    if (i > 0) await setImmediate();
    yield { hasNext: true, rows: rows.slice(i, i + SLICE_ROWS) };
  }
}

const SLICE_ROWS = 5_000;

/** What a table will take, against the table budget and the key's hourly quota. */
async function tablePlan(
  ctx: GatewayContext,
  format: TableFormat,
  projection: Projection,
  plan: StreamPlan,
  inMemory: string | null,
  options: TablesOptions,
): Promise<TablePlan> {
  const spent = ctx.session.cost.requests;
  const remaining = plan.requests;
  const byEndpoint = ctx.session.endpoints;
  for (const { path, pages } of plan.endpoints) {
    const endpoint = endpointOf('GET', path);
    if (pages > 0) byEndpoint[endpoint] = (byEndpoint[endpoint] ?? 0) + pages;
  }
  const fitsBudget = spent + remaining <= options.budget;
  const room = await ctx.session.quotaRoom(remaining);
  const fitsQuota = !options.quotaGuard || room.fitsInSeconds === 0;
  return {
    format,
    columns: projection.columns.map((c) => c.name),
    rows: plan.rows,
    requests: { total: spent + remaining, spent, remaining, byEndpoint },
    budget: options.budget,
    quota: options.quotaGuard ? { left: room.left, limitPerHour: room.limitPerHour } : null,
    fitsNow: fitsBudget && fitsQuota,
    retryAfter: !fitsBudget ? null : fitsQuota ? 0 : room.fitsInSeconds,
    inMemory,
  };
}

const EXPORT_JOB = 'an export job (startExport) can take it';

/** Refuses, before its first row, a table that cannot fit its budget or the key's hourly quota. */
function refuseUnfit(table: TablePlan): void {
  const { spent, remaining } = table.requests;
  if (spent + remaining > table.budget) {
    throw gatewayError(
      'UPSTREAM_BUDGET_EXCEEDED',
      `This table needs ${remaining} more upstream requests after the ${spent} that planned it; a table may send ${table.budget} (TABLE_BUDGET): ${EXPORT_JOB}`,
      { extensions: { needed: spent + remaining, budget: table.budget }, status: 422 },
    );
  }
  if (table.fitsNow || table.quota === null) return;
  const { left, limitPerHour } = table.quota;
  const when =
    table.retryAfter === null
      ? `: that is more than a key may send in an hour — ${EXPORT_JOB}`
      : `: it would fit in ${table.retryAfter} s, as the key's requests of the last hour age out — or ${EXPORT_JOB}`;
  const extensions = errorExtensions('RATE_LIMITED', { needed: remaining, left, limitPerHour, retryAfter: table.retryAfter });
  const status: StatusOf<'RATE_LIMITED'> = 429;
  throw new GraphQLError(
    `This table needs ${remaining} more upstream requests; this key has ${left} of its ${limitPerHour} left this hour${when}`,
    {
      extensions: {
        ...extensions,
        http: { status, ...(table.retryAfter === null ? {} : { headers: { 'retry-after': String(table.retryAfter) } }) },
      },
    },
  );
}

function asGraphQLError(error: unknown): GraphQLError {
  if (error instanceof GraphQLError) return error;
  return new GraphQLError(error instanceof Error ? error.message : String(error), {
    originalError: error instanceof Error ? error : undefined,
  });
}
