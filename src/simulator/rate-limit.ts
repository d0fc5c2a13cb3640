export interface RateLimitOptions {
  enabled: boolean;
  /** Requests an hour per key (the upstream documents 1000). */
  perHour: number;
  /** Requests a minute per endpoint per key (the upstream documents 100). */
  perMinute: number;
  /**
   * How long that "minute" is, in ms: 60,000 as the upstream's (the default); shorter only so that a
   * test can fill and drain the window without waiting a real minute (`--rate-limit-minute-ms`).
   */
  minuteMs?: number;
}

export const MINUTE_MS = 60_000;

export const DEFAULT_RATE_LIMIT: RateLimitOptions = { enabled: true, perHour: 1000, perMinute: 100, minuteMs: MINUTE_MS };

interface Window {
  start: number;
  count: number;
}

export type RateDecision =
  | { ok: true; limit: number; remaining: number; resetAt: number }
  | { ok: false; limit: number; window: 'hour' | 'minute'; retryAfter: number };

/** Fixed-window counters per key and per key and endpoint, as the upstream documents its limits. */
export class RateLimiter {
  readonly #hour = new Map<string, Window>();
  readonly #minute = new Map<string, Window>();

  constructor(
    readonly options: RateLimitOptions,
    private readonly now: () => number = Date.now,
  ) {}

  take(keyName: string, endpoint: string): RateDecision {
    const now = this.now();
    const hour = this.#window(this.#hour, keyName, now, 3_600_000);
    const minuteMs = this.options.minuteMs ?? MINUTE_MS;
    const minute = this.#window(this.#minute, `${keyName} ${endpoint}`, now, minuteMs);
    const { perHour, perMinute } = this.options;
    if (hour.count >= perHour) {
      return { ok: false, limit: perHour, window: 'hour', retryAfter: Math.max(1, Math.ceil((hour.start + 3_600_000 - now) / 1000)) };
    }
    if (minute.count >= perMinute) {
      return { ok: false, limit: perMinute, window: 'minute', retryAfter: Math.max(1, Math.ceil((minute.start + minuteMs - now) / 1000)) };
    }
    hour.count++;
    minute.count++;
    return { ok: true, limit: perHour, remaining: perHour - hour.count, resetAt: Math.ceil((hour.start + 3_600_000) / 1000) };
  }

  reset(): void {
    this.#hour.clear();
    this.#minute.clear();
  }

  #window(map: Map<string, Window>, key: string, now: number, length: number): Window {
    let w = map.get(key);
    if (!w || now - w.start >= length) {
      w = { start: now, count: 0 };
      map.set(key, w);
    }
    return w;
  }
}
