import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { GraphQLSchema } from 'graphql';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { gatewayError } from '../errors.ts';
import { scrapedGauge } from '../observability.ts';
import type { GatewayContext } from '../schema/builder.ts';
import { HOUR_MS, MINUTE_MS, type QuotaLimits } from '../state/quota.ts';
import type { QuotaStore } from '../state/state.ts';
import { contentTypeOf, TABLE_FORMATS } from '../tables/formats.ts';
import { RowSchemas } from '../tables/rows.ts';
import { MISSING_KEY_MESSAGE, type UpstreamSession } from '../upstream/session.ts';
import { routes } from '../upstream/routes.ts';
import { checked, reasonOf, type DocumentLimits } from './document.ts';
import { ExportFiles } from './files.ts';
import { KeyPacer } from './pacer.ts';
import { decode, documentOf, whyNotIncremental } from './watermark.ts';
import type { RedisJobTable } from './table.ts';
import { runPass, type Job, type PassHost } from './pass.ts';
import {
  ACTIVE,
  EXPORT_STATUSES,
  FINISHED,
  type ExportFile,
  type ExportJobs,
  type ExportJobView,
  type ExportStart,
  type ExportStatus,
  type JobRecord,
} from './types.ts';

/** The export jobs' settings (EXPORT_*). */
export interface ExportsOptions {
  /** Where jobs keep their pages and files (EXPORT_DIR). */
  dir: string;
  /** Share of each of the key's limits its jobs may spend (EXPORT_QUOTA_SHARE). */
  quotaShare: number;
  /** How long a finished (or paused) job and its file are kept, in ms (EXPORT_TTL_MS). */
  ttlMs: number;
  /** Bytes the jobs' pages and files may take in EXPORT_DIR (EXPORT_MAX_BYTES). */
  maxBytes: number;
  /** Jobs one key may have going at once (EXPORT_MAX_JOBS_PER_KEY). */
  maxJobsPerKey: number;
  /** Jobs one process runs at once (EXPORT_MAX_JOBS). */
  maxJobs: number;
  /** With REDIS_URL: how long the lease of the replica running a job lasts unless renewed, in ms (EXPORT_LEASE_MS). */
  leaseMs: number;
  /** Times a job tries again after a failure before it ends FAILED (EXPORT_RETRIES). */
  retries: number;
}

export interface ExportsDeps {
  schema: GraphQLSchema;
  /** An operation's context around a job's session (its loaders and planner). */
  contextFor(session: UpstreamSession, signal: AbortSignal): GatewayContext;
  quota: QuotaStore;
  /** The key's limits as this process enforces them. */
  limits(): QuotaLimits;
  /** Pages read ahead of the one written (UPSTREAM_PAGE_CONCURRENCY). */
  ahead: number;
  rowGroupRows: number;
  /** Records a job's answer above its row list may read (TABLE_MAX_ANSWER_RECORDS, as a table's). */
  maxAnswerRecords: number;
  /** The operation limits of /graphql, which a job's query has too. */
  documentLimits: DocumentLimits;
  logger: Logger;
  registry: Registry;
  /** With REDIS_URL: the job table and leases every replica shares (null: this process's jobs, on disk). */
  table?: RedisJobTable | null;
  now?: () => number;
}

/** A job this process holds but does not run. */
const idle = (record: JobRecord): Job => ({
  record,
  keyed: null,
  controller: null,
  stopAs: null,
  run: null,
  waitingUntil: null,
  listeners: new Set(),
  lost: false,
});

/** Codes a job does not try again after: the same request would fail the same way. */
const PERMANENT = new Set(['BAD_USER_INPUT', 'FORBIDDEN', 'NOT_FOUND', 'UNAUTHENTICATED', 'EXPORT_TOO_LARGE', 'GRAPHQL_VALIDATION_FAILED']);

/**
 * Export jobs: a table pulled page by page within a share of its key's quota, each page on disk before
 * it counts, the file assembled at the end. Jobs belong to their key's hash; the key itself lives in
 * memory only while its job runs. A process that starts finds the jobs it did not finish PAUSED.
 *
 * With REDIS_URL the records are in Redis (src/exports/table.ts), so every replica lists and controls
 * every job, and one replica runs each under a lease: a replica holds its jobs only as a view of the
 * table, except those it runs. A job whose replica died (its lease expired) is PAUSED; a process that
 * starts pauses only those.
 */
export class ExportService implements ExportJobs {
  readonly #jobs = new Map<string, Job>();
  readonly #pacers = new Map<string, KeyPacer>();
  readonly #files: ExportFiles;
  readonly #rowSchemas: RowSchemas;
  readonly #now: () => number;
  readonly #ready: Promise<void>;
  readonly #sweeper: NodeJS.Timeout;
  readonly #metrics: { transitions: Counter; rows: Counter; requests: Counter };
  /** What a job's pass takes from this service (src/exports/pass.ts). */
  readonly #host: PassHost;
  /** With a shared table: jobs whose last record Redis did not take (it was down), written when it answers again. */
  readonly #unsaved = new Set<Job>();
  /** Jobs a resumeExport is under way for (between its checks and the job's launch). */
  readonly #resuming = new Set<string>();
  #flusher: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;
  #closed = false;

  constructor(
    private readonly options: ExportsOptions,
    private readonly deps: ExportsDeps,
  ) {
    this.#files = new ExportFiles(options.dir);
    this.#rowSchemas = new RowSchemas(deps.schema);
    this.#now = deps.now ?? Date.now;
    this.#ready = this.#load();
    this.#ready.catch((error: unknown) => deps.logger.error({ err: error }, 'export jobs: EXPORT_DIR could not be read'));
    this.#sweeper = setInterval(() => void this.sweep(), Math.min(options.ttlMs, 60_000));
    this.#sweeper.unref();
    // Another replica's cancelExport reaches the runner at once (Redis pub/sub).
    deps.table?.listen((id, as) => {
      this.#asked(id, as).catch((error: unknown) => deps.logger.error({ err: error, export: id }, 'export job: it could not be stopped'));
    });
    const registers = [deps.registry];
    this.#metrics = {
      transitions: new Counter({
        name: 'hsgql_export_jobs_total',
        help: 'Export jobs entering each status',
        labelNames: ['status'],
        registers,
      }),
      rows: new Counter({ name: 'hsgql_export_rows_total', help: 'Rows export jobs wrote to disk', registers }),
      requests: new Counter({ name: 'hsgql_export_requests_total', help: 'Upstream requests export jobs sent', registers }),
    };
    scrapedGauge(
      deps.registry,
      'hsgql_export_jobs',
      'Export jobs this process holds, by status',
      () => {
        const counts: Record<string, number> = Object.fromEntries(EXPORT_STATUSES.map((s) => [s, 0]));
        for (const job of this.#jobs.values()) counts[job.record.status] = (counts[job.record.status] ?? 0) + 1;
        return counts;
      },
      'status',
    );
    this.#host = {
      deps,
      files: this.#files,
      rowSchemas: this.#rowSchemas,
      metrics: this.#metrics,
      maxBytes: options.maxBytes,
      used: () => this.#used(),
      pacer: (hash) => this.#pacer(hash),
      transition: (job, status) => this.#transition(job, status),
      save: (job) => this.#save(job),
    };
  }

  /** The jobs on disk: those that were going when their process stopped are PAUSED, to be resumed by their key. */
  async #load(): Promise<void> {
    const table = this.deps.table;
    if (table) {
      // Only the jobs whose replica died: a live replica's jobs go on.
      for (const id of (await table.ids()) ?? []) await this.#sync(id);
      return;
    }
    for (const raw of await this.#files.readRecords()) {
      const record = raw as JobRecord;
      if (typeof record.id !== 'string' || !EXPORT_STATUSES.includes(record.status)) continue;
      const job: Job = idle(record);
      this.#jobs.set(record.id, job);
      if (ACTIVE.has(record.status)) await this.#transition(job, 'PAUSED');
    }
  }

  async #caller(session: UpstreamSession) {
    await this.#ready;
    const owner = session.forLive();
    if (owner === null) throw gatewayError('UNAUTHENTICATED', MISSING_KEY_MESSAGE);
    return owner;
  }

  #own(hash: string, id: string): Job | null {
    const job = this.#jobs.get(id);
    return job && job.record.owner === hash ? job : null;
  }

  /**
   * The job as the shared table has it (a job this process runs is its own): null once it is gone; one
   * going without a lease has lost its replica and is PAUSED. Without a table, while Redis does not
   * answer, or until Redis has the record this process kept while it was down, this process's view.
   */
  async #sync(id: string): Promise<Job | null> {
    const table = this.deps.table;
    const held = this.#jobs.get(id) ?? null;
    // A job this process runs, or whose record Redis has yet to take (it was down), is as this process has it.
    if (!table || held?.controller || (held && this.#unsaved.has(held))) return held;
    const record = await table.get(id);
    if (record === undefined) return held;
    if (record === null) {
      this.#jobs.delete(id);
      return null;
    }
    const job: Job = held ?? idle(record);
    const changed = job.record.updatedAt !== record.updatedAt || job.record.status !== record.status;
    job.record = record;
    this.#jobs.set(id, job);
    if (ACTIVE.has(record.status) && (await table.leased(id)) === false) {
      // Read again: the running replica may have ended it (and let its lease go) since.
      const now = await table.get(id);
      if (now && ACTIVE.has(now.status)) await this.#transition(job, 'PAUSED');
      else if (now) job.record = now;
    }
    if (changed) for (const listener of job.listeners) listener();
    return job;
  }

  async #mine(hash: string, id: string): Promise<Job | null> {
    await this.#sync(id);
    return this.#own(hash, id);
  }

  async start(session: UpstreamSession, input: ExportStart): Promise<ExportJobView> {
    const owner = await this.#caller(session);
    if (!Object.hasOwn(TABLE_FORMATS, input.format)) throw gatewayError('BAD_USER_INPUT', `Unknown format '${input.format}'`);
    const { projection } = checked(this.deps.schema, input, this.deps.documentLimits);
    if (input.since !== null) {
      decode(input.since, documentOf(input.query, input.variables, input.operationName));
      const why = whyNotIncremental(projection);
      if (why) throw gatewayError('BAD_USER_INPUT', why, { extensions: { argument: 'since' } });
    }
    await this.#admit(owner.hash);
    // A key the upstream has not accepted yet is asked about first (its smallest listing): a key it
    // refuses keeps no job, nor a slot of the caps.
    // Only a refused key stops it here: a scope the listing needs (403), the upstream down or busy, the
    // job meets in its run as any job does.
    if (!session.keyConfirmed()) {
      try {
        await session.get(routes.experiments(), new URLSearchParams({ limit: '1' }));
      } catch (error) {
        if (reasonOf(error).code === 'UNAUTHENTICATED') throw error;
      }
    }
    const now = new Date(this.#now()).toISOString();
    const record: JobRecord = {
      id: `exp_job_${randomBytes(12).toString('hex')}`,
      owner: owner.hash,
      organizationId: owner.organizationId,
      query: input.query,
      variables: input.variables,
      operationName: input.operationName,
      format: input.format,
      since: input.since,
      status: 'QUEUED',
      pageRows: {},
      requestsPlanned: 0,
      requestsDone: 0,
      watermark: null,
      error: null,
      createdAt: now,
      updatedAt: now,
      file: null,
      bytes: 0,
    };
    const job: Job = idle(record);
    this.#jobs.set(record.id, job);
    await this.deps.table?.claim(record.id);
    await this.#transition(job, 'QUEUED');
    const queued = this.#view(job);
    this.#launch(job, owner.session);
    return queued;
  }

  /** Refuses a job past the caps: per key, and per process. */
  async #admit(hash: string): Promise<void> {
    const table = this.deps.table;
    // With a shared table the key's jobs on every replica count; the process's cap counts its own runs.
    if (table) for (const id of (await table.idsOf(hash)) ?? []) await this.#sync(id);
    const active = [...this.#jobs.values()].filter((j) => ACTIVE.has(j.record.status));
    const mine = active.filter((j) => j.record.owner === hash).length;
    const running = table ? active.filter((j) => j.controller).length : active.length;
    if (mine >= this.options.maxJobsPerKey) {
      throw gatewayError(
        'EXPORT_LIMIT_EXCEEDED',
        `This key has ${mine} export jobs going, the most it may (EXPORT_MAX_JOBS_PER_KEY): wait for one to end, or cancel one`,
        { extensions: { limit: 'EXPORT_MAX_JOBS_PER_KEY', max: this.options.maxJobsPerKey } },
      );
    }
    if (running >= this.options.maxJobs) {
      throw gatewayError(
        'EXPORT_LIMIT_EXCEEDED',
        `This gateway runs ${running} export jobs, the most it may (EXPORT_MAX_JOBS): try again later`,
        {
          extensions: { limit: 'EXPORT_MAX_JOBS', max: this.options.maxJobs },
        },
      );
    }
  }

  async cancel(session: UpstreamSession, id: string): Promise<ExportJobView | null> {
    const owner = await this.#caller(session);
    let job = await this.#mine(owner.hash, id);
    if (!job) return null;
    if (FINISHED.has(job.record.status)) return this.#view(job);
    if (this.deps.table && !job.controller && ACTIVE.has(job.record.status)) {
      // Another replica runs it: asked to, it stops it (or, had it died, the job is PAUSED, cancelled here).
      job = await this.#askRunner(job, 'CANCELLED');
      if (!job || FINISHED.has(job.record.status)) return job && this.#view(job);
    }
    await this.#cancelHere(job);
    return this.#view(job);
  }

  /** Cancels a job this process runs (or one no process runs): its pages go, its record stays. */
  async #cancelHere(job: Job): Promise<void> {
    const id = job.record.id;
    await this.#stop(job, 'CANCELLED');
    await this.#files.removePages(id);
    job.record.pageRows = {};
    job.record.bytes = 0;
    await this.#save(job);
  }

  /**
   * Asks the replica running a job to stop it as `as`; the job once that replica has (or once its lease
   * expired). The runner hears it at once (pub/sub) and stops; one that missed the message reads it at
   * its next renewal; past two leases it is gone (its job PAUSED by #sync).
   */
  async #askRunner(job: Job, as: ExportStatus): Promise<Job | null> {
    const table = this.deps.table;
    if (!table) return job;
    const id = job.record.id;
    await table.ask(id, as);
    for (const end = this.#now() + 2 * 3 * table.beatMs + 1_000; this.#now() < end;) {
      await delay(Math.min(25, table.beatMs));
      const now = await this.#sync(id);
      if (!now || !ACTIVE.has(now.record.status)) return now;
    }
    return this.#sync(id);
  }

  /** A stop another replica asked (pub/sub) of a job this process runs. */
  async #asked(id: string, as: ExportStatus): Promise<void> {
    const job = this.#jobs.get(id);
    if (!job?.controller || job.controller.signal.aborted) return;
    if (as === 'CANCELLED') await this.#cancelHere(job);
    else await this.#stop(job, as);
  }

  async resume(session: UpstreamSession, id: string): Promise<ExportJobView | null> {
    const owner = await this.#caller(session);
    const job = await this.#mine(owner.hash, id);
    if (!job) return null;
    const resumable = (): boolean => job.record.status === 'PAUSED' || job.record.status === 'FAILED';
    // One resume at a time: a second one while the first is under way answers the job as it is.
    if (!resumable() || this.#resuming.has(id)) return this.#view(job);
    this.#resuming.add(id);
    try {
      // A run that has just ended (its status is said before it has settled) settles first.
      await job.run;
      await this.#admit(owner.hash);
      // With a shared table, the lease first: one replica resumes it (another's resume finds it QUEUED).
      if (this.deps.table && !(await this.deps.table.claim(id))) return this.#view((await this.#sync(id)) ?? job);
      // Cancelled (or resumed) meanwhile: left as it is.
      if (!resumable() || job.controller) {
        if (this.deps.table && !job.controller) await this.deps.table.release(id);
        return this.#view(job);
      }
      job.record.error = null;
      await this.#reconcile(job);
      await this.#transition(job, 'QUEUED');
      const queued = this.#view(job);
      this.#launch(job, owner.session);
      return queued;
    } finally {
      this.#resuming.delete(id);
    }
  }

  /**
   * Counts the pages on disk its record does not: one written as its run stopped before the record
   * said so (the process died, or lost the lease, between the two). The resumed run does not read them
   * again, so they count now.
   */
  async #reconcile(job: Job): Promise<void> {
    const r = job.record;
    for (const [name, bytes] of await this.#files.pages(r.id)) {
      if (Object.hasOwn(r.pageRows, name)) continue;
      r.pageRows[name] = (await this.#files.readPage(r.id, name)).rows.length;
      r.bytes += bytes;
    }
  }

  async get(session: UpstreamSession, id: string): Promise<ExportJobView | null> {
    const owner = await this.#caller(session);
    const job = await this.#mine(owner.hash, id);
    return job ? this.#view(job) : null;
  }

  async list(session: UpstreamSession): Promise<ExportJobView[]> {
    const owner = await this.#caller(session);
    const table = this.deps.table;
    if (table) {
      const ids = await table.idsOf(owner.hash);
      for (const id of new Set([...(ids ?? []), ...this.#jobs.keys()])) await this.#sync(id);
    }
    return [...this.#jobs.values()]
      .filter((j) => j.record.owner === owner.hash)
      .sort((a, b) => a.record.createdAt.localeCompare(b.record.createdAt) || a.record.id.localeCompare(b.record.id))
      .map((j) => this.#view(j));
  }

  async progress(session: UpstreamSession, id: string, signal: AbortSignal): Promise<AsyncIterable<ExportJobView> | null> {
    const owner = session.forLive();
    if (owner === null) return null;
    await this.#ready;
    const job = await this.#mine(owner.hash, id);
    if (!job) return null;
    const view = (): ExportJobView => this.#view(job);
    const table = this.deps.table;
    // A job another replica runs changes in Redis: read every beat (#sync tells the listeners of a change).
    const poll = (): Promise<unknown> | null =>
      table && !job.controller
        ? delay(table.beatMs, undefined, { signal }).then(
            () => this.#sync(id),
            () => null,
          )
        : null;
    return (async function* follow(): AsyncGenerator<ExportJobView> {
      let changed = false;
      let wake: (() => void) | null = null;
      const listener = (): void => {
        changed = true;
        wake?.();
      };
      const aborted = (): void => wake?.();
      job.listeners.add(listener);
      signal.addEventListener('abort', aborted);
      try {
        yield view();
        while (!signal.aborted && !FINISHED.has(job.record.status) && job.record.status !== 'PAUSED') {
          if (!changed) {
            const woken = new Promise<void>((resolve) => (wake = resolve));
            const polled = poll();
            await (polled ? Promise.race([woken, polled]) : woken);
          }
          wake = null;
          if (!changed) continue;
          changed = false;
          yield view();
        }
      } finally {
        job.listeners.delete(listener);
        signal.removeEventListener('abort', aborted);
      }
    })();
  }

  async file(hash: string, id: string): Promise<ExportFile | null> {
    await this.#ready;
    const job = await this.#mine(hash, id);
    const file = job?.record.file;
    if (!job || !file || job.record.status !== 'SUCCEEDED') return null;
    const { format } = job.record;
    return {
      path: this.#files.filePath(id, format),
      bytes: file.bytes,
      etag: file.etag,
      mediaType: contentTypeOf(format),
      fileName: `${id}.${TABLE_FORMATS[format].extension}`,
      modified: new Date(job.record.updatedAt),
    };
  }

  #view(job: Job): ExportJobView {
    const r = job.record;
    return {
      id: r.id,
      status: r.status,
      format: r.format,
      rows: Object.values(r.pageRows).reduce((n, rows) => n + rows, 0),
      requestsPlanned: r.requestsPlanned,
      requestsDone: r.requestsDone,
      eta: this.#eta(job),
      downloadUrl: r.status === 'SUCCEEDED' && r.file ? `/exports/${r.id}/file` : null,
      watermark: r.watermark,
      error: r.error,
      createdAt: new Date(r.createdAt),
      updatedAt: new Date(r.updatedAt),
    };
  }

  /** When a going job should end, at the pace its share allows (while it waits, not before its wait ends). */
  #eta(job: Job): Date | null {
    const r = job.record;
    if (!ACTIVE.has(r.status)) return null;
    const now = this.#now();
    const from = Math.max(now, job.waitingUntil ?? now);
    const pacer = this.#pacers.get(r.owner);
    if (!pacer) return job.waitingUntil === null ? null : new Date(from);
    const { perHour, perMinute, minuteMs } = pacer.allowance();
    const left = Math.max(0, r.requestsPlanned - r.requestsDone);
    const perMs = Math.min(perHour / HOUR_MS, perMinute / (minuteMs || MINUTE_MS));
    return new Date(from + Math.ceil(left / perMs));
  }

  #pacer(hash: string): KeyPacer {
    let pacer = this.#pacers.get(hash);
    if (!pacer) {
      pacer = new KeyPacer({ share: this.options.quotaShare, limits: this.deps.limits, quota: this.deps.quota, hash, now: this.#now });
      this.#pacers.set(hash, pacer);
    }
    return pacer;
  }

  async #save(job: Job): Promise<void> {
    job.record.updatedAt = new Date(this.#now()).toISOString();
    if (this.deps.table) {
      // A run that lost its lease writes nothing more: the record is the new runner's.
      if (job.lost) return;
      // The record is Redis's; the shared EXPORT_DIR holds only pages and files.
      await this.#files.prepare(job.record.id);
      await this.#put(job);
    } else await this.#files.writeRecord(job.record.id, job.record);
    for (const listener of job.listeners) listener();
  }

  /**
   * The record into Redis. The runner writes it only while the lease is its own (taking it again if
   * Redis lost it); a record kept while Redis was down, only while no other replica holds the lease.
   * While Redis does not answer the job goes on (its pages are on disk): its record waits in memory
   * and is written when Redis answers again (#flush).
   */
  async #put(job: Job): Promise<'saved' | 'lost' | null> {
    const table = this.deps.table;
    if (!table || job.lost) return 'lost';
    const mode = job.controller ? 'hold' : this.#unsaved.has(job) ? 'free' : 'any';
    const saved = await table.save(job.record, mode);
    if (saved === null) {
      this.#unsaved.add(job);
      this.#flusher ??= setInterval(() => void this.#flush(), table.beatMs);
      this.#flusher.unref();
      return null;
    }
    this.#unsaved.delete(job);
    if (saved === 'lost') {
      // Another replica runs it (or holds it) now: this process's record of it is stale.
      if (job.controller) this.#lose(job);
      else if (mode === 'free')
        this.deps.logger.warn({ export: job.record.id }, 'export job: another replica holds it, its record here dropped');
    }
    return saved;
  }

  /** Writes the records Redis did not take while it was down (in turn, until none is left; one flush at a time). */
  #flush(): Promise<void> {
    this.#flushing ??= this.#flushOnce().finally(() => (this.#flushing = null));
    return this.#flushing;
  }

  async #flushOnce(): Promise<void> {
    for (const job of [...this.#unsaved]) {
      const saved = await this.#put(job);
      if (saved === null) return;
      if (saved === 'saved')
        this.deps.logger.info({ export: job.record.id, status: job.record.status }, 'export job: its record is in Redis again');
    }
    if (this.#unsaved.size === 0 && this.#flusher) {
      clearInterval(this.#flusher);
      this.#flusher = null;
    }
  }

  /** This process runs a job whose lease another replica took: it stops, writing nothing more. */
  #lose(job: Job): void {
    if (job.lost || !job.controller) return;
    this.deps.logger.warn({ export: job.record.id }, 'export job: its lease was lost, stopped here');
    job.lost = true;
    job.stopAs = 'PAUSED';
    job.controller.abort();
  }

  /** A status change: saved, counted, and one log line. */
  async #transition(job: Job, status: ExportStatus): Promise<void> {
    const r = job.record;
    if (r.status === status && status !== 'QUEUED') return;
    r.status = status;
    if (!ACTIVE.has(status)) job.waitingUntil = null;
    this.#metrics.transitions.inc({ status });
    this.deps.logger.info(
      {
        export: r.id,
        status,
        format: r.format,
        rows: this.#view(job).rows,
        requestsDone: r.requestsDone,
        requestsPlanned: r.requestsPlanned,
        ...(r.error ? { code: r.error.code, reason: r.error.message } : {}),
      },
      'export job',
    );
    await this.#save(job);
  }

  #launch(job: Job, keyed: () => UpstreamSession): void {
    const controller = new AbortController();
    job.controller = controller;
    job.keyed = keyed;
    job.stopAs = null;
    job.lost = false;
    const lease = this.#hold(job, controller);
    const run = this.#run(job, controller.signal).finally(async () => {
      if (lease) {
        clearInterval(lease);
        // Its last status is saved: another replica that finds the lease gone reads it.
        await this.deps.table?.release(job.record.id);
      }
      // Unless the job was resumed meanwhile (its status said it was over before this run settled).
      if (job.controller !== controller) return;
      job.controller = null;
      job.keyed = null;
      job.run = null;
    });
    job.run = run;
  }

  /**
   * With a shared table, while the job runs here: renews its lease every beat (a lease lost, taken by
   * another replica after this one stalled, stops the run here, PAUSED; one no process holds, as after
   * Redis restarted empty, is taken again) and stops it when another replica asked (cancelExport there)
   * and this process missed the message.
   */
  #hold(job: Job, controller: AbortController): NodeJS.Timeout | null {
    const table = this.deps.table;
    if (!table) return null;
    const id = job.record.id;
    let beating = false;
    const beat = async (): Promise<void> => {
      if (beating || controller.signal.aborted) return;
      beating = true;
      try {
        const lease = await table.renew(id);
        if (lease === 'lost') return this.#lose(job);
        // Taken again (Redis lost it), or Redis answers again: the record it missed goes in.
        if (lease === 'taken' || (lease === 'held' && this.#unsaved.has(job))) await this.#put(job);
        const asked = await table.asked(id);
        if (asked === 'CANCELLED') await this.#cancelHere(job);
        else if (asked) await this.#stop(job, asked);
      } finally {
        beating = false;
      }
    };
    const timer = setInterval(() => {
      beat().catch((error: unknown) => this.deps.logger.error({ err: error, export: id }, 'export job: its lease could not be renewed'));
    }, table.beatMs);
    timer.unref();
    return timer;
  }

  /** Stops a running job; its status becomes `as` once its pass has ended. */
  async #stop(job: Job, as: ExportStatus): Promise<void> {
    if (job.controller) {
      job.stopAs = as;
      job.controller.abort();
      await job.run;
    } else await this.#transition(job, as);
  }

  /**
   * Runs a job to its end: passes from its checkpoints until one reads every page. A pass that fails
   * is tried again (after the Retry-After, for a rate limit: WAITING; after a back-off, for a fault),
   * up to EXPORT_RETRIES times in a row, then the job is FAILED with the reason, its pages kept.
   */
  async #run(job: Job, signal: AbortSignal): Promise<void> {
    let failures = 0;
    for (;;) {
      try {
        await runPass(this.#host, job, signal);
        return;
      } catch (error) {
        if (signal.aborted) {
          await this.#transition(job, job.stopAs ?? 'PAUSED');
          return;
        }
        const reason = reasonOf(error);
        const limited = reason.code === 'RATE_LIMITED';
        if (PERMANENT.has(reason.code) || (!limited && failures >= this.options.retries)) {
          job.record.error = { code: reason.code, message: reason.message };
          await this.#transition(job, 'FAILED');
          return;
        }
        if (!limited) failures++;
        const waitMs = limited ? Math.max(1, reason.retryAfter ?? 1) * 1000 : Math.min(30_000, 250 * 2 ** failures);
        job.waitingUntil = this.#now() + waitMs;
        this.deps.logger.warn({ export: job.record.id, code: reason.code, reason: reason.message, waitMs }, 'export job: trying again');
        await this.#transition(job, 'WAITING');
        try {
          await delay(waitMs, undefined, { signal });
        } catch {
          await this.#transition(job, job.stopAs ?? 'PAUSED');
          return;
        }
      }
    }
  }

  /**
   * Bytes export jobs take in EXPORT_DIR: with a shared table every replica's jobs (each record's bytes;
   * this process's own runs as it knows them), else this process's (and while Redis does not answer).
   */
  async #used(): Promise<number> {
    const used = new Map([...this.#jobs].map(([id, j]) => [id, j.record.bytes]));
    for (const [id, bytes] of (await this.deps.table?.bytes()) ?? []) if (!this.#jobs.get(id)?.controller) used.set(id, bytes);
    return [...used.values()].reduce((n, bytes) => n + bytes, 0);
  }

  /** Removes jobs over for EXPORT_TTL_MS (finished, or paused and never resumed) with their files. */
  async sweep(): Promise<void> {
    await this.#ready;
    const table = this.deps.table;
    if (table) {
      // Redis expires a record EXPORT_TTL_MS after its last change: its pages and file go with it.
      for (const id of (await table.ids()) ?? []) {
        if ((await table.get(id)) !== null) continue;
        const owner = this.#jobs.get(id)?.record.owner ?? null;
        this.#jobs.delete(id);
        await this.#files.remove(id);
        await table.forget(id, owner);
        this.deps.logger.info({ export: id }, 'export job removed (EXPORT_TTL_MS)');
      }
      // Directories no record names any more (Redis restarted empty, or lost them) and untouched for
      // EXPORT_TTL_MS: no replica will list, resume or serve them again.
      const known = await table.ids();
      if (known !== undefined) {
        const listed = new Set(known);
        const now = this.#now();
        for (const { id, changedMs } of await this.#files.dirs()) {
          const held = this.#jobs.get(id);
          if (listed.has(id) || held?.controller || (held && this.#unsaved.has(held)) || changedMs + this.options.ttlMs > now) continue;
          if ((await table.get(id)) !== null) continue;
          this.#jobs.delete(id);
          await this.#files.remove(id);
          this.deps.logger.info({ export: id }, 'export job directory removed: no record names it (EXPORT_TTL_MS)');
        }
      }
    }
    const now = this.#now();
    for (const job of [...this.#jobs.values()]) {
      const r = job.record;
      if (ACTIVE.has(r.status) || Date.parse(r.updatedAt) + this.options.ttlMs > now) continue;
      this.#jobs.delete(r.id);
      await this.#files.remove(r.id);
      await table?.forget(r.id, r.owner);
      this.deps.logger.info({ export: r.id, status: r.status }, 'export job removed (EXPORT_TTL_MS)');
    }
  }

  /** Stops every running job (they are PAUSED, to be resumed by their key, here or after a restart). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    await this.#ready.catch(() => undefined);
    await Promise.all([...this.#jobs.values()].filter((j) => j.controller).map((j) => this.#stop(j, 'PAUSED')));
    // Their last records, if Redis answers (else each job's lease expires: another replica finds it PAUSED).
    await this.#flush();
    if (this.#flusher) clearInterval(this.#flusher);
    this.#flusher = null;
    this.deps.table?.close();
  }
}
