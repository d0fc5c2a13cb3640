import type { Envelope } from '../upstream/client.ts';
import { UpstreamError } from '../upstream/errors.ts';
import type { GatewayContext } from './builder.ts';
import { writeError } from './errors.ts';
import type { Rec } from '../upstream/values.ts';

/**
 * Sends a write once — writes are never retried, so a lost answer is reported, not repeated — and
 * reports a failure with its outcome (NOT_APPLIED or UNKNOWN) in `extensions.outcome`.
 */
export async function write(ctx: GatewayContext, req: Parameters<GatewayContext['session']['send']>[0], what: string): Promise<Envelope> {
  try {
    return await ctx.session.send(req);
  } catch (error) {
    throw error instanceof UpstreamError ? writeError(error, what) : error;
  }
}

/** The fields a caller gave (GraphQL leaves the others undefined), as an upstream body. */
export function given(input: object, dropNull = false): Rec {
  const body: Rec = {};
  for (const [name, value] of Object.entries(input)) {
    if (value === undefined || (dropNull && value === null)) continue;
    body[name] = value instanceof Date ? value.toISOString() : value;
  }
  return body;
}
