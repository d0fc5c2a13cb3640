/**
 * `npm run bench:profile -- [--dashboards N] [--warm N] [--out FILE] [--heap | --retained] [CHECKOUT]`: a
 * CPU profile of the gateway (of this checkout, or CHECKOUT) in its steady state under cold 20×4
 * dashboards sent one at a time (the `cpu` scenario's), taken through the inspector after `--warm`
 * unprofiled dashboards (1,500 by default: V8 compiles the gateway's functions through its first
 * ~1,000), and the share of its main thread's busy samples by kind of work. The samples are
 * wall-clock: on a loaded machine compare shares, not milliseconds (`npm run bench -- cpu` measures CPU time). With `--heap`, what the gateway
 * allocates per dashboard instead (the inspector's sampling heap profiler, garbage included), by the
 * function that allocated it: what makes the garbage collector work. With `--retained`, what V8's young
 * collector keeps of each dashboard: after each one, with no request in flight, the gateway (started with
 * `--expose-gc`) runs two minor collections; the first copies what it finds alive, the second promotes
 * what is still alive to the old generation. A heap snapshot taken then (after a full collection) holds
 * none of the dashboard's records: what is kept is kept by the scavenger only (docs/measured.md).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DASHBOARD } from '../test/helpers/dashboard.ts';
import { connectInspector, retention, type Retention } from '../test/helpers/inspector.ts';
import { Children, ROOT } from './lib/children.ts';
import { median } from './lib/format.ts';
import { graphqlRequest, send } from './lib/http.ts';
import { startGateway, startSimulator } from './lib/stack.ts';
import { DASHBOARD_SETTINGS } from './scenarios/dashboards.ts';
import { dashboardCheck } from './scenarios/throughput.ts';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface Profile {
  nodes: { id: number; callFrame: CallFrame }[];
  samples: number[];
}

/** The kind of work a sample's own frame does. */
const KINDS: [string, (f: CallFrame) => boolean][] = [
  ['garbage collection', (f) => f.functionName === '(garbage collector)'],
  [
    'JSON.parse of upstream bodies',
    (f) => /upstream\/(envelope|json)\.ts$/.test(f.url) && /^(parseEnvelope|parseJsonBytes|inPieces|parseRun)$/.test(f.functionName),
  ],
  [
    'scan of upstream bodies for cut points',
    (f) => /upstream\/json\.ts$/.test(f.url) && /^(scan|headOf|exactEnd|tailKeysUnique|elementMarker)$/.test(f.functionName),
  ],
  ['upstream bodies: bytes to string', (f) => f.url === 'node:buffer' && f.functionName === 'toString'],
  ['the answer: JSON serialization', (f) => /result-processor\/stringify\.js$|use-json-answer\.ts$/.test(f.url)],
  [
    'socket writes (encoding the answer)',
    (f) => f.url === '' && /^(writeUtf8String|writeLatin1String|writeString|writev|writeBuffer)$/.test(f.functionName),
  ],
  ['graphql-jit: the compiled query', (f) => /graphql-jit/.test(f.url) || (f.url === '' && f.lineNumber > 0)],
  ['planner, loaders, record views', (f) => /src\/(loaders|schema)\/|upstream\/values\.ts$/.test(f.url)],
  ['HTTP: undici, node:http, streams', (f) => /undici|node:net|node:_http|stream|node:events|wasm/.test(f.url)],
  ['Yoga, envelop, graphql', (f) => /graphql-yoga|@envelop|@whatwg-node|\/graphql\//.test(f.url)],
];

interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

/** Megabytes allocated per dashboard, in all and by the allocating function (the largest `top`). */
function allocations(head: HeapNode, dashboards: number, top = 15): string {
  const bytes = new Map<string, number>();
  let total = 0;
  const walk = (node: HeapNode): void => {
    const f = node.callFrame;
    const where =
      `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/\/.*?\/(src|bench|test)\//, '$1/')}`.trim();
    total += node.selfSize;
    bytes.set(where, (bytes.get(where) ?? 0) + node.selfSize);
    for (const child of node.children) walk(child);
  };
  walk(head);
  const mb = (n: number): string => (n / dashboards / 1e6).toFixed(2);
  const rows = [...bytes]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([where, n]) => `| ${where} | ${mb(n)} |`);
  return [`Allocated per dashboard: ${mb(total)} MB.`, '', '| allocating function | MB per dashboard |', '| --- | --- |', ...rows].join(
    '\n',
  );
}

function breakdown(profile: Profile): string {
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const counts = new Map<string, number>();
  let busy = 0;
  for (const id of profile.samples) {
    const frame = frames.get(id);
    if (!frame || frame.functionName === '(idle)') continue;
    busy++;
    const kind = KINDS.find(([, test]) => test(frame))?.[0] ?? 'other';
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  const rows = [...counts].sort((a, b) => b[1] - a[1]).map(([kind, n]) => `| ${kind} | ${((100 * n) / busy).toFixed(0)}% |`);
  return ['| work (own time of the sampled frame) | share of busy samples |', '| --- | --- |', ...rows].join('\n');
}

function retentionTable(rows: readonly Retention[]): string {
  const mb = (pick: (r: Retention) => number): string => (median(rows.map(pick)) / 1e6).toFixed(2);
  return [
    '| per dashboard (median) | |',
    '| --- | --- |',
    `| young generation in use when it ended | ${mb((r) => r.allocated)} MB |`,
    `| alive at a minor collection after it | ${mb((r) => r.kept)} MB |`,
    `| promoted by a second one | ${mb((r) => r.promoted)} MB |`,
    `| the first collection's pause | ${median(rows.map((r) => r.pauseMs)).toFixed(1)} ms |`,
  ].join('\n');
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    dashboards: { type: 'string', default: '80' },
    out: { type: 'string' },
    heap: { type: 'boolean', default: false },
    retained: { type: 'boolean', default: false },
    warm: { type: 'string', default: '1500' },
  },
});
const checkout = resolve(positionals[0] ?? ROOT);
const count = Number(values.dashboards);
const warm = Number(values.warm);
if (!Number.isInteger(warm) || warm < 0) throw new Error(`--warm: a number of dashboards, not ${values.warm}`);
const children = new Children(mkdtempSync(join(tmpdir(), 'hsgql-profile-')));
try {
  const simulator = await startSimulator(children, { rooms: 20, participantsPerRoom: 4, eventsPerParticipant: 60, latencyMs: 0 });
  const gateway = await startGateway(
    children,
    'gateway',
    simulator.url,
    { ...DASHBOARD_SETTINGS, NODE_OPTIONS: values.retained ? '--inspect=127.0.0.1:0 --expose-gc' : '--inspect=127.0.0.1:0' },
    checkout,
  );
  const [, inspector = ''] = await gateway.child.waitForOutput(/Debugger listening on (ws:\/\/\S+)/);
  const dashboard = async (): Promise<void> => {
    const reply = await send(`${gateway.origin}/graphql`, graphqlRequest(DASHBOARD, { id: 'exp_movie01' }));
    const problem = dashboardCheck(reply.status, reply.text);
    if (problem) throw new Error(`profile: ${problem}`);
  };
  // Ten at a time, as a warm-up needs no order: V8 compiles the gateway's functions through its first ~1,000 dashboards.
  let sent = 0;
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (sent < warm) {
        sent++;
        await dashboard();
      }
    }),
  );
  const inspected = await connectInspector(inspector);
  const call = inspected.call;
  if (values.retained) {
    const kept: Retention[] = [];
    await retention(inspected);
    for (let i = 0; i < count; i++) {
      await dashboard();
      kept.push(await retention(inspected));
    }
    inspected.close();
    if (values.out) writeFileSync(values.out, JSON.stringify(kept));
    console.log(
      `What the young collector keeps of ${checkout}'s dashboards: ${count} one at a time after ${warm}, each followed by two minor collections.\n`,
    );
    console.log(retentionTable(kept));
  } else if (values.heap) {
    await call('HeapProfiler.enable');
    const sampling = { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true };
    await call('HeapProfiler.startSampling', sampling);
    for (let i = 0; i < count; i++) await dashboard();
    const { profile } = (await call('HeapProfiler.stopSampling')) as { profile: { head: HeapNode } };
    inspected.close();
    if (values.out) writeFileSync(values.out, JSON.stringify(profile));
    console.log(`Allocation profile of ${checkout}: ${count} dashboards one at a time after ${warm} unprofiled.\n`);
    console.log(allocations(profile.head, count));
  } else {
    await call('Profiler.enable');
    await call('Profiler.setSamplingInterval', { interval: 200 });
    await call('Profiler.start');
    for (let i = 0; i < count; i++) await dashboard();
    const { profile } = (await call('Profiler.stop')) as { profile: Profile };
    inspected.close();
    if (values.out) writeFileSync(values.out, JSON.stringify(profile));
    console.log(`Steady-state profile of ${checkout}: ${count} dashboards one at a time after ${warm} unprofiled.\n`);
    console.log(breakdown(profile));
  }
} finally {
  await children.stopAll();
}
