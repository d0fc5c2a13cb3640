import type { NodeHandler } from './node.ts';

export const WORKER_HEADER = 'x-worker';

/** Names the worker process that answered (WORKERS > 1) in every response's `X-Worker`. */
export function withWorkerId(id: string, next: NodeHandler): NodeHandler {
  return (req, res) => {
    res.setHeader(WORKER_HEADER, id);
    next(req, res);
  };
}
