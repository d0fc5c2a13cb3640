/**
 * Memory and fairness under hostile callers and a hostile upstream (issue 9), measured by
 * `npm run bench -- hardening`. Unlike the other scenarios, the gateway runs in the bench's own process
 * here, so that its heap can be read after a full garbage collection (nothing else is timed then):
 *  - heap after 20,000 distinct keys (valid ones, whose state is kept, and invalid ones);
 *  - another key's latency while one key fans out 300 requests;
 *  - another key's latency, and the upstream's 401s, while callers flood the gateway with made-up keys;
 *  - another key's latency during the largest lists the limits allow (and 75,000 representations, refused);
 *  - the shared cache's bytes right after a burst of pages and once the TTL has passed;
 *  - RSS while the upstream sends 200 MB answers (six at once).
 */
import type { ServerResponse } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadConfig } from '../../src/config.ts';
import { createGateway } from '../../src/server.ts';
import { startSimulator } from '../../src/simulator/server.ts';
import { startScripted } from '../../test/helpers/scripted.ts';
import { DASHBOARD } from '../../test/helpers/dashboard.ts';
import type { Scenario } from '../lib/scenario.ts';

// A full collection before each heap sample, without starting node with --expose-gc.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MB = 1_048_576;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const heapMb = (): number => {
  gc();
  return process.memoryUsage().heapUsed / MB;
};
const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function post(url: string, key: string, query: string, variables: Record<string, unknown> = {}): Promise<unknown> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify({ query, variables }),
  });
  return res.json();
}

/** Sends `count` operations, `concurrency` at a time, each with the key `keyOf(i)`. */
async function spread(count: number, concurrency: number, send: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await send(next++);
    }),
  );
}

async function distinctKeys(count: number): Promise<string[]> {
  const valid = Array.from({ length: count }, (_, i) => ({
    key: `hst_test_bench_${i}`,
    name: `bench_${i}`,
    userId: 'user_demo',
    scopes: ['*'],
  }));
  const sim = await startSimulator({ extraKeys: valid, rateLimit: { enabled: false, perHour: 1, perMinute: 1 } });
  const gw = createGateway(loadConfig({ HYPERSTUDY_API_URL: sim.url, LOG_LEVEL: 'silent' }));
  const url = await gw.listen(0, '127.0.0.1');
  const query = '{ experiment(id: "exp_movie01") { name } }';
  const lines: string[] = [];
  try {
    await post(url, 'hst_test_demo_full', query);
    // The in-process simulator logs every request it serves: cleared before each heap sample, so that
    // the samples show the gateway's memory.
    sim.stats.reset();
    const start = heapMb();
    const t0 = performance.now();
    const random = (i: number): string => `hst_live_random_${i}_${Math.random().toString(36).slice(2)}`;
    await spread(count / 2, 32, (i) => post(url, random(i), query));
    sim.stats.reset();
    const half = heapMb();
    await spread(count / 2, 32, (i) => post(url, random(i), query));
    sim.stats.reset();
    const invalid = heapMb();
    const t1 = performance.now();
    await spread(count, 32, (i) => post(url, valid[i]?.key ?? '', query));
    const t2 = performance.now();
    sim.stats.reset();
    const kept = heapMb();
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const held = (kind: string): string => new RegExp(`hsgql_key_state_entries\\{kind="${kind}"\\} (\\d+)`).exec(metrics)?.[1] ?? '?';
    lines.push(
      `| ${count.toLocaleString('en')} invalid keys, one operation each | ${((t1 - t0) / 1000).toFixed(0)} s | ${start.toFixed(1)} → ${half.toFixed(1)} (after half) → ${invalid.toFixed(1)} MB | 0 |`,
      `| then ${count.toLocaleString('en')} valid keys, one operation each | ${((t2 - t1) / 1000).toFixed(0)} s | ${invalid.toFixed(1)} → ${kept.toFixed(1)} MB | ${held('quota')} (KEY_STATE_MAX_KEYS) |`,
    );
  } finally {
    await gw.close();
    await sim.close();
  }
  return lines;
}

async function fanOut(): Promise<string> {
  const sim = await startSimulator({ latencyMs: 20, rateLimit: { enabled: false, perHour: 1, perMinute: 1 } });
  const gw = createGateway(
    loadConfig({ HYPERSTUDY_API_URL: sim.url, LOG_LEVEL: 'silent', CACHE_TTL_MS: '0', UPSTREAM_QUOTA_GUARD: 'off' }),
  );
  const url = await gw.listen(0, '127.0.0.1');
  const small = '{ experiment(id: "exp_other01") { name } }';
  const timeSmall = async (): Promise<number> => {
    const t = performance.now();
    await post(url, 'hst_test_demo_other', small);
    return performance.now() - t;
  };
  try {
    const alone: number[] = [];
    for (let i = 0; i < 20; i++) alone.push(await timeSmall());
    const ids = Array.from({ length: 300 }, (_, i) => Buffer.from(`Experiment:exp_fan_${i}`).toString('base64'));
    const during: number[] = [];
    let fanMs = 0;
    for (let run = 0; run < 3; run++) {
      const t = performance.now();
      let done = false;
      const big = post(url, 'hst_test_demo_full', 'query($ids: [ID!]!) { nodes(ids: $ids) { id } }', { ids }).then(() => {
        done = true;
        fanMs += performance.now() - t;
      });
      await delay(30);
      while (!done) during.push(await timeSmall());
      await big;
    }
    return `| one key's \`nodes(ids:)\` of 300 ids (20 ms upstream latency) | ${median(alone).toFixed(0)} ms | ${median(during).toFixed(0)} ms (${during.length} samples) | ${(fanMs / 3).toFixed(0)} ms |`;
  } finally {
    await gw.close();
    await sim.close();
  }
}

/** `p` of sorted samples (0.5: the median, 1: the worst). */
const quantile = (xs: number[], p: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? Number.NaN;

/**
 * Four callers for 5 s, each operation with a fresh made-up key and `nodes(ids:)` of 300 ids, against
 * an upstream that answers in 20 ms; meanwhile another key asks a cached tiny query every 20 ms.
 * Reports the upstream's 401s per flood operation and the other key's median and worst latency,
 * alone and during the flood.
 */
async function junkKeyFlood(seconds: number): Promise<string> {
  const sim = await startSimulator({ latencyMs: 20, rateLimit: { enabled: false, perHour: 1, perMinute: 1 } });
  const gw = createGateway(loadConfig({ HYPERSTUDY_API_URL: sim.url, LOG_LEVEL: 'silent' }));
  const url = await gw.listen(0, '127.0.0.1');
  const small = '{ experiment(id: "exp_other01") { name } }';
  const poll = async (until: () => boolean): Promise<number[]> => {
    const times: number[] = [];
    while (!until()) {
      const t = performance.now();
      await post(url, 'hst_test_demo_other', small);
      times.push(performance.now() - t);
      await delay(20);
    }
    return times;
  };
  try {
    await post(url, 'hst_test_demo_other', small);
    const aloneUntil = performance.now() + 2_000;
    const alone = await poll(() => performance.now() > aloneUntil);
    sim.stats.reset();
    const ids = Array.from({ length: 300 }, (_, i) => Buffer.from(`Experiment:exp_${i}`).toString('base64'));
    const query = 'query($ids: [ID!]!) { nodes(ids: $ids) { id } }';
    const end = performance.now() + seconds * 1000;
    let sent = 0;
    const flood = Promise.all(
      Array.from({ length: 4 }, async (_, caller) => {
        while (performance.now() < end) {
          await post(url, `hst_live_junk_${caller}_${sent++}_${Math.random().toString(36).slice(2)}`, query, { ids });
        }
      }),
    );
    const during = await poll(() => performance.now() > end);
    await flood;
    const refused = sim.stats.requests.filter((r) => r.status === 401).length;
    const ms = (xs: number[], p: number): string => `${quantile(xs, p).toFixed(0)} ms`;
    return `| 4 callers × ${seconds} s, a fresh made-up key per operation, \`nodes(ids:)\` of 300 ids (20 ms upstream latency) | ${sent} operations, ${refused} upstream 401s (${(refused / Math.max(1, sent)).toFixed(2)} per operation) | ${ms(alone, 0.5)} / ${ms(alone, 1)} (${alone.length} samples) | ${ms(during, 0.5)} / ${ms(during, 1)} (${during.length} samples) |`;
  } finally {
    await gw.close();
    await sim.close();
  }
}

/**
 * Another key's cached tiny query, sent every 20 ms, while one key sends the largest lists the limits
 * allow (MAX_LOOKUPS representations or ids, MAX_LIST_ITEMS events), and the issue's 75,000
 * representations (now refused). Issue 17, item 2: before the limits, those 75,000 held it 25.9 s.
 */
async function largestLists(runs: number): Promise<string[]> {
  const sim = await startSimulator({ rateLimit: { enabled: false, perHour: 1, perMinute: 1 } });
  const config = loadConfig({ HYPERSTUDY_API_URL: sim.url, LOG_LEVEL: 'silent', UPSTREAM_QUOTA_GUARD: 'off' });
  const gw = createGateway(config);
  const url = await gw.listen(0, '127.0.0.1');
  const small = '{ experiment(id: "exp_movie01") { name } }';
  const timeSmall = async (): Promise<number> => {
    const t = performance.now();
    await post(url, 'hst_test_demo_readonly', small);
    return performance.now() - t;
  };
  const worst = (xs: number[]): number => Math.max(...xs);
  const room = (await post(
    url,
    'hst_test_demo_full',
    '{ room(id: "room_movie01_001") { participants(first: 1) { edges { node { participantId } } } } }',
  )) as {
    data: { room: { participants: { edges: { node: { participantId: string } }[] } } };
  };
  const participantId = room.data.room.participants.edges[0]?.node.participantId ?? '';
  const { lookups, listItems } = config.limits;
  const representations = (n: number) => Array.from({ length: n }, (_, i) => ({ __typename: 'Experiment', experimentId: `exp_${i}` }));
  const entities = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Experiment { name } } }';
  const cases: { label: string; query: string; variables: Record<string, unknown> }[] = [
    {
      label: `\`_entities\` of ${lookups} representations (MAX_LOOKUPS), none found`,
      query: entities,
      variables: { r: representations(lookups) },
    },
    {
      label: `\`nodes(ids:)\` of ${lookups} ids (MAX_LOOKUPS), none found`,
      query: 'query($ids: [ID!]!) { nodes(ids: $ids) { id } }',
      variables: { ids: Array.from({ length: lookups }, (_, i) => Buffer.from(`Experiment:exp_${i}`).toString('base64')) },
    },
    {
      label: `\`recordEvents\` of ${listItems.toLocaleString('en-US')} events (MAX_LIST_ITEMS)`,
      query: 'mutation($e: [EventInput!]!) { recordEvents(events: $e) { recorded batches } }',
      variables: {
        e: Array.from({ length: listItems }, (_, i) => ({
          eventType: 'custom.marker',
          experimentId: 'exp_movie01',
          roomId: 'room_movie01_001',
          participantId,
          onset: i,
          content: `marker ${i}`,
        })),
      },
    },
    { label: '`_entities` of 75,000 representations (4.1 MB; refused)', query: entities, variables: { r: representations(75_000) } },
  ];
  try {
    await post(url, 'hst_test_demo_readonly', small);
    const alone: number[] = [];
    for (let i = 0; i < 50; i++) {
      alone.push(await timeSmall());
      await delay(20);
    }
    const rows = [`| none (the cached query alone, 50 samples) | — | ${median(alone).toFixed(0)} ms | ${worst(alone).toFixed(0)} ms |`];
    for (const { label, query, variables } of cases) {
      const during: number[] = [];
      const took: number[] = [];
      const outcomes = new Set<string>();
      for (let run = 0; run < runs; run++) {
        let done = false;
        const t = performance.now();
        const big = fetch(`${url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': 'hst_test_demo_full' },
          body: JSON.stringify({ query, variables }),
        }).then(async (res) => {
          const body = (await res.json()) as { errors?: { extensions?: { code?: string } }[] };
          took.push(performance.now() - t);
          outcomes.add(`${res.status}${body.errors?.[0] ? ` ${body.errors[0].extensions?.code}` : ''}`);
          done = true;
        });
        while (!done) {
          during.push(await timeSmall());
          await delay(20);
        }
        await big;
        await delay(200);
      }
      rows.push(
        `| ${label} | ${[...outcomes].join(', ')}, ${median(took).toFixed(0)} ms | ${median(during).toFixed(0)} ms | ${worst(during).toFixed(0)} ms (${during.length} samples) |`,
      );
    }
    return rows;
  } finally {
    await gw.close();
    await sim.close();
  }
}

async function cacheAfterTtl(): Promise<string> {
  const sim = await startSimulator({ rooms: 50, participantsPerRoom: 8, rateLimit: { enabled: false, perHour: 1, perMinute: 1 } });
  const gw = createGateway(
    loadConfig({ HYPERSTUDY_API_URL: sim.url, LOG_LEVEL: 'silent', PLANNER: 'off', UPSTREAM_BUDGET: '10000', UPSTREAM_QUOTA_GUARD: 'off' }),
  );
  const url = await gw.listen(0, '127.0.0.1');
  try {
    const before = heapMb();
    await post(url, 'hst_test_demo_full', DASHBOARD, { id: 'exp_movie01' });
    const entries = gw.shared.size;
    const bytes = gw.shared.bytes / MB;
    const full = heapMb();
    await delay(6_500);
    const after = heapMb();
    return `| 50×8 dashboard per parent (planner off), CACHE_TTL_MS 5000 | ${entries} answers, ${bytes.toFixed(1)} MB, heap ${before.toFixed(0)} → ${full.toFixed(0)} MB | ${gw.shared.size} answers, ${(gw.shared.bytes / MB).toFixed(1)} MB, heap ${after.toFixed(0)} MB |`;
  } finally {
    await gw.close();
    await sim.close();
  }
}

async function hugeBodies(): Promise<string> {
  const chunk = Buffer.alloc(64 * 1024, 'x');
  const pour = (res: ServerResponse, total: number): void => {
    let written = 0;
    let closed = false;
    res.once('close', () => (closed = true));
    const write = (): void => {
      while (!closed && written < total) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', write);
      }
      if (!closed) res.end();
    };
    write();
  };
  const upstream = await startScripted((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"status":"success","data":[{"id":"x","name":"');
    pour(res, 200 * MB);
  });
  const gw = createGateway(
    loadConfig({ HYPERSTUDY_API_URL: upstream.url, LOG_LEVEL: 'silent', CACHE_TTL_MS: '0', UPSTREAM_TIMEOUT_MS: '60000' }),
  );
  const url = await gw.listen(0, '127.0.0.1');
  try {
    gc();
    const before = process.memoryUsage().rss / MB;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss / MB)), 10);
    const t = performance.now();
    const answers = (await Promise.all(
      Array.from({ length: 6 }, (_, i) => post(url, 'hst_test_k', `{ experiment(id: "huge${i}") { name } }`)),
    )) as { errors?: { extensions?: { code?: string } }[] }[];
    const ms = performance.now() - t;
    clearInterval(sampler);
    const codes = [...new Set(answers.map((a) => a.errors?.[0]?.extensions?.code))].join(',');
    return `| six 200 MB answers at once (chunked, no length) | ${before.toFixed(0)} MB | ${peak.toFixed(0)} MB | ${ms.toFixed(0)} ms, each ${codes} |`;
  } finally {
    await gw.close();
    await upstream.close();
  }
}

export const hardening: Scenario = {
  name: 'hardening',
  summary:
    'memory and fairness: 20,000 distinct keys, a 300-request fan-out, floods of made-up keys, the largest allowed lists, the cache after its TTL, 200 MB upstream answers',
  async run({ options, progress }) {
    progress('hardening: distinct keys');
    const keys = await distinctKeys(options.quick ? 2_000 : 20_000);
    progress('hardening: fan-out');
    const fan = await fanOut();
    progress('hardening: made-up keys');
    const junk = await junkKeyFlood(options.quick ? 2 : 5);
    progress('hardening: the largest lists');
    const lists = await largestLists(options.quick ? 1 : 5);
    progress('hardening: cache after the TTL');
    const cache = await cacheAfterTtl();
    progress('hardening: huge upstream answers');
    const huge = await hugeBodies();
    const setup = [
      "Gateway and simulator in the bench process (heap read after a full garbage collection; the simulator's request log is cleared before each sample); default gateway settings unless the row says otherwise.",
    ];
    return [
      {
        title: 'Many distinct keys',
        setup,
        table: ['| distinct keys | time | heap after GC | keys whose state is held |', '|---|---|---|---|', ...keys].join('\n'),
      },
      {
        title: "Another key's latency while one key fans out",
        setup,
        table: ["| fairness | another key's request alone | during the fan-out | the fan-out |", '|---|---|---|---|', fan].join('\n'),
      },
      {
        title: 'Floods of made-up keys',
        setup: [
          ...setup,
          'The other key asks a cached tiny query (`experiment(id:) { name }`) every 20 ms, alone for 2 s, then during the flood.',
        ],
        table: [
          "| flood | what it cost upstream | another key's cached query alone, median / worst | during the flood, median / worst |",
          '|---|---|---|---|',
          junk,
        ].join('\n'),
      },
      {
        title: "Another key's latency during the largest lists the limits allow",
        setup: [
          ...setup,
          'Another key\'s cached `{ experiment(id: "exp_movie01") { name } }`, sent every 20 ms while one key\'s request runs (5 runs of each); no upstream latency, so that the work is as dense as it gets.',
        ],
        table: ["| one key's request | its answer | another key's query: median | worst |", '|---|---|---|---|', ...lists].join('\n'),
      },
      {
        title: 'The shared cache after its TTL',
        setup,
        table: ['| shared cache | right after | after the TTL (swept) |', '|---|---|---|', cache].join('\n'),
      },
      {
        title: 'Huge upstream answers',
        setup: [...setup, 'A scripted upstream streams a 200 MB body to every request; UPSTREAM_MAX_BODY_BYTES at its default (32 MiB).'],
        table: ['| huge upstream answers | RSS before | RSS peak | answers |', '|---|---|---|---|', huge].join('\n'),
      },
    ];
  },
};
