import type { Server } from 'node:http';
import type { NodeHandler } from './node.ts';

/**
 * Counts the requests being answered, so that shutdown can let them finish: `close` stops accepting,
 * waits up to `graceMs` for the in-flight ones, then closes every connection. Resolves whether they
 * all finished in time.
 */
export function createDrain() {
  let active = 0;
  let idle: (() => void) | null = null;
  return {
    track(next: NodeHandler): NodeHandler {
      return (req, res) => {
        active++;
        res.once('close', () => {
          active--;
          if (active === 0) idle?.();
        });
        next(req, res);
      };
    },
    get active(): number {
      return active;
    },
    async close(server: Server, graceMs: number): Promise<boolean> {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let drained = true;
      if (active > 0) {
        drained = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), graceMs);
          idle = () => {
            clearTimeout(timer);
            resolve(true);
          };
        });
      }
      server.closeAllConnections();
      await closed;
      return drained;
    },
  };
}
