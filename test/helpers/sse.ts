import { FULL } from './simulator.ts';
/** A GraphQL-over-SSE subscription (distinct connections mode): its payloads as they arrive, and a way to end it. */
export interface SseSubscription<T = Record<string, unknown>> {
  /** Every `next` payload so far. */
  payloads: { data?: T; errors?: { message: string; extensions?: Record<string, unknown> }[]; extensions?: Record<string, unknown> }[];
  /** Resolves when at least `n` payloads arrived (or rejects after `timeoutMs`). */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  /** Whether the server completed the stream. */
  readonly completed: boolean;
  close(): void;
}

export async function subscribeSse<T = Record<string, unknown>>(
  url: string,
  query: string,
  options: { key?: string | null; variables?: Record<string, unknown>; headers?: Record<string, string> } = {},
): Promise<SseSubscription<T>> {
  const controller = new AbortController();
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream', ...options.headers };
  if (options.key !== null) headers['x-api-key'] = options.key ?? FULL;
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables: options.variables }),
    signal: controller.signal,
  });
  const payloads: SseSubscription<T>['payloads'] = [];
  const waiters = new Set<() => void>();
  let completed = false;
  const notify = (): void => {
    for (const w of waiters) w();
  };
  void (async () => {
    const reader = res.body?.getReader();
    if (!reader) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trimStart())
            .join('\n');
          if (event === 'complete') completed = true;
          else if (data !== '') payloads.push(JSON.parse(data) as SseSubscription<T>['payloads'][number]);
          notify();
        }
      }
    } catch {
      // aborted by close()
    }
    completed = true;
    notify();
  })();
  return {
    payloads,
    get completed() {
      return completed;
    },
    waitFor: (n, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (payloads.length >= n) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          } else if (completed) {
            waiters.delete(check);
            clearTimeout(timer);
            reject(
              new Error(`the stream ended after ${payloads.length} payloads, ${n} expected: ${JSON.stringify(payloads).slice(0, 500)}`),
            );
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${payloads.length} payloads after ${timeoutMs} ms, ${n} expected`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: () => controller.abort(),
  };
}
