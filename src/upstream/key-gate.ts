import { LRUCache } from 'lru-cache';
import { UpstreamError } from './errors.ts';

export interface KeyGateOptions {
  /** Keys remembered as confirmed, and as refused, at most each (KEY_STATE_MAX_KEYS). */
  maxKeys: number;
  /** How long a key the upstream refused is refused here without asking again, in ms (KEY_REFUSAL_TTL_MS). */
  keyRefusalTtlMs: number;
}

/** The one request of an unconfirmed key that goes upstream; its verdict lets the others go, or refuses them. */
export interface Probe {
  /** The upstream answered something other than 401 (a 2xx, a 403, a 404, a 429 …): the key is real. */
  confirm(): void;
  /** The upstream answered 401: every request of the key waiting here is refused, and later ones for a while. */
  refuse(error: UpstreamError): void;
  /**
   * The probe ended without a verdict (aborted, timed out, an outage): the next waiting request probes.
   * `sent`: the attempts it sent, carried to the key's confirmation (they count against its quota then).
   */
  release(sent: number): void;
  /** The attempts of earlier probes that ended without a verdict, taken once (to record them on confirmation). */
  takeCarried(): number;
}

interface Waiter {
  /** Go ahead (`null`: the key is confirmed), or probe yourself. */
  resolve(probe: Probe | null): void;
  reject(error: unknown): void;
}

/**
 * Keeps a key the upstream has not confirmed from multiplying itself upstream. A key this process has
 * never seen answered goes upstream one request at a time: the first is the probe and the rest of the
 * key's requests (of this operation and of any other) wait for its verdict. An answer other than 401
 * confirms the key, and from then on its requests go at once; a 401 refuses every waiting request and
 * every request of the key for `keyRefusalTtlMs` without asking again; a probe with no verdict (the
 * caller went away, a timeout, an outage) hands the turn to the next waiting request. So a made-up key
 * costs one upstream request however far its operation fans out, and however many operations it sends
 * at once. The gate is this process's memory only and holds, per key hash, a confirmation or a
 * refusal, and the count of requests probes sent without an answer (each bounded by `maxKeys`, least
 * recently used dropped first; the count goes to the key's quota once it is confirmed), and the waiters
 * of a probe in flight. The quota store and Redis hold nothing for a key until it is confirmed.
 */
export class KeyGate {
  readonly #confirmed: LRUCache<string, true>;
  readonly #refused: LRUCache<string, UpstreamError>;
  /** Requests sent by probes that got no answer, per key, until the key is confirmed or refused. */
  readonly #carried: LRUCache<string, number>;
  /** Keys with a probe in flight, and the requests waiting for its verdict. */
  readonly #probing = new Map<string, Waiter[]>();

  constructor(options: KeyGateOptions) {
    this.#confirmed = new LRUCache({ max: options.maxKeys });
    this.#refused = new LRUCache({ max: options.maxKeys, ttl: Math.max(1, options.keyRefusalTtlMs), ttlAutopurge: false });
    this.#carried = new LRUCache({ max: options.maxKeys });
  }

  /** Keys remembered as confirmed, and as refused. */
  get size(): { confirmed: number; refused: number } {
    return { confirmed: this.#confirmed.size, refused: this.#refused.size };
  }

  /** Whether the key is confirmed (its requests go without waiting for a probe). */
  confirmed(hash: string): boolean {
    return this.#confirmed.has(hash);
  }

  /** The key's refusal while it stands (a copy for the caller to throw), else null. */
  refusal(hash: string): UpstreamError | null {
    const refusal = this.#refused.get(hash);
    return refusal ? refused(refusal) : null;
  }

  /**
   * Before a request of the key goes upstream: resolves `null` when the key is confirmed (go), a
   * `Probe` when this request is to find out, after waiting for another's verdict if one is in flight;
   * rejects with the key's refusal, or with the signal's reason when it aborts while waiting.
   */
  enter(hash: string, signal?: AbortSignal): Promise<Probe | null> {
    const refusal = this.#refused.get(hash);
    if (refusal) return Promise.reject(refused(refusal));
    if (this.#confirmed.get(hash)) return Promise.resolve(null);
    const waiters = this.#probing.get(hash);
    if (!waiters) {
      this.#probing.set(hash, []);
      return Promise.resolve(this.#probe(hash));
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const at = waiters.indexOf(waiter);
        if (at >= 0) waiters.splice(at, 1);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        resolve: (probe) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(probe);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      waiters.push(waiter);
    });
  }

  /** The upstream refused the key (401), whether it was confirmed before or not. */
  refuse(hash: string, error: UpstreamError): void {
    this.#confirmed.delete(hash);
    this.#carried.delete(hash);
    this.#refused.set(hash, error);
  }

  #probe(hash: string): Probe {
    let settled = false;
    const settle = (): Waiter[] => {
      if (settled) return [];
      settled = true;
      const waiters = this.#probing.get(hash) ?? [];
      this.#probing.delete(hash);
      return waiters;
    };
    return {
      confirm: () => {
        if (settled) return;
        this.#confirmed.set(hash, true);
        this.#refused.delete(hash);
        for (const w of settle()) w.resolve(null);
      },
      refuse: (error) => {
        if (settled) return;
        this.refuse(hash, error);
        for (const w of settle()) w.reject(refused(error));
      },
      takeCarried: () => {
        const carried = this.#carried.get(hash) ?? 0;
        this.#carried.delete(hash);
        return carried;
      },
      release: (sent) => {
        if (settled) return;
        if (sent > 0) this.#carried.set(hash, (this.#carried.get(hash) ?? 0) + sent);
        const waiters = settle();
        const next = waiters.shift();
        if (!next) return;
        // The next waiting request probes, and the others wait for its verdict.
        this.#probing.set(hash, waiters);
        next.resolve(this.#probe(hash));
      },
    };
  }
}

/** The refusal as each request of the key reports it (the upstream's words; one object per request). */
function refused(error: UpstreamError): UpstreamError {
  return new UpstreamError(error.message, {
    code: error.code,
    status: error.status,
    upstreamCode: error.upstreamCode,
    details: { ...error.details },
  });
}
