/**
 * Conditional requests on a representation with an ETag (RFC 9110 §13): what GraphiQL's page and an
 * export's file answer to `If-None-Match` and `If-Match`.
 */

const tags = (header: string): string[] => header.split(',').map((tag) => tag.trim());

/** Whether `If-None-Match` names the ETag (weak comparison, as RFC 9110 has it for GET): 304. */
export function notModified(ifNoneMatch: string | null, etag: string): boolean {
  if (ifNoneMatch === null) return false;
  return tags(ifNoneMatch).some((t) => t === '*' || t.replace(/^W\//, '') === etag);
}

/** Whether `If-Match` fails for the ETag (strong comparison: a weak tag never matches): 412. */
export function preconditionFailed(ifMatch: string | null, etag: string): boolean {
  if (ifMatch === null) return false;
  return !tags(ifMatch).some((t) => t === '*' || t === etag);
}
