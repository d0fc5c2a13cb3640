import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useDeferStream } from '@graphql-yoga/plugin-defer-stream';
import type { Tracer } from '@opentelemetry/api';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config.ts';
import { useContentTypeHints } from '../http/content-type.ts';
import { useCors } from '../http/cors.ts';
import { EXAMPLE_QUERY } from '../http/example-query.ts';
import { useExportDownload } from '../http/export-download.ts';
import type { ExportJobs } from '../exports/types.ts';
import { useGraphiqlPage } from '../http/graphiql.ts';
import { useMetricsEndpoint } from '../http/metrics-endpoint.ts';
import { useReadiness, type Readiness } from '../http/readiness.ts';
import type { Metrics } from '../observability.ts';
import type { GatewayContext } from '../schema/builder.ts';
import { useAliasLimits } from './use-alias-limits.ts';
import { useJit } from './use-jit.ts';
import { useJsonAnswer } from './use-json-answer.ts';
import { useLimitErrors } from './use-limit-errors.ts';
import { useListLimits } from './use-list-limits.ts';
import { useLiveStatus } from './use-live-status.ts';
import { useNoIntrospection } from './use-no-introspection.ts';
import { useOperationReport } from './use-operation-report.ts';
import { useOrganizationHeader } from './use-organization-header.ts';
import { useRequireApiKey } from './use-require-api-key.ts';
import { useTables } from './use-tables.ts';
import { useTrustedDocuments } from './use-trusted-documents.ts';
import { useUpstreamBudget } from './use-upstream-budget.ts';
import { useUpstreamResult } from './use-upstream-result.ts';

export interface PluginParts {
  metrics: Metrics;
  logger: Logger;
  tracer: Tracer;
  readiness: Readiness;
  /** The allow-list of operations (TRUSTED_DOCUMENTS), or null. */
  trusted: Map<string, string> | null;
  /** Export jobs, whose files are downloaded at /exports/<id>/file. */
  exports: ExportJobs;
  /** In a worker of WORKERS > 1: what /metrics serves, gathered from every worker. */
  renderMetrics?: () => Promise<string>;
}

/** The gateway's Yoga plugins, in the order they must run (each says why where it matters). */
export function gatewayPlugins(
  config: GatewayConfig,
  { metrics, logger, tracer, readiness, trusted, exports, renderMetrics }: PluginParts,
): Plugin<GatewayContext>[] {
  return [
    ...(config.graphiql
      ? [
          useGraphiqlPage({
            endpoint: '/graphql',
            // GraphiQL with its assets inlined: it works without reaching a CDN (firewalls, strict CSP).
            // Its renderer (9 MB of assets) loads on the first visit, not with every process.
            render: async () =>
              (await import('@graphql-yoga/render-graphiql')).renderGraphiQL({
                title: 'HyperStudy GraphQL',
                defaultQuery: EXAMPLE_QUERY,
                headers: JSON.stringify({ 'X-API-Key': config.graphiqlExampleKey ?? 'paste your HyperStudy API key here' }, null, 2),
              }),
          }),
        ]
      : []),
    ...(config.cors === null
      ? []
      : [
          useCors({
            origins: config.cors.origins,
            allowedHeaders: [
              'content-type',
              'x-api-key',
              'authorization',
              'x-request-id',
              'x-organization-id',
              'x-explain-plan',
              'x-dry-run',
            ],
            // A table's client reads when a refused table would fit, and the file name the table comes under.
            exposedHeaders: ['x-request-id', 'retry-after', 'content-disposition'],
          }),
        ]),
    // After Yoga's own result processors, whose JSON answer it writes in pieces (same bytes).
    useJsonAnswer(),
    useMetricsEndpoint({ registry: metrics.registry, render: renderMetrics }),
    useReadiness({ readiness }),
    useExportDownload(exports),
    useContentTypeHints(),
    ...(trusted ? [useTrustedDocuments(trusted)] : []),
    EnvelopArmorPlugin({
      maxDepth: { n: config.limits.depth },
      // Aliases are counted per root field and at the root apart (use-alias-limits.ts).
      maxAliases: { enabled: false },
      maxTokens: { n: config.limits.tokens },
      maxDirectives: { n: config.limits.directives },
      // graphql-armor's cost grows 1.5× a level, which no Relay graph fits; the cost limit here is the
      // upstream-request estimate against UPSTREAM_BUDGET (useUpstreamBudget).
      costLimit: { enabled: false },
      // With introspection off, useNoIntrospection takes suggestions out of every error (graphql-armor's
      // covers validation only, and leaves a marker saying that a near name exists).
      blockFieldSuggestion: { enabled: false },
    }),
    useAliasLimits({ aliases: config.limits.aliases, rootAliases: config.limits.rootAliases }),
    useLimitErrors(),
    // @defer and @stream, over multipart HTTP and SSE; deferred parts are planned with the rest (planner.ts).
    useDeferStream(),
    ...(config.graphqlJit ? [useJit({ onCompile: (ms, ok) => metrics.compiled(ok, ms / 1000) })] : []),
    // After graphql-jit: a table's execution replaces the operation's (src/tables).
    useTables({ ...config.tables, ahead: config.pageConcurrency, quotaGuard: config.quota !== null, registry: metrics.registry }),
    ...(config.introspection ? [] : [useNoIntrospection()]),
    // Maps upstream errors before the report sees them; both before the refusals below, so that
    // refused operations are reported too.
    useUpstreamResult(),
    useLiveStatus(),
    useOperationReport(metrics, logger, tracer, { logSampleRate: config.logSampleRate }),
    // Before anything runs or coerces the variables: refused lists cost no upstream request and no CPU.
    useListLimits({ listItems: config.limits.listItems, lookups: config.limits.lookups }),
    useRequireApiKey(),
    useOrganizationHeader(),
    useUpstreamBudget(config.budget, () => metrics.upstream.budgetRefused('before')),
  ] as Plugin<GatewayContext>[];
}
