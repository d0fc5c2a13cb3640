/**
 * One pass of an export job (src/exports/jobs.ts runs them): the answer above its rows (read, or kept
 * from the first pass), then every page of its row list not on disk yet — each written before it
 * counts — from where the pages on disk leave it; then the file in the job's format and its watermark.
 */
import { createHash } from 'node:crypto';
import { getOperationAST, type GraphQLSchema, type OperationDefinitionNode } from 'graphql';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { gatewayError } from '../errors.ts';
import { NO_META } from '../loaders/fetch.ts';
import type { PlannedRead, StreamPlan } from '../loaders/planner.ts';
import type { GatewayContext } from '../schema/builder.ts';
import { project, type Projection } from '../tables/projection.ts';
import { tableChunks, type RowSchemas } from '../tables/rows.ts';
import { MISSING_KEY_MESSAGE, type UpstreamSession } from '../upstream/session.ts';
import type { Rec } from '../upstream/values.ts';
import { checked } from './document.ts';
import { answerName, pageName, pagePlace, tableOrder, type Checkpoint, type ExportFiles } from './files.ts';
import type { KeyPacer } from './pacer.ts';
import type { ExportStatus, JobRecord } from './types.ts';
import { advance, decode, documentOf, encode, isNew, merge, narrowed, NO_MARK, rowListingOf, type Mark } from './watermark.ts';

/** A job in this process: its record, and while it runs its key (in a session factory), its abort and waits. */
export interface Job {
  record: JobRecord;
  /** New sessions with the owner's key: held while the job runs, never written anywhere. */
  keyed: (() => UpstreamSession) | null;
  controller: AbortController | null;
  /** What the abort means for the job's status. */
  stopAs: ExportStatus | null;
  run: Promise<void> | null;
  waitingUntil: number | null;
  /** Told of each change (exportProgress). */
  listeners: Set<() => void>;
  /** With a shared table: this process lost the job's lease while running it (another replica may run it now). */
  lost: boolean;
}

/** What a pass takes from the service running it (ExportService). */
export interface PassHost {
  deps: {
    schema: GraphQLSchema;
    contextFor(session: UpstreamSession, signal: AbortSignal): GatewayContext;
    ahead: number;
    rowGroupRows: number;
    maxAnswerRecords: number;
    logger: Logger;
  };
  files: ExportFiles;
  rowSchemas: RowSchemas;
  metrics: { rows: Counter; requests: Counter };
  /** EXPORT_MAX_BYTES, and the bytes the jobs take now. */
  maxBytes: number;
  used(): Promise<number>;
  pacer(hash: string): KeyPacer;
  /** A status change: saved, counted, logged. */
  transition(job: Job, status: ExportStatus): Promise<void>;
  save(job: Job): Promise<void>;
}

/** The longest timer Node keeps (a job's session has no deadline but its abort). */
const NO_DEADLINE_MS = 2_147_483_647;
/** Requests one pass of a job may send (its session's budget): in effect none. */
const NO_BUDGET = 10_000_000;

/** One pass: the answer above the rows, then every page not on disk yet, each written before it counts; then the file. */
export async function runPass(host: PassHost, job: Job, signal: AbortSignal): Promise<void> {
  const r = job.record;
  const keyed = job.keyed;
  if (!keyed) throw gatewayError('UNAUTHENTICATED', MISSING_KEY_MESSAGE);
  const session = keyed();
  const pacer = host.pacer(r.owner).forJob((until) => {
    if (until === job.waitingUntil) return;
    job.waitingUntil = until;
    host
      .transition(job, until === null ? 'RUNNING' : 'WAITING')
      .catch((error: unknown) => host.deps.logger.error({ err: error, export: r.id }, 'export job: its record could not be written'));
  });
  session.widen({ budget: NO_BUDGET, deadlineMs: NO_DEADLINE_MS, pace: true, pacer });
  const end = (): void => session.end();
  signal.addEventListener('abort', end, { once: true });
  const before = r.requestsDone;
  const spent = (): number => before + session.cost.requests;
  try {
    await host.transition(job, 'RUNNING');
    const { document, operation, projection, listing, since, keep } = incremental(host.deps.schema, r);
    const ctx = host.deps.contextFor(session, signal);
    const onDisk = await host.files.pages(r.id);
    // The answer above the rows as the first pass read it: a resume reads none of it again (and its
    // parents are those of the pages on disk).
    const answered = await host.files.readAnswers(r.id);
    session.replay(answered);
    // The first pages on disk stand in for reading them again while planning.
    for (const name of onDisk.keys()) {
      if (pagePlace(name)?.offset !== 0) continue;
      const { first, firsts = [] } = await host.files.readPage(r.id, name);
      for (const known of first ? [first, ...firsts] : firsts) ctx.loaders.planner.seed(known.key, known.page);
    }
    let plan: StreamPlan | null = null;
    let answers = 0;
    // Where the pages on disk leave the row list (filled once the plan is known).
    const resume: { from?: (read: number) => readonly number[] | undefined; cursors?: readonly number[] } = {};
    const chunks = tableChunks(
      {
        schema: host.deps.schema,
        rowSchemas: host.rowSchemas,
        document,
        operation: operation as OperationDefinitionNode,
        variables: r.variables ?? undefined,
        ctx,
        ahead: host.deps.ahead,
        maxAnswerRecords: host.deps.maxAnswerRecords,
        onPlan: async (planned) => {
          plan = planned;
          if (answered.length === 0) r.bytes += await host.files.writeAnswers(r.id, await session.answered());
          await resumeFrom(host, job, planned, onDisk, resume);
          r.requestsPlanned = spent() + planned.requests - skipped(planned, onDisk, resume.from);
        },
        skip: (read, offset) => onDisk.has(pageName(read, offset)),
        keep,
        resume,
      },
      projection,
    );
    for await (const chunk of chunks) {
      const name = chunk.page ? pageName(chunk.page.read, chunk.page.offset) : answerName(answers++);
      const checkpoint: Checkpoint = { rows: chunk.rows };
      const reads = (plan as StreamPlan | null)?.reads;
      const read = chunk.page && reads?.[chunk.page.read];
      // A listing's own first page is kept to plan with on resume; a merge's first page keeps every merged listing's.
      if (chunk.page && read && chunk.page.offset === 0) {
        if (!chunk.page.merged)
          checkpoint.first = { key: read.key, page: { records: [...chunk.page.records], total: read.total, offset: 0, meta: NO_META } };
        else
          checkpoint.firsts = await Promise.all(
            (reads ?? []).filter((other) => other.group === read.group).map(async (other) => ({ key: other.key, page: await other.first })),
          );
      }
      if (chunk.page?.taken) checkpoint.taken = chunk.page.taken;
      if (chunk.cursors) checkpoint.cursors = chunk.cursors;
      if (chunk.page && listing) {
        const field = listing.spec.instant;
        checkpoint.mark = chunk.page.records.filter((rec) => !keep || keep(rec)).reduce((m, rec) => advance(m, rec, field), NO_MARK);
      }
      await write(host, job, name, checkpoint);
      const done = spent();
      host.metrics.requests.inc(done - r.requestsDone);
      r.requestsDone = done;
      await host.save(job);
    }
    await assemble(host, job, projection, listing ? since : null);
    const done = spent();
    host.metrics.requests.inc(done - r.requestsDone);
    r.requestsDone = done;
    await host.transition(job, 'SUCCEEDED');
  } finally {
    signal.removeEventListener('abort', end);
    session.end();
    if (r.requestsDone < spent()) {
      host.metrics.requests.inc(spent() - r.requestsDone);
      r.requestsDone = spent();
    }
  }
}

/**
 * Where the pages on disk leave a resumed job's row list: each merge's place (the `taken` of its last
 * page on disk) and each parent's next cursor (the last page's). Pages of a plan that reads other
 * listings than the one they came from (the experiment gained a room since) are removed first: the
 * row list is read again from its start.
 */
async function resumeFrom(
  host: PassHost,
  job: Job,
  plan: StreamPlan,
  onDisk: Map<string, number>,
  resume: { from?: (read: number) => readonly number[] | undefined; cursors?: readonly number[] },
): Promise<void> {
  const r = job.record;
  const digest = createHash('sha256')
    .update(JSON.stringify(plan.reads.map((read) => [read.key, read.group])))
    .digest('hex')
    .slice(0, 32);
  const pages = [...onDisk.keys()].filter((name) => pagePlace(name) !== null);
  if (r.plan !== undefined && r.plan !== digest && pages.length > 0) {
    host.deps.logger.warn(
      { export: r.id, pages: pages.length },
      'export job: its row list is read from other listings than its pages on disk; reading it again',
    );
    for (const name of pages) {
      await host.files.removePage(r.id, name);
      r.bytes = Math.max(0, r.bytes - (onDisk.get(name) ?? 0));
      onDisk.delete(name);
      delete r.pageRows[name];
    }
    pages.length = 0;
  }
  r.plan = digest;
  // The last page on disk of each read (a merge's pages are named by its first read).
  const last = new Map<number, number>();
  for (const name of pages) {
    const { read, offset } = pagePlace(name) as { read: number; offset: number };
    last.set(read, Math.max(offset, last.get(read) ?? -1));
  }
  const taken = new Map<number, readonly number[]>();
  for (const [read, offset] of last) {
    const merged = plan.reads.filter((other) => other.group === plan.reads[read]?.group).length > 1;
    if (!merged) continue;
    const checkpoint = await host.files.readPage(r.id, pageName(read, offset));
    if (checkpoint.taken) taken.set(read, checkpoint.taken);
  }
  resume.from = (read) => taken.get(read);
  const lastName = tableOrder(pages).at(-1);
  if (lastName !== undefined) resume.cursors = (await host.files.readPage(r.id, lastName)).cursors;
}

/** Requests of the plan for pages already on disk (a resumed job does not read them again). */
function skipped(plan: StreamPlan, onDisk: ReadonlyMap<string, number>, from?: (read: number) => readonly number[] | undefined): number {
  let n = 0;
  for (let i = 0; i < plan.reads.length;) {
    const read = plan.reads[i] as PlannedRead;
    let end = i + 1;
    while (end < plan.reads.length && (plan.reads[end] as PlannedRead).group === read.group) end++;
    if (end - i > 1) {
      // A merge going on from its place reads each listing from the page holding its next record.
      const taken = from?.(i) ?? [];
      plan.reads.slice(i, end).forEach((merged, j) => (n += Math.max(0, Math.floor((taken[j] ?? 0) / merged.source.pageLimit) - 1)));
    } else for (let at = read.source.pageLimit; at < read.total; at += read.source.pageLimit) if (onDisk.has(pageName(i, at))) n++;
    i = end;
  }
  return n;
}

/** A page on disk, within EXPORT_MAX_BYTES; then it counts. A run stopped (or that lost its lease) writes none. */
async function write(host: PassHost, job: Job, name: string, checkpoint: Checkpoint): Promise<void> {
  const r = job.record;
  // Stopped (cancelled, paused, or its lease lost) while the page was read: it is not written.
  job.controller?.signal.throwIfAborted();
  const size = Buffer.byteLength(JSON.stringify(checkpoint));
  const used = await host.used();
  if (used + size > host.maxBytes) {
    throw gatewayError(
      'EXPORT_TOO_LARGE',
      `Export jobs would take more than EXPORT_MAX_BYTES (${host.maxBytes} bytes) in EXPORT_DIR: resume this job once other jobs' files have expired or been removed`,
      { extensions: { maxBytes: host.maxBytes } },
    );
  }
  const written = await host.files.writePage(r.id, name, checkpoint);
  r.bytes += written;
  r.pageRows[name] = checkpoint.rows.length;
  host.metrics.rows.inc(checkpoint.rows.length);
}

/** The file from the pages; and the watermark, from `since` (null: the rows are no data listing's) and every page's mark. */
async function assemble(host: PassHost, job: Job, projection: Projection, since: Mark | null): Promise<void> {
  const r = job.record;
  const names = tableOrder((await host.files.pages(r.id)).keys());
  let mark = since;
  const file = await host.files.assemble(r.id, r.format, projection.columns, names, host.deps.rowGroupRows, (checkpoint) => {
    if (mark && checkpoint.mark) mark = merge(mark, checkpoint.mark);
  });
  r.file = file;
  r.bytes = file.bytes;
  r.watermark = mark ? encode(documentOf(r.query, r.variables, r.operationName), mark) : null;
}

/**
 * The job's document as a pass runs it: with \`since\`, its row list read from the watermark's instant
 * on (its records already delivered then dropped by \`keep\`); \`listing\`: the row list's, when it is a
 * data listing (the job then ends with a watermark).
 */
function incremental(schema: GraphQLSchema, r: JobRecord) {
  const plain = checked(schema, r);
  const listing = rowListingOf(plain.projection);
  const since = r.since === null ? NO_MARK : decode(r.since, documentOf(r.query, r.variables, r.operationName));
  if (!listing || since.at === null) return { ...plain, listing, since, keep: undefined };
  const field = listing.spec.instant;
  // Not validated again: it only sets a DateTime literal on an argument the listing takes (a variable it replaces may go unused).
  const document = narrowed(plain.document, listing.fields, since.at, r.variables);
  const operation = getOperationAST(document, r.operationName ?? undefined) as OperationDefinitionNode;
  const projection = project(schema, document, operation, plain.variables);
  return { document, operation, projection, listing, since, keep: (rec: Rec) => isNew(since, rec, field) };
}
