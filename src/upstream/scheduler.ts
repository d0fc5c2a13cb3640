/** Gives a slot back; calling it again does nothing. */
export type Release = () => void;

interface Waiter {
  grant: (release: Release) => void;
}

/** Waits for `register` to grant, or rejects with the signal's reason once it aborts (then `cancel` runs). */
function wait(signal: AbortSignal | undefined, register: (waiter: Waiter) => void, cancel: (waiter: Waiter) => void): Promise<Release> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      cancel(waiter);
      reject(signal?.reason);
    };
    const waiter: Waiter = {
      grant: (release) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(release);
      },
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    register(waiter);
  });
}

const once = (fn: () => void): Release => {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
};

/** At most `limit` holders at once; the rest wait in order. */
export class Limiter {
  #active = 0;
  readonly #waiters: Waiter[] = [];

  constructor(private readonly limit: number) {}

  acquire(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#active < this.limit && this.#waiters.length === 0) return Promise.resolve(this.#take());
    return wait(
      signal,
      (w) => this.#waiters.push(w),
      (w) => this.#waiters.splice(this.#waiters.indexOf(w), 1),
    );
  }

  #take(): Release {
    this.#active++;
    return once(() => {
      this.#active--;
      const next = this.#waiters.shift();
      if (next) next.grant(this.#take());
    });
  }
}

interface Partition {
  active: number;
  waiters: Waiter[];
}

export interface FairQueueOptions {
  /** Requests in flight at once in all (the pool's connections). */
  capacity: number;
  /** Requests in flight at once for one partition (one key). */
  perPartition: number;
}

/**
 * The line in front of the upstream pool: at most `capacity` requests in flight, at most
 * `perPartition` of them for one key; when the pool is busy, waiting keys take turns (round robin),
 * so a key with hundreds of requests queued delays another key's request by one turn, not hundreds.
 * Every operation is O(1) but for the cancellation of a wait.
 */
export class FairQueue {
  #active = 0;
  readonly #partitions = new Map<string, Partition>();
  /** Partitions with a waiter and room under their own limit, in turn order. */
  readonly #turns = new Map<string, Partition>();

  constructor(private readonly options: FairQueueOptions) {}

  /** Requests in flight, and waiting. */
  get load(): { active: number; waiting: number; partitions: number } {
    let waiting = 0;
    for (const p of this.#partitions.values()) waiting += p.waiters.length;
    return { active: this.#active, waiting, partitions: this.#partitions.size };
  }

  acquire(partition: string, signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    let p = this.#partitions.get(partition);
    if (!p) {
      p = { active: 0, waiters: [] };
      this.#partitions.set(partition, p);
    }
    const own = p;
    // With room in the pool nobody eligible is waiting (each release dispatches), so go at once.
    if (this.#active < this.options.capacity && own.active < this.options.perPartition && own.waiters.length === 0)
      return Promise.resolve(this.#take(partition, own));
    return wait(
      signal,
      (w) => {
        own.waiters.push(w);
        if (own.active < this.options.perPartition) this.#turns.set(partition, own);
      },
      (w) => {
        own.waiters.splice(own.waiters.indexOf(w), 1);
        if (own.waiters.length === 0) this.#turns.delete(partition);
        this.#forgetIfIdle(partition, own);
      },
    );
  }

  #take(name: string, p: Partition): Release {
    this.#active++;
    p.active++;
    return once(() => {
      this.#active--;
      p.active--;
      if (p.waiters.length > 0 && p.active < this.options.perPartition && !this.#turns.has(name)) this.#turns.set(name, p);
      this.#forgetIfIdle(name, p);
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#active < this.options.capacity) {
      const next = this.#turns.entries().next();
      if (next.done) return;
      const [name, p] = next.value;
      this.#turns.delete(name);
      const waiter = p.waiters.shift();
      if (!waiter) continue;
      // Granting takes the slot now; its holder's turn comes again after every other waiting key's.
      const release = this.#take(name, p);
      if (p.waiters.length > 0 && p.active < this.options.perPartition) this.#turns.set(name, p);
      waiter.grant(release);
    }
  }

  #forgetIfIdle(name: string, p: Partition): void {
    if (p.active === 0 && p.waiters.length === 0) this.#partitions.delete(name);
  }
}
