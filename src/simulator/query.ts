import { ApiFailure, invalidParameter } from './errors.ts';
import type { Json, JsonObject, Stored } from './model.ts';
import { acceptedParams, FORMATS, KNOWN_PARAMS, type DataTypeSpec, type ListingType, type ParamSpec, type Scope } from './spec.ts';
import { participantKey, type DataStore } from './store.ts';

export type Format = (typeof FORMATS)[number];
export type ParamValue = string | boolean | number;

export interface DataQuery {
  startTime: number | null;
  endTime: number | null;
  limit: number;
  offset: number;
  sort: string;
  order: 'asc' | 'desc';
  format: Format;
  deploymentId: string | null;
  roomId: string | null;
  filters: Record<string, ParamValue>;
  /** Whether the sort is by the type's own instant, the order the indexes keep. */
  byTime: boolean;
  /** The query as the envelope's `metadata.query` echoes it. */
  echo: JsonObject;
}

function parseInstant(name: string, value: string | null): number | null {
  if (value === null) return null;
  // ISO 8601: a date, optionally with a time and zone. Date.parse alone accepts too much.
  const ok = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(value);
  const ms = ok ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) throw invalidParameter(name, value, 'ISO 8601 timestamp');
  return ms;
}

function parseInteger(name: string, value: string | null, fallback: number, min: number, max: number): number {
  if (value === null) return fallback;
  const n = /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw invalidParameter(name, value, max === Number.MAX_SAFE_INTEGER ? `integer >= ${min}` : `integer between ${min} and ${max}`);
  }
  return n;
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw invalidParameter(name, value, `one of ${allowed.join(', ')}`);
  return value as T;
}

/** The longest open string value accepted. */
const MAX_TEXT = 200;

/** Validates one type-specific parameter's value by its kind. */
export function parseParam(param: ParamSpec, value: string): ParamValue {
  if (value === '') throw invalidParameter(param.name, value, 'a non-empty value');
  switch (param.kind) {
    case 'enum':
      return oneOf(param.name, value, param.values);
    case 'bool':
      return oneOf(param.name, value, ['true', 'false'] as const) === 'true';
    case 'int':
      return parseInteger(param.name, value, 0, param.min, param.max);
    case 'string':
      if (value.length > MAX_TEXT) throw invalidParameter(param.name, value, `a string of at most ${MAX_TEXT} characters`);
      return value;
  }
}

/**
 * Checks the parameter names of a data request: each given once, and none that another data type takes
 * but this one does not (names no data type knows are ignored, as the upstream ignores them).
 */
export function checkParamNames(spec: DataTypeSpec, scope: Scope, params: URLSearchParams): void {
  const accepted = acceptedParams(spec, scope);
  for (const name of new Set(params.keys())) {
    if (params.getAll(name).length > 1) throw invalidParameter(name, params.getAll(name).join(','), 'a single value');
    if (KNOWN_PARAMS.has(name) && !accepted.includes(name)) {
      throw new ApiFailure(400, 'INVALID_PARAMETER', `Parameter '${name}' is not supported for ${spec.path}`, {
        parameter: name,
        value: params.get(name) ?? '',
        expected: accepted.length === 0 ? 'no parameters' : `one of ${accepted.join(', ')}`,
      });
    }
  }
}

/** A participant scope names its room; a 400 without it. */
export function requireRoomId(scope: Scope, params: URLSearchParams): string | null {
  const roomId = params.get('roomId');
  if (scope === 'participant' && (roomId === null || roomId === '')) {
    throw new ApiFailure(400, 'INVALID_PARAMETER', 'roomId is required for participant scope', {
      parameter: 'roomId',
      value: roomId ?? '',
      expected: 'the id of the room the participant joined',
    });
  }
  return roomId;
}

/** The type-specific parameters given (defaults filled in where the spec has them). */
export function parseOwnParams(spec: DataTypeSpec, params: URLSearchParams): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const param of spec.params) {
    const value = params.get(param.name);
    if (value !== null) out[param.name] = parseParam(param, value);
    else if ((param.kind === 'int' || param.kind === 'bool') && param.default !== undefined) out[param.name] = param.default;
  }
  return out;
}

/** Validates a listing's query string; every bad value is a 400. */
export function parseDataQuery(spec: DataTypeSpec, scope: Scope, params: URLSearchParams): DataQuery {
  checkParamNames(spec, scope, params);
  const get = (name: string): string | null => params.get(name);
  const startTime = parseInstant('startTime', get('startTime'));
  const endTime = parseInstant('endTime', get('endTime'));
  if (startTime !== null && endTime !== null && startTime > endTime) {
    throw invalidParameter('endTime', get('endTime') ?? '', 'a timestamp not before startTime');
  }
  const maxLimit = spec.maxLimit ?? 1;
  const limit = parseInteger('limit', get('limit'), Math.min(1000, maxLimit), 1, maxLimit);
  const offset = parseInteger('offset', get('offset'), 0, 0, Number.MAX_SAFE_INTEGER);
  const sortValue = get('sort');
  const sort = sortValue === null ? spec.defaultSort : oneOf('sort', sortValue, ['timestamp', ...spec.sorts]);
  const order = oneOf('order', get('order') ?? 'asc', ['asc', 'desc'] as const);
  const format = oneOf('format', get('format') ?? 'json', FORMATS);
  const roomId = requireRoomId(scope, params);
  const filters = parseOwnParams(spec, params);
  const deploymentId = get('deploymentId');
  const echo: JsonObject = {
    startTime: get('startTime'),
    endTime: get('endTime'),
    ...Object.fromEntries(spec.params.map((p) => [p.name, filters[p.name] ?? null])),
    ...(deploymentId === null ? {} : { deploymentId }),
    ...(scope === 'participant' ? { roomId } : {}),
    limit,
    offset,
    sort,
    order,
  };
  const byTime = sort === 'timestamp' || sort === spec.timeField;
  return { startTime, endTime, limit, offset, sort, order, format, deploymentId, roomId, filters, byTime, echo };
}

/** The records of one scope, in (time, seq) order (none for an unknown scope id; callers check ids first). */
export function scopedRecords(store: DataStore, type: ListingType, scope: Scope, scopeId: string, roomId: string | null): Stored[] {
  const index = store.index(type);
  if (scope === 'experiment') return index.byExperiment.get(scopeId) ?? [];
  if (scope === 'room') return index.byRoom.get(scopeId) ?? [];
  return index.byParticipant.get(participantKey(roomId ?? '', scopeId)) ?? [];
}

function compareValues(a: Json | undefined, b: Json | undefined): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1; // nulls last
  if (b === null || b === undefined) return -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

function aggregate(records: Stored[], windowMs: number): Stored[] {
  const groups = new Map<string, Stored[]>();
  for (const s of records) {
    const key = `${participantKey(s.roomId, s.participantId ?? '')}\u0000${Math.floor(s.time / windowMs)}`;
    const list = groups.get(key);
    if (list) list.push(s);
    else groups.set(key, [s]);
  }
  const mean = (list: Stored[], field: string): number =>
    Math.round((list.reduce((sum, s) => sum + Number(s.record[field] ?? 0), 0) / list.length) * 1000) / 1000;
  const out: Stored[] = [];
  for (const list of groups.values()) {
    const first = list[0];
    if (!first) continue;
    const windowStart = Math.floor(first.time / windowMs) * windowMs;
    out.push({
      ...first,
      time: windowStart,
      record: {
        participantId: first.participantId,
        experimentId: first.experimentId,
        roomId: first.roomId,
        timestamp: new Date(windowStart).toISOString(),
        onset: first.record.onset ?? null,
        aggregationWindow: windowMs,
        sampleCount: list.length,
        timeDrift: mean(list, 'timeDrift'),
        playbackRate: mean(list, 'playbackRate'),
        syncQuality: mean(list, 'syncQuality'),
        latency: mean(list, 'latency'),
      },
    });
  }
  return out.sort((a, b) => a.time - b.time || a.seq - b.seq);
}

/** Filters, sorts and pages a scope's records; `total` counts the matches before paging. */
export function runDataQuery(records: Stored[], query: DataQuery): { page: JsonObject[]; total: number } {
  const { startTime, endTime, filters, deploymentId } = query;
  // The field filters listed once per query, not once per record (a page of a large scope reads every record).
  const fields = Object.entries(filters).filter(([name]) => name !== 'aggregationWindow');
  let matched =
    startTime === null && endTime === null && deploymentId === null && fields.length === 0
      ? records
      : records.filter((s) => {
          if (startTime !== null && s.time < startTime) return false;
          if (endTime !== null && s.time > endTime) return false;
          if (deploymentId !== null && s.deploymentId !== deploymentId) return false;
          for (const [name, value] of fields) if (s.record[name] !== value) return false;
          return true;
        });
  if (typeof filters.aggregationWindow === 'number') matched = aggregate(matched, filters.aggregationWindow);
  let ordered: Stored[];
  if (query.byTime) {
    ordered = query.order === 'asc' ? matched : [...matched].reverse();
  } else {
    const field = query.sort;
    const sign = query.order === 'asc' ? 1 : -1;
    ordered = [...matched].sort((a, b) => sign * (compareValues(a.record[field], b.record[field]) || a.time - b.time || a.seq - b.seq));
  }
  return { page: ordered.slice(query.offset, query.offset + query.limit).map((s) => s.record), total: matched.length };
}

function csvCell(value: Json | undefined): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** CSV with a header row: the union of the records' top-level fields, nested values as JSON. */
export function toCsv(records: JsonObject[]): string {
  const columns: string[] = [];
  const seen = new Set<string>();
  for (const r of records) {
    for (const k of Object.keys(r)) {
      if (seen.has(k)) continue;
      seen.add(k);
      columns.push(k);
    }
  }
  const lines = [columns.join(',')];
  for (const r of records) lines.push(columns.map((c) => csvCell(r[c])).join(','));
  return `${lines.join('\n')}\n`;
}

export const toNdjson = (records: JsonObject[]): string => records.map((r) => `${JSON.stringify(r)}\n`).join('');
