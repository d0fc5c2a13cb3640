import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { Plugin } from 'graphql-yoga';
import type { ExportJobs } from '../exports/types.ts';
import { keyHash } from '../state/shared-reads.ts';
import { apiKeyOf } from './caller.ts';
import { notModified, preconditionFailed } from './conditional.ts';

const PATH = /^\/exports\/([A-Za-z0-9_]+)\/file$/;

/** A `Range: bytes=…` header's one range within `size` bytes: inclusive start and end; null when unsatisfiable; undefined when absent or not one plain range. */
export function byteRange(header: string | null, size: number): { start: number; end: number } | null | undefined {
  if (header === null) return undefined;
  // The unit's name is case-insensitive (RFC 9110 §14.1).
  const match = /^bytes=(\d*)-(\d*)$/i.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  const [, from = '', to = ''] = match;
  if (from === '') {
    const suffix = Number(to);
    if (suffix === 0 || size === 0) return null;
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(from);
  if (start >= size) return null;
  const end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  return end < start ? undefined : { start, end };
}

const json = (R: typeof Response, status: number, code: string, message: string, headers: Record<string, string> = {}) =>
  new R(JSON.stringify({ errors: [{ message, extensions: { code } }] }), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });

/**
 * An export job's file at its downloadUrl (`GET /exports/<id>/file`), for the key that started it: the
 * format's media type, Content-Length, a strong ETag, a Content-Disposition file name, and single byte
 * ranges (206; 416 past the end; If-Range honoured) so that a large download resumes. Any other key, or
 * a job without a file, is 404 — the same answer as an unknown id.
 */
export function useExportDownload(exports: ExportJobs): Plugin {
  return {
    async onRequest({ request, url, endResponse, fetchAPI }) {
      const R = fetchAPI.Response;
      const match = PATH.exec(url.pathname);
      if (!match) return;
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        return endResponse(new R(null, { status: 405, headers: { allow: 'GET, HEAD' } }));
      }
      const key = apiKeyOf(request.headers);
      if (key === null) return endResponse(json(R, 401, 'UNAUTHENTICATED', 'An API key is required: send the key that started the export'));
      const file = await exports.file(keyHash(key), match[1] ?? '');
      // A file removed meanwhile (EXPORT_TTL_MS) is as if it never was.
      const present = file && (await stat(file.path).catch(() => null));
      if (!file || !present) return endResponse(json(R, 404, 'NOT_FOUND', 'No export file of this key at this path'));
      const headers: Record<string, string> = {
        'content-type': file.mediaType,
        etag: file.etag,
        'last-modified': file.modified.toUTCString(),
        'accept-ranges': 'bytes',
        'content-disposition': `attachment; filename="${file.fileName}"`,
        'cache-control': 'private, no-store',
        'x-content-type-options': 'nosniff',
      };
      if (preconditionFailed(request.headers.get('if-match'), file.etag)) {
        return endResponse(json(R, 412, 'BAD_REQUEST', 'If-Match names no ETag this file has (it was written again)'));
      }
      if (notModified(request.headers.get('if-none-match'), file.etag)) return endResponse(new R(null, { status: 304, headers }));
      const ifRange = request.headers.get('if-range');
      const range = ifRange === null || ifRange === file.etag ? byteRange(request.headers.get('range'), file.bytes) : undefined;
      if (range === null) {
        return endResponse(json(R, 416, 'BAD_REQUEST', 'The range lies outside the file', { 'content-range': `bytes */${file.bytes}` }));
      }
      const { start, end } = range ?? { start: 0, end: file.bytes - 1 };
      const length = Math.max(0, end - start + 1);
      headers['content-length'] = String(length);
      if (range) headers['content-range'] = `bytes ${start}-${end}/${file.bytes}`;
      const body =
        request.method === 'HEAD' || length === 0
          ? null
          : (Readable.toWeb(createReadStream(file.path, { start, end })) as unknown as ReadableStream<Uint8Array>);
      endResponse(new R(body, { status: range ? 206 : 200, headers }));
    },
  };
}
