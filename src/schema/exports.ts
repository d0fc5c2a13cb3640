import { gatewayError } from '../errors.ts';
import { EXPORT_STATUSES, type ExportJobView } from '../exports/types.ts';
import { TABLE_FORMATS, type TableFormat } from '../tables/formats.ts';
import { builder } from './builder.ts';

const FORMATS = Object.keys(TABLE_FORMATS).map((f) => f.toUpperCase()) as Uppercase<TableFormat>[];

const ExportFormat = builder.enumType('ExportFormat', {
  description:
    "An export's file format: the table formats of `/graphql` (CSV with a header row, TSV, NDJSON, Parquet, the Arrow IPC stream).",
  values: FORMATS,
});

const ExportStatus = builder.enumType('ExportStatus', {
  description:
    'QUEUED (accepted), RUNNING (reading pages), WAITING (for its share of the quota, or a Retry-After: see eta), PAUSED (its process stopped, ' +
    'or it ran out of retries at a page and may be resumed), SUCCEEDED (its file is at downloadUrl), FAILED (see error), CANCELLED.',
  values: EXPORT_STATUSES,
});

const ExportError = builder.objectRef<{ code: string; message: string }>('ExportError').implement({
  description: 'Why a job failed: an error code of the catalogue (docs/errors.md) and its message.',
  fields: (t) => ({
    code: t.exposeString('code'),
    message: t.exposeString('message'),
  }),
});

const ExportJob = builder.objectRef<ExportJobView>('ExportJob').implement({
  description:
    "A table pulled in the background within a share of the key's quota (EXPORT_QUOTA_SHARE), each page on disk before it counts, " +
    'its file assembled at the end and downloaded from downloadUrl with the same key. Only its key sees it.',
  fields: (t) => ({
    id: t.exposeID('id'),
    status: t.field({ type: ExportStatus, resolve: (j) => j.status }),
    format: t.field({ type: ExportFormat, resolve: (j) => j.format.toUpperCase() as Uppercase<TableFormat> }),
    rows: t.exposeInt('rows', { description: 'Rows on disk so far (all of them once SUCCEEDED).' }),
    requestsPlanned: t.exposeInt('requestsPlanned', {
      description: 'Upstream requests the job will have sent when it ends, as planned (0 until its first pages are read).',
    }),
    requestsDone: t.exposeInt('requestsDone', { description: 'Upstream requests the job has sent, retries included.' }),
    eta: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'While it goes on: when it should end at the pace its share allows (while WAITING, not before the wait ends).',
      resolve: (j) => j.eta,
    }),
    downloadUrl: t.string({
      nullable: true,
      description: "Once SUCCEEDED: the file's path on this gateway, fetched with the same key (Range requests welcome).",
      resolve: (j) => j.downloadUrl,
    }),
    watermark: t.string({
      nullable: true,
      description:
        "Once SUCCEEDED, when the rows are a data listing's records: where an incremental pull of the same query takes up (give it as startExport's since). Opaque.",
      resolve: (j) => j.watermark,
    }),
    error: t.field({ type: ExportError, nullable: true, resolve: (j) => j.error }),
    createdAt: t.field({ type: 'DateTime', resolve: (j) => j.createdAt }),
    updatedAt: t.field({ type: 'DateTime', resolve: (j) => j.updatedAt }),
  }),
});

const formatOf = (format: string): TableFormat => format.toLowerCase() as TableFormat;

builder.queryFields((t) => ({
  exportJob: t.field({
    type: ExportJob,
    nullable: true,
    description: "One of this key's export jobs (null for another key's, or an unknown id).",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.exports.get(ctx.session, String(id)),
  }),
  exportJobs: t.field({
    type: [ExportJob],
    description: "This key's export jobs, oldest first (finished ones until EXPORT_TTL_MS after they end).",
    resolve: (_root, _args, ctx) => ctx.exports.list(ctx.session),
  }),
}));

builder.mutationFields((t) => ({
  startExport: t.field({
    type: ExportJob,
    description:
      'Starts a job pulling the query as a table (the rules of tables: @table, columns, every record), validated and checked ' +
      'before any upstream request (BAD_USER_INPUT). It runs paced within EXPORT_QUOTA_SHARE of the key’s limits; follow it with ' +
      'exportProgress or exportJob, then download its file.',
    args: {
      query: t.arg.string({ required: true }),
      variables: t.arg({ type: 'JSON' }),
      operationName: t.arg.string(),
      format: t.arg({ type: ExportFormat, required: true }),
      since: t.arg.string({
        description:
          "The watermark of a SUCCEEDED job of the same query and variables: only the records newer than it (the pages of what is new). BAD_USER_INPUT for another export's watermark, or rows that are no data listing's records.",
      }),
    },
    resolve: (_root, args, ctx) => {
      const variables = args.variables ?? null;
      if (variables !== null && (typeof variables !== 'object' || Array.isArray(variables))) {
        throw gatewayError('BAD_USER_INPUT', "'variables' must be an object", { extensions: { argument: 'variables' } });
      }
      return ctx.exports.start(ctx.session, {
        query: args.query,
        variables: variables as Record<string, unknown> | null,
        operationName: args.operationName ?? null,
        format: formatOf(args.format),
        since: args.since ?? null,
      });
    },
  }),
  cancelExport: t.field({
    type: ExportJob,
    nullable: true,
    description: "Cancels one of this key's jobs (its pages are removed); null for another key's.",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.exports.cancel(ctx.session, String(id)),
  }),
  resumeExport: t.field({
    type: ExportJob,
    nullable: true,
    description: "Resumes one of this key's PAUSED or FAILED jobs from its pages on disk (none is read again); null for another key's.",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.exports.resume(ctx.session, String(id)),
  }),
}));

builder.subscriptionFields((t) => ({
  exportProgress: t.field({
    type: ExportJob,
    description: "One of this key's export jobs as it changes, until it ends (or is PAUSED).",
    args: { id: t.arg.id({ required: true }) },
    subscribe: async (_root, { id }, ctx) => {
      const changes = await ctx.exports.progress(ctx.session, String(id), ctx.live.signal);
      if (!changes) throw gatewayError('NOT_FOUND', `No export job ${String(id)} of this key`, { extensions: { id: String(id) } });
      return changes;
    },
    resolve: (job: ExportJobView) => job,
  }),
}));
