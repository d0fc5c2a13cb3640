import { send } from './http.ts';

/** A Prometheus text page: `name` or `name{labels}` → value. */
export type Metrics = Map<string, number>;

export function parseMetrics(text: string): Metrics {
  const out: Metrics = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    const value = Number(line.slice(space + 1));
    if (space > 0 && Number.isFinite(value)) out.set(line.slice(0, space), value);
  }
  return out;
}

export async function scrapeMetrics(url: string): Promise<Metrics> {
  const reply = await send(url);
  if (reply.status !== 200) throw new Error(`GET ${url}: HTTP ${reply.status}`);
  return parseMetrics(reply.text);
}

/** The sum of a metric over all its label sets (0 when absent). */
export function metricSum(metrics: Metrics, name: string): number {
  let sum = 0;
  for (const [key, value] of metrics) if (key === name || key.startsWith(`${name}{`)) sum += value;
  return sum;
}

/** The gateway's own memory figures (prom-client's default metrics), as sampled: no GC is forced. */
export interface MemorySample {
  atSeconds: number;
  heapUsedMb: number;
  rssMb: number;
}

export function memoryOf(metrics: Metrics, atSeconds: number): MemorySample {
  return {
    atSeconds,
    heapUsedMb: metricSum(metrics, 'nodejs_heap_size_used_bytes') / 1_048_576,
    rssMb: metricSum(metrics, 'process_resident_memory_bytes') / 1_048_576,
  };
}

/**
 * Calls `sample(secondsSinceStart)` now, every `everyMs`, and once more on `stop()`; resolves to the
 * samples in order. A failed sample is left out rather than stopping the run.
 */
export function sampleEvery<T>(everyMs: number, sample: (atSeconds: number) => Promise<T>): { stop(): Promise<T[]> } {
  const started = performance.now();
  const pending: Promise<T | null>[] = [];
  const take = (): void => {
    const at = (performance.now() - started) / 1000;
    pending.push(sample(at).catch(() => null));
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      take();
      return (await Promise.all(pending)).filter((s): s is Awaited<T> => s !== null);
    },
  };
}
