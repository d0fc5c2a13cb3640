import type { Plugin } from 'graphql-yoga';
import type { Registry } from 'prom-client';

export interface MetricsEndpointOptions {
  registry: Registry;
  /** Where Prometheus scrapes (default `/metrics`). */
  path?: string;
  /** Renders the text instead of the registry (a worker of several serves every worker's metrics). */
  render?: () => Promise<string>;
}

/** Serves the registry's metrics in the Prometheus text format on `GET <path>`. */
export function useMetricsEndpoint({ registry, path = '/metrics', render }: MetricsEndpointOptions): Plugin {
  return {
    onRequest({ request, url, endResponse, fetchAPI }) {
      if (url.pathname !== path || request.method !== 'GET') return;
      return (render ?? (() => registry.metrics()))().then((text) =>
        endResponse(new fetchAPI.Response(text, { status: 200, headers: { 'content-type': registry.contentType } })),
      );
    },
  };
}
