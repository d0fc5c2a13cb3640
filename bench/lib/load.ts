import { Pool } from 'undici';
import { CpuMeter } from './cpu.ts';
import { median, num, percentile } from './format.ts';

export interface LoadRequest {
  path: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
}

export interface LoadOptions {
  /** `http://host:port` of the server under load. */
  origin: string;
  /** Concurrent clients; each sends its next request when its previous answer has arrived (a closed loop). */
  clients: number;
  durationMs: number;
  /** The request client `client` sends as its `i`-th. */
  next(client: number, i: number): LoadRequest;
  /** Classifies an answer: null when it is as expected, else a short label counted as an error. Default: HTTP 200 is fine. */
  check?(status: number, body: string, request: LoadRequest): string | null;
  /** Processes whose CPU share is measured during the run (the servers under load). */
  pids?: readonly number[];
}

export interface LoadResult {
  operations: number;
  seconds: number;
  /** Operations per second. */
  rate: number;
  errors: Map<string, number>;
  errorCount: number;
  /** Ascending, in ms. */
  latencies: number[];
  /** CPU share of the bench process (the clients), 100% = one core. */
  clientCpu: number;
  /** CPU shares of `pids`, in order (null where /proc is not available). */
  serverCpu: (number | null)[];
}

const meter = new CpuMeter();

/** undici's error code (`ECONNRESET`, `UND_ERR_SOCKET` …), else the message. */
const failureLabel = (error: unknown): string =>
  error instanceof Error ? ('code' in error && typeof error.code === 'string' ? error.code : error.message) : String(error);

/** Drives `origin` with `clients` closed-loop clients over keep-alive connections (undici) for `durationMs`. */
export async function closedLoop(options: LoadOptions): Promise<LoadResult> {
  const pool = new Pool(options.origin, { connections: options.clients, pipelining: 1, keepAliveTimeout: 30_000 });
  const latencies: number[] = [];
  const errors = new Map<string, number>();
  const fail = (label: string): void => void errors.set(label, (errors.get(label) ?? 0) + 1);
  let operations = 0;
  const cpu = meter.start(options.pids ?? []);
  const started = performance.now();
  const until = started + options.durationMs;
  try {
    await Promise.all(
      Array.from({ length: options.clients }, async (_, client) => {
        for (let i = 0; performance.now() < until; i++) {
          const request = options.next(client, i);
          const sent = performance.now();
          try {
            const res = await pool.request(request);
            const body = await res.body.text();
            latencies.push(performance.now() - sent);
            const error = options.check
              ? options.check(res.statusCode, body, request)
              : res.statusCode === 200
                ? null
                : `HTTP ${res.statusCode}`;
            if (error !== null) fail(error);
          } catch (error) {
            latencies.push(performance.now() - sent);
            fail(`network: ${failureLabel(error)}`);
          }
          operations++;
        }
      }),
    );
  } finally {
    await pool.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const usage = cpu.stop();
  latencies.sort((a, b) => a - b);
  return {
    operations,
    seconds,
    rate: operations / seconds,
    errors,
    errorCount: [...errors.values()].reduce((a, b) => a + b, 0),
    latencies,
    clientCpu: usage.self,
    serverCpu: usage.others,
  };
}

/** Several runs of one variant as one: operations and seconds add up, CPU shares are time-weighted. */
export function mergeLoad(results: readonly LoadResult[]): LoadResult {
  const seconds = results.reduce((s, r) => s + r.seconds, 0);
  const operations = results.reduce((s, r) => s + r.operations, 0);
  const errors = new Map<string, number>();
  for (const r of results) for (const [k, v] of r.errors) errors.set(k, (errors.get(k) ?? 0) + v);
  const weighted = (pick: (r: LoadResult) => number | null): number | null => {
    let sum = 0;
    for (const r of results) {
      const v = pick(r);
      if (v === null) return null;
      sum += v * r.seconds;
    }
    return sum / seconds;
  };
  const servers = results[0]?.serverCpu.length ?? 0;
  return {
    operations,
    seconds,
    rate: operations / seconds,
    errors,
    errorCount: [...errors.values()].reduce((a, b) => a + b, 0),
    latencies: results.flatMap((r) => r.latencies).sort((a, b) => a - b),
    clientCpu: weighted((r) => r.clientCpu) ?? Number.NaN,
    serverCpu: Array.from({ length: servers }, (_, i) => weighted((r) => r.serverCpu[i] ?? null)),
  };
}

export const p = (result: LoadResult, q: number): number => percentile(result.latencies, q);

/** The lowest and highest rate of separate rounds of one variant: "1,402–1,700", how much the machine moved it. */
export const rateSpread = (rounds: readonly LoadResult[]): string => {
  const rates = rounds.map((r) => r.rate);
  return `${num(Math.min(...rates))}–${num(Math.max(...rates))}`;
};

/**
 * The rate of `a` over the rate of `b`, round by round (neighbours in time, so under alike noise): the
 * median of those ratios, and the lowest and highest.
 */
export function pairedRatio(a: readonly LoadResult[], b: readonly LoadResult[]): { median: number; min: number; max: number } {
  const ratios = a.map((r, i) => r.rate / (b[i]?.rate ?? Number.NaN)).filter((x) => Number.isFinite(x));
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
}

/** "3 × HTTP 500, 1 × network: ECONNRESET", or "0". */
export const errorsText = (result: LoadResult): string =>
  result.errorCount === 0 ? '0' : [...result.errors].map(([label, n]) => `${n} × ${label}`).join(', ');

/**
 * Measures each variant in turn, `rounds` times (A B C, A B C, …), so that noise on a shared machine
 * hits every variant alike. Returns the results per variant, in the order of `variants`.
 */
export async function alternate<V, R>(
  variants: readonly V[],
  rounds: number,
  measure: (variant: V, round: number) => Promise<R>,
): Promise<R[][]> {
  const results: R[][] = variants.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (const [i, variant] of variants.entries()) results[i]?.push(await measure(variant, round));
  }
  return results;
}
