/** Reading incremental responses (`@defer`, `@stream`) as a client does: multipart HTTP or SSE, then merged. */

export interface Payload {
  data?: Record<string, unknown> | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
  extensions?: { upstream?: { requests: number } } & Record<string, unknown>;
  hasNext?: boolean;
  incremental?: { data?: Record<string, unknown>; items?: unknown[]; path: (string | number)[] }[];
}

/** The JSON parts of a `multipart/mixed` body (the `---` boundary GraphQL over HTTP uses). */
export function multipartPayloads(contentType: string, body: string): Payload[] {
  const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1] ?? '-';
  return body
    .split(`--${boundary}`)
    .map((part) => {
      const blank = part.indexOf('\r\n\r\n');
      return blank < 0 ? '' : part.slice(blank + 4).trim();
    })
    .filter((json) => json.startsWith('{'))
    .map((json) => JSON.parse(json) as Payload);
}

/** The `next` events of a `text/event-stream` body. */
export function ssePayloads(body: string): Payload[] {
  return body
    .split('\n\n')
    .filter((event) => /^event: next$/m.test(event))
    .map(
      (event) =>
        JSON.parse(
          event
            .split('\n')
            .filter((line) => line.startsWith('data:'))
            .map((line) => line.slice(5).trim())
            .join('\n'),
        ) as Payload,
    );
}

const at = (root: unknown, path: readonly (string | number)[]): unknown =>
  path.reduce<unknown>((node, key) => (node as Record<string | number, unknown>)[key], root);

function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    const existing = target[key];
    if (existing && value && typeof existing === 'object' && typeof value === 'object' && !Array.isArray(value))
      deepMerge(existing as Record<string, unknown>, value as Record<string, unknown>);
    else target[key] = value;
  }
}

/** The whole answer: the initial payload with every deferred part and streamed item put in place. */
export function mergePayloads(payloads: readonly Payload[]): Record<string, unknown> {
  const data = structuredClone(payloads[0]?.data ?? {});
  for (const payload of payloads.slice(1))
    for (const part of payload.incremental ?? []) {
      if (part.data) deepMerge(at(data, part.path) as Record<string, unknown>, part.data);
      if (part.items) {
        const list = at(data, part.path.slice(0, -1)) as unknown[];
        list.splice(Number(part.path.at(-1)), part.items.length, ...part.items);
      }
    }
  return data;
}
