/** One request the simulator served, as tests and the admin route see it. */
export interface RequestRecord {
  method: string;
  /** The path without the query string, e.g. `/api/v3/data/events/room/room_movie01_001`. */
  path: string;
  /** The query string without `?` (empty when there is none). */
  query: string;
  /** The key's label (`demo_full` …), `unknown` for an unknown key, `none` without one; never the key. */
  key: string;
  status: number;
  fault: string | null;
  requestId: string | null;
  /** The `X-Organization-Id` header the request carried (null without one). */
  organizationId: string | null;
  /** The JSON body the route read (writes), as parsed; null when it read none. */
  body: unknown;
  /** Milliseconds since the simulator started (or stats were reset), when the request arrived and ended. */
  startedAt: number;
  endedAt: number;
}

/** Counts of what the simulator served under `/api/v3`, so tests can assert upstream request counts. */
export class RequestStats {
  #origin = performance.now();
  #log: RequestRecord[] = [];
  #inFlight = 0;
  #maxInFlight = 0;

  get total(): number {
    return this.#log.length;
  }

  get requests(): readonly RequestRecord[] {
    return this.#log;
  }

  get maxInFlight(): number {
    return this.#maxInFlight;
  }

  now(): number {
    return performance.now() - this.#origin;
  }

  begin(): void {
    this.#inFlight++;
    this.#maxInFlight = Math.max(this.#maxInFlight, this.#inFlight);
  }

  end(record: RequestRecord): void {
    this.#inFlight--;
    this.#log.push(record);
  }

  /** Requests per path (with the query string when `withQuery`). */
  byPath(withQuery = false): Record<string, number> {
    return this.#count((r) => (withQuery && r.query ? `${r.path}?${r.query}` : r.path));
  }

  byKey(): Record<string, number> {
    return this.#count((r) => r.key);
  }

  reset(): void {
    this.#log = [];
    this.#origin = performance.now();
    this.#maxInFlight = this.#inFlight;
  }

  toJSON(): object {
    return { total: this.total, maxInFlight: this.#maxInFlight, byPath: this.byPath(), byKey: this.byKey(), requests: this.#log };
  }

  #count(keyOf: (r: RequestRecord) => string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.#log) out[keyOf(r)] = (out[keyOf(r)] ?? 0) + 1;
    return out;
  }
}
