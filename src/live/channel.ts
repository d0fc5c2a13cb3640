import { gatewayError } from '../errors.ts';

/** One subscriber's queue of items, read as an async iterator; returning it unsubscribes. */
export class Channel<T> implements AsyncIterableIterator<T> {
  readonly #queue: T[] = [];
  #waiting: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | null = null;
  #error: unknown = null;
  #done = false;

  constructor(
    private readonly max: number,
    private readonly onClose: () => void,
  ) {}

  push(items: readonly T[]): void {
    if (this.#done) return;
    // Only what the subscriber left unread from earlier batches counts: one large batch is not slowness.
    if (this.#queue.length > this.max) {
      this.fail(
        gatewayError(
          'SUBSCRIBER_TOO_SLOW',
          `This subscription left more than ${this.max} items unread and was ended; read faster or subscribe again`,
          {
            extensions: { maxBacklog: this.max },
          },
        ),
      );
      return;
    }
    for (const item of items) {
      const waiting = this.#waiting;
      if (waiting) {
        this.#waiting = null;
        waiting.resolve({ value: item, done: false });
      } else this.#queue.push(item);
    }
  }

  fail(error: unknown): void {
    if (this.#done) return;
    this.#error = error;
    this.#close();
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.reject(error);
  }

  next(): Promise<IteratorResult<T>> {
    const item = this.#queue.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.#error !== null) {
      const error = this.#error;
      this.#error = null;
      return Promise.reject(error);
    }
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.#waiting = { resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    this.#queue.length = 0;
    this.#close();
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.resolve({ value: undefined, done: true });
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  #close(): void {
    if (this.#done) return;
    this.#done = true;
    this.onClose();
  }
}
