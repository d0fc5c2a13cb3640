/**
 * A scripted stand-in for the upstream, for scenarios the simulator cannot stage (any number of keys,
 * very large answers): it accepts every key; `GET /api/v3/health` is healthy; `GET /api/v3/experiments/{id}`
 * is an experiment; every other GET under `/api/v3` is a listing of `records` generated records of about
 * `recordBytes` each (the `limit`/`offset` window, with `nextOffset`), streamed so that the stand-in stays
 * small while it sends hundreds of MB. Start it with `startServer(children, name, 'bench/servers/scripted-upstream.ts', options)`
 * and give the gateway `${origin}/api/v3`.
 */
import type { RequestListener, ServerResponse } from 'node:http';

export interface ScriptedUpstreamOptions {
  /** Records in every listing (default 10). */
  records?: number;
  /** Padding per record, in bytes (default 100). */
  recordBytes?: number;
  /** Added before every answer (default 0). */
  latencyMs?: number;
}

const sendJson = (res: ServerResponse, status: number, body: unknown): void => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
};

export default function scriptedUpstream(options: ScriptedUpstreamOptions = {}): RequestListener {
  const total = options.records ?? 10;
  const padding = 'x'.repeat(options.recordBytes ?? 100);
  const latencyMs = options.latencyMs ?? 0;

  const listing = async (res: ServerResponse, path: string, params: URLSearchParams): Promise<void> => {
    const limit = Math.max(1, Number(params.get('limit') ?? 1000) || 1000);
    const offset = Math.max(0, Number(params.get('offset') ?? 0) || 0);
    const end = Math.min(total, offset + limit);
    const pagination = {
      total,
      returned: Math.max(0, end - offset),
      hasMore: end < total,
      limit,
      offset,
      ...(end < total ? { nextOffset: end } : {}),
    };
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    res.write('{"status":"success","data":[');
    for (let i = offset; i < end; i++) {
      const record = {
        id: `rec_${i}`,
        experimentId: 'exp_scripted',
        roomId: 'room_scripted',
        participantId: 'ppt_scripted',
        timestamp: new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString(),
        onset: i * 1000,
        eventType: 'bench.scripted',
        padding,
      };
      // Respect backpressure, so that a slow reader does not pile the whole answer up in memory.
      if (!res.write(`${i > offset ? ',' : ''}${JSON.stringify(record)}`)) await new Promise((resolve) => res.once('drain', resolve));
    }
    res.end(`],"metadata":${JSON.stringify({ dataType: path.split('/')[2] ?? 'data', pagination })}}`);
  };

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream.invalid');
    const path = url.pathname.replace(/^\/api\/v3/, '');
    req.resume();
    setTimeout(() => {
      if (req.method !== 'GET' || !url.pathname.startsWith('/api/v3/')) {
        return sendJson(res, 404, {
          status: 'error',
          error: { code: 'NOT_FOUND', message: 'The stand-in answers GETs under /api/v3', details: {} },
        });
      }
      if (path === '/health') return sendJson(res, 200, { status: 'healthy', version: 'scripted', timestamp: new Date().toISOString() });
      const experiment = /^\/experiments\/([^/]+)$/.exec(path);
      if (experiment)
        return sendJson(res, 200, {
          status: 'success',
          data: [{ id: decodeURIComponent(experiment[1] ?? ''), name: 'Scripted experiment' }],
        });
      listing(res, path, url.searchParams).catch(() => res.destroy());
    }, latencyMs);
  };
}
