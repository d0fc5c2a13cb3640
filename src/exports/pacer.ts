import { setTimeout as delay } from 'node:timers/promises';
import { HOUR_MS, MINUTE_MS, type QuotaLimits } from '../state/quota.ts';
import type { QuotaStore } from '../state/state.ts';
import type { RequestPacer } from '../upstream/session.ts';

/** What a key's export jobs may spend: `share` of each of the key's limits, at least one request a window. */
export interface PacerOptions {
  share: number;
  /** The key's limits as this process enforces them (its share of them without Redis). */
  limits: () => QuotaLimits;
  /** The key's spend as the gateway's quota knows it (interactive use included). */
  quota: QuotaStore;
  hash: string;
  now?: () => number;
}

/** Times of the requests sent in a window, oldest first. */
class Sent {
  readonly times: number[] = [];
  count(now: number, windowMs: number): number {
    while (this.times.length > 0 && (this.times[0] ?? 0) <= now - windowMs) this.times.shift();
    return this.times.length;
  }
  /** When the count drops below `max` (its oldest times leave the window). */
  freeAt(max: number, windowMs: number): number {
    return (this.times[this.times.length - max] ?? 0) + windowMs;
  }
}

/**
 * Paces one key's export jobs within `share` of the key's hourly and per-minute (per endpoint) limits,
 * counting every request they send (retries too) over sliding windows, and never past what the key
 * has left of its hour as the gateway's quota counts it (interactive use included). A request whose
 * turn has not come waits; `waiting` tells when it will go.
 */
export class KeyPacer {
  readonly #hour = new Sent();
  readonly #minutes = new Map<string, Sent>();
  readonly #now: () => number;

  constructor(private readonly options: PacerOptions) {
    this.#now = options.now ?? Date.now;
  }

  /** Requests a window the jobs may send: the share of a limit, at least one. */
  allowance(): { perHour: number; perMinute: number; minuteMs: number } {
    const limits = this.options.limits();
    return {
      perHour: Math.max(1, Math.floor(limits.perHour * this.options.share)),
      perMinute: Math.max(1, Math.floor(limits.perMinutePerEndpoint * this.options.share)),
      minuteMs: limits.minuteMs ?? MINUTE_MS,
    };
  }

  /** When a request to `endpoint` may go (now, or later), as things stand. */
  nextTurn(endpoint: string): number {
    const now = this.#now();
    const { perHour, perMinute, minuteMs } = this.allowance();
    let at = now;
    if (this.#hour.count(now, HOUR_MS) >= perHour) at = Math.max(at, this.#hour.freeAt(perHour, HOUR_MS));
    const minute = this.#minutes.get(endpoint);
    if (minute && minute.count(now, minuteMs) >= perMinute) at = Math.max(at, minute.freeAt(perMinute, minuteMs));
    const { usedLastHour, limitPerHour } = this.options.quota.state(this.options.hash);
    if (usedLastHour >= this.options.limits().perHour || usedLastHour >= limitPerHour) {
      const untilRoom = this.options.quota.untilRoom?.(this.options.hash, 1);
      at = Math.max(at, now + (typeof untilRoom === 'number' ? Math.max(untilRoom, 1000) : 60_000));
    }
    return at;
  }

  #count(endpoint: string): void {
    const now = this.#now();
    this.#hour.times.push(now);
    let minute = this.#minutes.get(endpoint);
    if (!minute) this.#minutes.set(endpoint, (minute = new Sent()));
    minute.times.push(now);
  }

  /** A job's pacer: its requests take turns with the key's other jobs'; `waiting` is told when one waits, and until when. */
  forJob(waiting: (until: number | null) => void): RequestPacer {
    return {
      turn: async (endpoint, signal) => {
        for (;;) {
          const at = this.nextTurn(endpoint);
          const now = this.#now();
          if (at <= now) {
            this.#count(endpoint);
            waiting(null);
            return;
          }
          waiting(at);
          await delay(at - now, undefined, { signal });
        }
      },
      repeated: (endpoint) => this.#count(endpoint),
    };
  }
}
