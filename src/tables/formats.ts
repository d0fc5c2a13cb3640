/**
 * The table formats `/graphql` answers besides JSON, and how a request asks for one: the `format`
 * query-string parameter (for clients that cannot set headers), else its `Accept` header.
 */
export const TABLE_FORMATS = {
  csv: { mediaType: 'text/csv', extension: 'csv' },
  tsv: { mediaType: 'text/tab-separated-values', extension: 'tsv' },
  ndjson: { mediaType: 'application/x-ndjson', extension: 'ndjson' },
  parquet: { mediaType: 'application/vnd.apache.parquet', extension: 'parquet' },
  arrow: { mediaType: 'application/vnd.apache.arrow.stream', extension: 'arrows' },
} as const;

export type TableFormat = keyof typeof TABLE_FORMATS;

/** A table's Content-Type: the format's media type, with the charset (and CSV/TSV's header row) said for the text formats. */
export function contentTypeOf(format: TableFormat): string {
  const text = format === 'csv' || format === 'tsv';
  return `${TABLE_FORMATS[format].mediaType}${text ? '; charset=utf-8; header=present' : format === 'ndjson' ? '; charset=utf-8' : ''}`;
}

export const isTableFormat = (name: string): name is TableFormat => Object.hasOwn(TABLE_FORMATS, name);

/** What Yoga itself answers (JSON, GraphQL over HTTP's JSON, multipart for @defer/@stream, SSE). */
const YOGA_MEDIA_TYPES = ['application/json', 'application/graphql-response+json', 'multipart/mixed', 'text/event-stream'];

/** What a request asks for: a table format, the usual answer, a `format` the gateway does not know, or nothing it can serve. */
export type Negotiated =
  | { kind: 'table'; format: TableFormat }
  | { kind: 'graphql' }
  | { kind: 'unknown-format'; format: string }
  | { kind: 'not-acceptable'; acceptable: string[] };

/** The media types of an Accept header in the order given (as Yoga reads them: parameters other than a UTF-8 charset skip the entry, q=0 refuses it). */
function acceptedTypes(accept: string): string[] {
  const types: string[] = [];
  for (const entry of accept.replace(/\s/g, '').toLowerCase().split(',')) {
    const [type, ...params] = entry.split(';');
    if (!type) continue;
    const charset = params.find((p) => p.startsWith('charset='));
    if (charset !== undefined && charset !== 'charset=utf-8') continue;
    if (params.some((p) => /^q=0(\.0*)?$/.test(p))) continue;
    types.push(type);
  }
  return types;
}

const matches = (asked: string, offered: string): boolean => {
  const [askedType, askedSub] = asked.split('/');
  const [type, sub] = offered.split('/');
  return (askedType === '*' || askedType === type) && (askedSub === '*' || askedSub === sub);
};

/**
 * The answer a `/graphql` request asks for. `format=` wins over Accept; in Accept, the first type the
 * gateway serves wins, and only a table's own media type asks for a table (a wildcard keeps JSON, the
 * default). `format=json` asks for the usual answer.
 */
export function negotiate(url: URL, accept: string | null): Negotiated {
  const format = url.searchParams.get('format');
  if (format !== null) {
    const name = format.trim().toLowerCase();
    if (name === 'json') return { kind: 'graphql' };
    return isTableFormat(name) ? { kind: 'table', format: name } : { kind: 'unknown-format', format };
  }
  const asked = acceptedTypes(accept ?? '*/*');
  if (asked.length === 0) return { kind: 'graphql' };
  for (const type of asked) {
    const table = Object.entries(TABLE_FORMATS).find(([, f]) => f.mediaType === type);
    if (table) return { kind: 'table', format: table[0] as TableFormat };
    if (YOGA_MEDIA_TYPES.some((offered) => matches(type, offered))) return { kind: 'graphql' };
  }
  return { kind: 'not-acceptable', acceptable: [...YOGA_MEDIA_TYPES, ...Object.values(TABLE_FORMATS).map((f) => f.mediaType)] };
}
