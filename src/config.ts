import { z } from 'zod';

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** Every environment variable the gateway reads, with its default and meaning (the README's table). */
export const configSchema = z.object({
  HYPERSTUDY_API_URL: z.url().default('https://api.hyperstudy.io/api/v3').describe('Upstream base URL, including /api/v3'),
  PORT: z.coerce.number().int().min(0).max(65_535).default(4000).describe('Port the gateway listens on'),
  HOST: z.string().min(1).default('0.0.0.0').describe('Interface the gateway listens on'),
  UPSTREAM_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000).describe('Connect, header and body timeout of one upstream request, in ms'),
  UPSTREAM_CONNECTIONS: z.coerce.number().int().min(1).max(1024).default(32).describe('Keep-alive connections the gateway opens to the upstream'),
  UPSTREAM_PAGE_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(6).describe('Pages of one listing fetched from the upstream at once'),
  DEFAULT_PAGE_SIZE: z.coerce.number().int().min(1).max(1000).default(100).describe('Edges a connection returns when neither first nor last is given'),
  GRAPHIQL: bool.default(true).describe('Serve GraphiQL at /graphql to browsers'),
});

export type GatewayConfig = {
  apiUrl: string;
  port: number;
  host: string;
  upstreamTimeoutMs: number;
  upstreamConnections: number;
  pageConcurrency: number;
  defaultPageSize: number;
  graphiql: boolean;
};

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
      const description = configSchema.shape[name as keyof typeof configSchema.shape]?.description ?? '';
      return `${name}: ${issue.message} (${description})`;
    });
    throw new ConfigError(`Invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const c = parsed.data;
  return {
    apiUrl: c.HYPERSTUDY_API_URL.replace(/\/+$/, ''),
    port: c.PORT,
    host: c.HOST,
    upstreamTimeoutMs: c.UPSTREAM_TIMEOUT_MS,
    upstreamConnections: c.UPSTREAM_CONNECTIONS,
    pageConcurrency: c.UPSTREAM_PAGE_CONCURRENCY,
    defaultPageSize: c.DEFAULT_PAGE_SIZE,
    graphiql: c.GRAPHIQL,
  };
}
