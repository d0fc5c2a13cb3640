import type { TableFormat } from '../tables/formats.ts';
import type { UpstreamSession } from '../upstream/session.ts';

export const EXPORT_STATUSES = ['QUEUED', 'RUNNING', 'WAITING', 'PAUSED', 'SUCCEEDED', 'FAILED', 'CANCELLED'] as const;
export type ExportStatus = (typeof EXPORT_STATUSES)[number];

/** Statuses of a job that is going on (it holds its key in memory and counts against the caps). */
export const ACTIVE: ReadonlySet<ExportStatus> = new Set(['QUEUED', 'RUNNING', 'WAITING']);
/** Statuses of a job that is over: its file (if any) is kept for EXPORT_TTL_MS. */
export const FINISHED: ReadonlySet<ExportStatus> = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

/** A job as it is kept on disk (job.json), or with REDIS_URL in Redis: never its key, only the key's hash (its owner). */
export interface JobRecord {
  id: string;
  owner: string;
  organizationId: string | null;
  query: string;
  variables: Record<string, unknown> | null;
  operationName: string | null;
  format: TableFormat;
  since: string | null;
  status: ExportStatus;
  /** Rows of each page on disk (and, once assembled, of the file). */
  pageRows: Record<string, number>;
  requestsPlanned: number;
  requestsDone: number;
  watermark: string | null;
  error: { code: string; message: string } | null;
  createdAt: string;
  updatedAt: string;
  /** The assembled file. */
  file: { bytes: number; etag: string } | null;
  /** Bytes of the job's pages and file on disk. */
  bytes: number;
  /**
   * A digest of the listings its row list is read from (the plan's reads, in order): a resume whose plan
   * reads others (the experiment gained a room, say) cannot go on from the pages on disk.
   */
  plan?: string;
}

/** A job as the API shows it (`ExportJob`). */
export interface ExportJobView {
  id: string;
  status: ExportStatus;
  format: TableFormat;
  rows: number;
  requestsPlanned: number;
  requestsDone: number;
  eta: Date | null;
  downloadUrl: string | null;
  watermark: string | null;
  error: { code: string; message: string } | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface ExportStart {
  query: string;
  variables: Record<string, unknown> | null;
  operationName: string | null;
  format: TableFormat;
  since: string | null;
}

/** A finished job's file, for its download. */
export interface ExportFile {
  path: string;
  bytes: number;
  etag: string;
  /** Its Content-Type (the format's media type, with a charset for the text formats). */
  mediaType: string;
  fileName: string;
  modified: Date;
}

/**
 * Export jobs as the resolvers and the download see them: each call names the caller by its session
 * (the key stays inside it), and a job of another key is as if it did not exist (null).
 */
export interface ExportJobs {
  start(session: UpstreamSession, input: ExportStart): Promise<ExportJobView>;
  cancel(session: UpstreamSession, id: string): Promise<ExportJobView | null>;
  resume(session: UpstreamSession, id: string): Promise<ExportJobView | null>;
  get(session: UpstreamSession, id: string): Promise<ExportJobView | null>;
  list(session: UpstreamSession): Promise<ExportJobView[]>;
  /** The job as it changes, until it is over (the first item is the job as it is). */
  progress(session: UpstreamSession, id: string, signal: AbortSignal): Promise<AsyncIterable<ExportJobView> | null>;
  /** A finished job's file for the owner of `hash` (the download's key). */
  file(hash: string, id: string): Promise<ExportFile | null>;
}
