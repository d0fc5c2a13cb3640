/**
 * Incremental export jobs (issue 21, item 6), over HTTP against the simulator: a job's watermark,
 * `startExport(…, since: watermark)` reading only the pages of what is new (inclusive startTime, the
 * records already delivered at the watermark's instant dropped), and the watermarks it refuses.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentOf, encode } from '../src/exports/watermark.ts';
import { startStack, type Stack } from './helpers/stack.ts';
import { restAll } from './helpers/tables.ts';
import { download, gql, over, startExport, until, type Job } from './helpers/exports.ts';

const EXP = 'exp_movie01';
const EVENTS = `query($id: ID!) { experiment(id: $id) { experimentId events { edges { node { id eventType timestamp } } } } }`;
/** 2 rooms × 2 participants × 300 events: 1,200 events, two pages of the experiment's events listing. */
const DATA = { rooms: 2, participantsPerRoom: 2, eventsPerParticipant: 300 };
const HEADER = 'experiment.experimentId,experiment.events.id,experiment.events.eventType,experiment.events.timestamp\r\n';

type Rec = Record<string, unknown>;
const decoded = (watermark: string | null): { v: number; doc: string; at: number | null; prints: string[] } =>
  JSON.parse(Buffer.from(watermark ?? '', 'base64url').toString('utf8')) as never;
const csvOf = (events: Rec[]): string =>
  HEADER + events.map((e) => `${EXP},${String(e.id)},${String(e.eventType)},${String(e.timestamp)}\r\n`).join('');

async function finished(stack: Stack, since?: string, query = EVENTS): Promise<Job> {
  const started = await startExport(stack.url, query, 'CSV', { id: EXP }, undefined, since);
  const { job } = await until(stack.url, started.id, over);
  expect(job.error).toBeNull();
  return job;
}

async function record(stack: Stack, events: { eventType: string; timestamp: string }[]): Promise<string[]> {
  const participants = await restAll((path) => stack.rest(path), `/data/participants/experiment/${EXP}`);
  const p = participants[0] as Rec;
  const answer = await gql<{ recordEvents: { recorded: number; eventIds: string[] } }>(
    stack.url,
    `mutation($e: [EventInput!]!) { recordEvents(events: $e) { recorded eventIds } }`,
    { e: events.map((e) => ({ experimentId: EXP, roomId: p.roomId, participantId: p.id, category: 'SYSTEM', ...e })) },
  );
  expect(answer.data?.recordEvents.recorded).toBe(events.length);
  return answer.data?.recordEvents.eventIds ?? [];
}

describe('an incremental pull', () => {
  let stack: Stack;
  let all: Rec[];
  let first: Job;
  let latest: string;
  const dir = mkdtempSync(join(tmpdir(), 'hsgql-exports-'));

  beforeAll(async () => {
    stack = await startStack(DATA, { EXPORT_DIR: dir });
    all = await restAll((path) => stack.rest(path), `/data/events/experiment/${EXP}`);
    latest = all.map((e) => String(e.timestamp)).reduce((a, b) => (Date.parse(a) >= Date.parse(b) ? a : b));
    first = await finished(stack);
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives a finished job a watermark: the latest instant of its records and a print of each record at it', () => {
    expect(first).toMatchObject({ status: 'SUCCEEDED', rows: 1200 });
    const mark = decoded(first.watermark);
    const atLatest = all.filter((e) => Date.parse(String(e.timestamp)) === Date.parse(latest)).length;
    expect(mark).toEqual({
      v: 1,
      doc: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/) as unknown,
      at: Date.parse(latest),
      prints: expect.any(Array) as unknown,
    });
    expect(mark.prints).toHaveLength(atLatest);
    expect(new Set(mark.prints).size).toBe(atLatest);
  });

  it('returns exactly the records written since, at the cost of the pages of what is new, none lost or repeated at the watermark’s instant', async () => {
    // One at the watermark's very instant (after the job: an `instant + 1 ms` would lose it), two later.
    const later = new Date(Date.parse(latest) + 1000).toISOString();
    const ids = await record(stack, [
      { eventType: 'custom.same-instant', timestamp: latest },
      { eventType: 'custom.later', timestamp: later },
      { eventType: 'custom.later', timestamp: later },
    ]);
    const now = await restAll((path) => stack.rest(path), `/data/events/experiment/${EXP}`);
    const fresh = now.filter((e) => ids.includes(String(e.id)));
    expect(fresh).toHaveLength(3);

    stack.sim.stats.reset();
    const second = await finished(stack, first.watermark ?? '');
    expect(second).toMatchObject({ status: 'SUCCEEDED', rows: 3, requestsPlanned: 2, requestsDone: 2 });
    // The experiment (the context above the rows) and one page of the events from the watermark's instant on.
    expect(stack.sim.stats.byPath(true)).toEqual({
      [`/api/v3/experiments/${EXP}`]: 1,
      [`/api/v3/data/events/experiment/${EXP}?limit=1000&offset=0&startTime=${encodeURIComponent(new Date(Date.parse(latest)).toISOString())}`]: 1,
    });
    const file = await download(stack.url, second.downloadUrl ?? '');
    // The records REST has beyond the first job's, in the listing's order.
    expect(file.text).toBe(csvOf(now.filter((e) => !all.some((a) => a.id === e.id))));
    expect(file.text).toBe(csvOf(fresh));
    expect(decoded(second.watermark)).toMatchObject({ doc: decoded(first.watermark).doc, at: Date.parse(later) });
    expect(decoded(second.watermark).prints).toHaveLength(2);

    // Nothing new: no row, and the same watermark (the records at its instant are all delivered).
    stack.sim.stats.reset();
    const third = await finished(stack, second.watermark ?? '');
    expect(third).toMatchObject({ status: 'SUCCEEDED', rows: 0, requestsDone: 2 });
    expect(third.watermark).toBe(second.watermark);
    expect((await download(stack.url, third.downloadUrl ?? '')).text).toBe(HEADER);
  });

  it('refuses a malformed or foreign watermark, and rows that are no data listing’s, with BAD_USER_INPUT before any upstream request', async () => {
    stack.sim.stats.reset();
    const notOurs = "'since' is not an export's watermark: give the watermark of a SUCCEEDED job as it is";
    const cases: [string, string, Record<string, unknown>, string][] = [
      [EVENTS, 'not a watermark!', { id: EXP }, notOurs],
      [EVENTS, Buffer.from('{"at":1}').toString('base64url'), { id: EXP }, notOurs],
      [
        `query($id: ID!) { experiment(id: $id) { events { edges { node { id } } } } }`,
        first.watermark ?? '',
        { id: EXP },
        "'since' is the watermark of another export: its query, variables or operation name differ from this one's (a watermark continues the export it came from)",
      ],
      [
        EVENTS,
        first.watermark ?? '',
        { id: 'exp_other' },
        "'since' is the watermark of another export: its query, variables or operation name differ from this one's (a watermark continues the export it came from)",
      ],
    ];
    // Watermarks these documents would have, were they incremental.
    const own = (query: string): string => encode(documentOf(query, { id: EXP }, null), { at: 0, prints: [] });
    const windowed = `query($id: ID!) { experiment(id: $id) { events(first: 10) { edges { node { id } } } } }`;
    const deployments = `query($id: ID!) { experiment(id: $id) { deployments { edges { node { deploymentId } } } } }`;
    const single = `query($id: ID!) { experiment(id: $id) { experimentId name } }`;
    cases.push(
      [
        windowed,
        own(windowed),
        { id: EXP },
        "'since' needs every record of 'experiment.events': leave out its window (first, last, after, before)",
      ],
      [
        deployments,
        own(deployments),
        { id: EXP },
        "'since' needs the rows to be the records of a data listing with a time field (events, ratings, recordings, …): 'experiment.deployments' is not a data listing of an experiment, room or participant",
      ],
      [
        single,
        own(single),
        { id: EXP },
        "'since' needs the rows to be the records of a data listing with a time field (events, ratings, recordings, …): 'the operation' is not one",
      ],
    );
    for (const [query, since, variables, message] of cases) {
      const answer = await gql(
        stack.url,
        `mutation($q: String!, $v: JSON, $s: String) { startExport(query: $q, variables: $v, format: CSV, since: $s) { id } }`,
        { q: query, v: variables, s: since },
      );
      expect(answer.errors?.map((e) => [e.message, e.extensions?.code, e.extensions?.argument])).toEqual([
        [message, 'BAD_USER_INPUT', 'since'],
      ]);
    }
    expect(stack.sim.stats.total).toBe(0);
  });
});
