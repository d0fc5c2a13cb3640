import type { Plugin } from 'graphql-yoga';

export interface ReadinessOptions {
  /** Asks the upstream whether it is healthy; whatever it resolves (or a failure: not ready) is the answer. */
  probe: (signal: AbortSignal) => Promise<boolean>;
  /** How long one probe's answer serves every caller, in ms (READY_CACHE_MS). */
  readyCacheMs: number;
  /** The longest one probe may take, in ms. */
  timeoutMs: number;
  now?: () => number;
}

/**
 * Readiness from the upstream's own health: one probe at a time, shared by every concurrent caller,
 * and its answer reused for `readyCacheMs`, so that any number of `/ready` calls make at most one upstream
 * request per `readyCacheMs`. The probe goes out whatever the circuits say, so readiness recovers as soon
 * as the upstream does.
 */
export class Readiness {
  #pending: Promise<boolean> | null = null;
  #last: { at: number; ready: boolean } | null = null;
  readonly #now: () => number;

  constructor(private readonly options: ReadinessOptions) {
    this.#now = options.now ?? Date.now;
  }

  check(): Promise<boolean> {
    const last = this.#last;
    if (last && this.#now() - last.at < this.options.readyCacheMs) return Promise.resolve(last.ready);
    this.#pending ??= this.options
      .probe(AbortSignal.timeout(this.options.timeoutMs))
      .catch(() => false)
      .then((ready) => {
        this.#last = { at: this.#now(), ready };
        this.#pending = null;
        return ready;
      });
    return this.#pending;
  }
}

/** Answers `GET <endpoint>`: 200 `{ ready: true }`, or 503 with the reason. */
export function useReadiness({ readiness, endpoint = '/ready' }: { readiness: Readiness; endpoint?: string }): Plugin {
  return {
    onRequest({ url, endResponse, fetchAPI }) {
      if (url.pathname !== endpoint) return;
      return readiness.check().then((ready) =>
        endResponse(
          new fetchAPI.Response(JSON.stringify(ready ? { ready: true } : { ready: false, reason: 'The HyperStudy API is not reachable' }), {
            status: ready ? 200 : 503,
            headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
          }),
        ),
      );
    },
  };
}
