import { trace, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface Tracing {
  tracer: Tracer;
  /** Flushes and stops the exporter (on shutdown). */
  shutdown(): Promise<void>;
}

/**
 * OpenTelemetry tracing, when an OTLP/HTTP traces endpoint is configured: a span per GraphQL operation
 * and a child span per upstream request. Without one, the API's no-op tracer costs nothing.
 */
export function createTracing(endpoint: string | null, serviceName: string): Tracing {
  if (endpoint === null) return { tracer: trace.getTracer('hyperstudy-graphql'), shutdown: async () => undefined };
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint }))],
  });
  return { tracer: provider.getTracer('hyperstudy-graphql'), shutdown: () => provider.shutdown() };
}
