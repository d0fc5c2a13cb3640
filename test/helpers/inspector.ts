/** A client of a Node process's inspector (`--inspect`): its protocol's methods, answered in order. */
export interface Inspector {
  call(method: string, params?: Record<string, unknown>): Promise<unknown>;
  close(): void;
}

/** Connects to the inspector at `url` (the `ws://…` a process prints as "Debugger listening on"). */
export async function connectInspector(url: string): Promise<Inspector> {
  const socket = new WebSocket(url);
  await new Promise((ok, fail) => {
    socket.addEventListener('open', ok);
    socket.addEventListener('error', fail);
  });
  let next = 0;
  const waiting = new Map<number, { ok: (result: unknown) => void; fail: (error: Error) => void }>();
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message?: string } };
    if (message.id === undefined) return;
    const call = waiting.get(message.id);
    waiting.delete(message.id);
    if (message.error) call?.fail(new Error(`inspector: ${message.error.message ?? 'error'}`));
    else call?.ok(message.result);
  });
  return {
    call: (method, params = {}) =>
      new Promise((ok, fail) => {
        const id = ++next;
        waiting.set(id, { ok, fail });
        socket.send(JSON.stringify({ id, method, params }));
      }),
    close: () => socket.close(),
  };
}

/** Young-generation bytes: in use when a dashboard ended, alive at the first minor collection after it, promoted by a second. */
export interface Retention {
  allocated: number;
  kept: number;
  promoted: number;
  pauseMs: number;
}

/**
 * What V8's young-generation collector keeps, evaluated in a process started with `--expose-gc`
 * (`Runtime.evaluate`, by value): two minor collections in a row, the first copies what it finds
 * alive, the second promotes what is still alive to the old generation.
 */
export const RETENTION = `(() => {
  const v8 = process.getBuiltinModule('node:v8');
  const space = (name) => v8.getHeapSpaceStatistics().find((s) => s.space_name === name).space_used_size;
  const young = () => space('new_space') + space('new_large_object_space');
  const old = () => space('old_space') + space('large_object_space');
  const allocated = young();
  const started = performance.now();
  gc({ type: 'minor' });
  const pauseMs = performance.now() - started;
  const kept = young();
  const before = old();
  gc({ type: 'minor' });
  return { allocated, kept, pauseMs, promoted: Math.max(0, old() - before) };
})()`;

/**
 * Runs RETENTION in the inspected process 50 ms after it is asked: an answer reaches its client before
 * the gateway is done with it (the rest of its bytes to the socket, its log line), and on a busy machine
 * (CI: four test files at once on two cores) a probe run at once found it alive.
 */
export async function retention(inspector: Inspector): Promise<Retention> {
  const { result } = (await inspector.call('Runtime.evaluate', {
    expression: `new Promise((ok) => setTimeout(() => ok(${RETENTION}), 50))`,
    awaitPromise: true,
    returnByValue: true,
  })) as {
    result: { value: Retention };
  };
  return result.value;
}
