/**
 * WORKERS > 1: one primary process and N workers serving one port (node:cluster; the primary hands
 * connections to the workers in turn). Each worker is a whole gateway (`createGateway`) with its own
 * upstream pool, coalescing and memory; they share each key's quota, scopes and cache through Redis
 * when REDIS_URL is set, and otherwise each enforces its share of every limit (1/(WORKERS × REPLICAS)).
 * `/metrics`, wherever it lands, answers every worker's series labelled `worker="<id>"`, gathered by the
 * primary (prom-client's AggregatorRegistry). SIGTERM/SIGINT to the primary drains every worker; a
 * worker that crashes is started again.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { GatewayConfig } from './config.ts';
import type { GatewayDeps } from './server.ts';

/** The environment variable that tells a worker its id (1 … WORKERS; a restarted worker keeps its id). */
export const WORKER_ID_ENV = 'HSGQL_WORKER_ID';

const METRICS_REQUEST = 'hsgql:metrics-request';
const METRICS_REPLY = 'hsgql:metrics-reply';
/** A worker that exits within this long of starting, before it listened, stops the whole gateway. */
const RESTART_DELAY_MS = 1_000;

interface MetricsRequest {
  type: typeof METRICS_REQUEST;
  requestId: number;
}

interface MetricsReply {
  type: typeof METRICS_REPLY;
  requestId: number;
  text?: string;
  error?: string;
}

const isMessage = <T extends { type: string }>(message: unknown, type: T['type']): message is T =>
  typeof message === 'object' && message !== null && 'type' in message && message.type === type;

/** Runs the primary: forks the workers, restarts those that crash, gathers metrics, and stops them all on a signal. */
export function runPrimary(config: GatewayConfig, logger: Logger): void {
  const aggregator = new AggregatorRegistry();
  const workers = new Map<string, Worker>();
  const listened = new Set<string>();
  let announced = false;
  let stopping = false;
  let failed = false;

  const fork = (id: string): void => {
    const worker = cluster.fork({ [WORKER_ID_ENV]: id });
    workers.set(id, worker);
    worker.on('message', (message: unknown) => {
      if (!isMessage<MetricsRequest>(message, METRICS_REQUEST)) return;
      const reply = (fields: Omit<MetricsReply, 'type' | 'requestId'>): void => {
        if (worker.isConnected()) worker.send({ type: METRICS_REPLY, requestId: message.requestId, ...fields });
      };
      aggregator.clusterMetrics().then(
        (text) => reply({ text }),
        (error: unknown) => reply({ error: error instanceof Error ? error.message : String(error) }),
      );
    });
    worker.on('listening', (address) => {
      listened.add(id);
      if (announced || listened.size < config.workers) return;
      announced = true;
      const host = address.address === null || address.address === '0.0.0.0' || address.address === '' ? '127.0.0.1' : address.address;
      const shown = host.includes(':') ? `[${host}]` : host;
      logger.info(
        {
          url: `http://${shown}:${address.port}/graphql`,
          workers: config.workers,
          pid: process.pid,
          redis: config.redis !== null,
          // 'rr': this process hands each new connection to the next free worker (Node's default but on
          // Windows); 'none' (NODE_CLUSTER_SCHED_POLICY=none): the kernel picks, often unevenly.
          schedulingPolicy: cluster.schedulingPolicy === cluster.SCHED_RR ? 'rr' : 'none',
        },
        'primary: every worker listening',
      );
    });
    worker.on('exit', (code, signal) => {
      if (workers.get(id) === worker) workers.delete(id);
      if (stopping || failed) {
        if (workers.size === 0) process.exit(failed ? 1 : 0);
        return;
      }
      if (!listened.has(id)) {
        // It never served (a port in use, a bad setting): restarting would only repeat it.
        failed = true;
        logger.error({ worker: id, code, signal }, 'primary: a worker exited before listening; stopping every worker');
        for (const other of workers.values()) other.process.kill('SIGTERM');
        if (workers.size === 0) process.exit(1);
        return;
      }
      listened.delete(id);
      logger.error({ worker: id, code, signal }, 'primary: a worker exited; starting it again');
      setTimeout(() => {
        if (!stopping) fork(id);
      }, RESTART_DELAY_MS).unref();
    });
  };

  for (let i = 1; i <= config.workers; i++) fork(String(i));

  const stop = (signal: string): void => {
    if (stopping) {
      // A second signal: stop now.
      for (const worker of workers.values()) worker.process.kill('SIGKILL');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, graceMs: config.shutdownGraceMs, workers: workers.size }, 'primary: stopping every worker');
    if (workers.size === 0) process.exit(0);
    for (const worker of workers.values()) worker.process.kill('SIGTERM');
    // Each worker drains for SHUTDOWN_GRACE_MS; one that is still there well after is killed.
    setTimeout(() => {
      for (const worker of workers.values()) worker.process.kill('SIGKILL');
    }, config.shutdownGraceMs + 5_000).unref();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** In a worker: its id, and `/metrics` as every worker's series, asked of the primary. */
export function workerDeps(): NonNullable<GatewayDeps['worker']> {
  const id = process.env[WORKER_ID_ENV] ?? String(cluster.worker?.id ?? 0);
  let next = 0;
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  process.on('message', (message: unknown) => {
    if (!isMessage<MetricsReply>(message, METRICS_REPLY)) return;
    const pending = waiting.get(message.requestId);
    if (!pending) return;
    waiting.delete(message.requestId);
    if (message.text !== undefined) pending.resolve(message.text);
    else pending.reject(new Error(message.error ?? 'no metrics'));
  });
  return {
    id,
    metrics: () =>
      new Promise<string>((resolve, reject) => {
        const requestId = next++;
        const timer = setTimeout(() => {
          waiting.delete(requestId);
          reject(new Error('The primary did not answer with the metrics in time'));
        }, 10_000);
        waiting.set(requestId, {
          resolve: (text) => {
            clearTimeout(timer);
            resolve(text);
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        });
        const request: MetricsRequest = { type: METRICS_REQUEST, requestId };
        process.send?.(request);
      }),
  };
}

/** In a worker: answers the primary's requests for this worker's metrics with `registry`'s. */
export function shareMetrics(registry: Registry): void {
  // Constructing it installs prom-client's listener for the primary's requests in this worker.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
}
