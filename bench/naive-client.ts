/**
 * The naive reference: the dashboard as a script would read it from the REST API — the experiment, its
 * rooms, then for each room its participants, then for each participant its events and its sparse
 * ratings, one request at a time over one keep-alive connection, following `nextOffset`.
 */
import { Pool } from 'undici';

export type UpstreamRecord = Record<string, unknown>;

export interface NaiveParticipant {
  record: UpstreamRecord;
  events: UpstreamRecord[];
  sparseRatings: UpstreamRecord[];
}

export interface NaiveDashboard {
  experiment: UpstreamRecord;
  rooms: { record: UpstreamRecord; participants: NaiveParticipant[] }[];
  /** Requests sent. */
  requests: number;
}

interface Envelope {
  status: string;
  data: UpstreamRecord[] | UpstreamRecord;
  metadata?: { pagination?: { hasMore?: boolean; nextOffset?: number } };
}

const isRecord = (value: unknown): value is UpstreamRecord => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Reads the dashboard of `experimentId` from `apiUrl` (ending in `/api/v3`) with `key`. */
export async function naiveDashboard(apiUrl: string, experimentId: string, key: string): Promise<NaiveDashboard> {
  const base = new URL(apiUrl);
  const pool = new Pool(base.origin, { connections: 1 });
  let requests = 0;
  const get = async (path: string, query: Record<string, string> = {}): Promise<Envelope> => {
    const search = new URLSearchParams(query).toString();
    requests++;
    const res = await pool.request({
      method: 'GET',
      path: `${base.pathname}${path}${search ? `?${search}` : ''}`,
      headers: { 'x-api-key': key },
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`GET ${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
    return JSON.parse(text) as Envelope;
  };
  const list = async (path: string, query: Record<string, string> = {}): Promise<UpstreamRecord[]> => {
    const out: UpstreamRecord[] = [];
    for (let offset: number | undefined = 0; offset !== undefined;) {
      const page = await get(path, offset === 0 ? query : { ...query, offset: String(offset) });
      out.push(...(Array.isArray(page.data) ? page.data : [page.data]));
      const pagination = page.metadata?.pagination;
      offset = pagination?.hasMore ? pagination.nextOffset : undefined;
    }
    return out;
  };
  const id = (record: UpstreamRecord): string => {
    if (typeof record.id !== 'string') throw new Error(`a record without an id: ${JSON.stringify(record).slice(0, 200)}`);
    return encodeURIComponent(record.id);
  };

  try {
    const answer = await get(`/experiments/${encodeURIComponent(experimentId)}`);
    const experiment = Array.isArray(answer.data) ? answer.data[0] : answer.data;
    if (!isRecord(experiment)) throw new Error(`no experiment ${experimentId}`);
    const rooms: NaiveDashboard['rooms'] = [];
    for (const room of await list(`/data/rooms/experiment/${encodeURIComponent(experimentId)}`)) {
      const participants: NaiveParticipant[] = [];
      for (const participant of await list(`/data/participants/room/${id(room)}`)) {
        const scope = { roomId: String(room.id) };
        const events = await list(`/data/events/participant/${id(participant)}`, scope);
        const sparseRatings = await list(`/data/ratings/sparse/participant/${id(participant)}`, scope);
        participants.push({ record: participant, events, sparseRatings });
      }
      rooms.push({ record: room, participants });
    }
    return { experiment, rooms, requests };
  } finally {
    await pool.close();
  }
}

/** Rooms, participants, events and sparse ratings in a naive dashboard: the records a dashboard shows. */
export function recordCount(dashboard: NaiveDashboard): number {
  let n = dashboard.rooms.length;
  for (const room of dashboard.rooms) {
    n += room.participants.length;
    for (const p of room.participants) n += p.events.length + p.sparseRatings.length;
  }
  return n;
}
