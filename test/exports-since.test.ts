/**
 * Incremental export jobs (issue 21, item 6), over HTTP against the simulator: a job's watermark,
 * `startExport(…, since: watermark)` reading only the pages of what is new (inclusive startTime, the
 * records already delivered at the watermark's instant dropped), other listings' time fields, a row list below
 * rooms, a failed incremental job resumed, and the watermarks it refuses.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { documentOf, encode, printOf } from '../src/exports/watermark.ts';
import { failure, json, passOn, type Scripted, startScripted } from './helpers/scripted.ts';
import { simulatorPerTest } from './helpers/simulator.ts';
import { startGateway, startStack, type Stack } from './helpers/stack.ts';
import { restAll } from './helpers/tables.ts';
import { download, exportDirPerTest, gql, over, startExport, until, type Job } from './helpers/exports.ts';

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
      // Forged, with this export's document: an instant no date holds, a fraction of a millisecond, a print too long.
      ...[1e20, -1e20, 1.5].map((at): [string, string, Record<string, unknown>, string] => [
        EVENTS,
        Buffer.from(JSON.stringify({ v: 1, doc: documentOf(EVENTS, { id: EXP }, null), at, prints: [] })).toString('base64url'),
        { id: EXP },
        notOurs,
      ]),
      [
        EVENTS,
        Buffer.from(JSON.stringify({ v: 1, doc: documentOf(EVENTS, { id: EXP }, null), at: 0, prints: ['x'.repeat(65)] })).toString(
          'base64url',
        ),
        { id: EXP },
        notOurs,
      ],
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

describe('an incremental pull of other listings', () => {
  let stack: Stack;
  const dir = mkdtempSync(join(tmpdir(), 'hsgql-exports-'));

  beforeAll(async () => {
    stack = await startStack(DATA, { EXPORT_DIR: dir });
    // The key is known to the gateway before any job (a job's start checks an unknown one upstream first).
    await stack.gql(`{ experiment(id: "${EXP}") { experimentId } }`);
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['participants', 'joinedAt', 'participantId', 'id'],
    ['recordings', 'startTime', 'recordingId', 'recordingId'],
  ])('reads %s from the watermark by their own time field (%s)', async (field, instant, column, idField) => {
    const query = `query($id: ID!) { experiment(id: $id) { ${field} { edges { node { ${column} ${instant} } } } } }`;
    const records = await restAll((path) => stack.rest(path), `/data/${field}/experiment/${EXP}`);
    const times = [...new Set(records.map((r) => Date.parse(String(r[instant]))))].sort((a, b) => a - b);
    const at = times[Math.floor(times.length / 2)] as number;
    // Delivered: the first record at the watermark's instant (the others at it are not).
    const delivered = records.find((r) => Date.parse(String(r[instant])) === at) as Rec;
    const since = encode(documentOf(query, { id: EXP }, null), { at, prints: [printOf(delivered)] });
    const expected = records.filter((r) => Date.parse(String(r[instant])) >= at && r !== delivered);
    expect(expected.length).toBeGreaterThan(0);

    stack.sim.stats.reset();
    const job = await finished(stack, since, query);
    expect(job).toMatchObject({ status: 'SUCCEEDED', rows: expected.length, requestsDone: 2 });
    expect(stack.sim.stats.byPath(true)).toEqual({
      [`/api/v3/experiments/${EXP}`]: 1,
      [`/api/v3/data/${field}/experiment/${EXP}?limit=1000&offset=0&startTime=${encodeURIComponent(new Date(at).toISOString())}`]: 1,
    });
    const file = await download(stack.url, job.downloadUrl ?? '');
    const ids = file.text
      .trim()
      .split('\r\n')
      .slice(1)
      .map((line) => line.split(',')[0]);
    expect(ids).toEqual(expected.map((r) => String(r[idField])));
  });

  it('keeps the query’s own startTime when it is later than the watermark’s', async () => {
    const query = `query($id: ID!, $from: DateTime) { experiment(id: $id) { experimentId events(startTime: $from) { edges { node { id eventType timestamp } } } } }`;
    const events = await restAll((path) => stack.rest(path), `/data/events/experiment/${EXP}`);
    const times = events.map((e) => Date.parse(String(e.timestamp))).sort((a, b) => a - b);
    const [early, late] = [times[100] as number, times[1100] as number];
    const variables = { id: EXP, from: new Date(late).toISOString() };
    const since = encode(documentOf(query, variables, null), { at: early, prints: [] });
    stack.sim.stats.reset();
    const started = await startExport(stack.url, query, 'CSV', variables, undefined, since);
    const { job } = await until(stack.url, started.id, over);
    expect(job).toMatchObject({ status: 'SUCCEEDED', rows: events.filter((e) => Date.parse(String(e.timestamp)) >= late).length });
    expect(stack.sim.stats.byPath(true)).toEqual({
      [`/api/v3/experiments/${EXP}`]: 1,
      [`/api/v3/data/events/experiment/${EXP}?limit=1000&offset=0&startTime=${encodeURIComponent(new Date(late).toISOString())}`]: 1,
    });
  });

  it('past the query’s own endTime, finds nothing new (its last instant read, and dropped)', async () => {
    const query = `query($id: ID!, $to: DateTime) { experiment(id: $id) { experimentId events(endTime: $to) { edges { node { id eventType timestamp } } } } }`;
    const events = await restAll((path) => stack.rest(path), `/data/events/experiment/${EXP}`);
    const times = events.map((e) => Date.parse(String(e.timestamp))).sort((a, b) => a - b);
    const [end, at] = [times[100] as number, times[1100] as number];
    const variables = { id: EXP, to: new Date(end).toISOString() };
    stack.sim.stats.reset();
    const started = await startExport(
      stack.url,
      query,
      'CSV',
      variables,
      undefined,
      encode(documentOf(query, variables, null), { at, prints: [] }),
    );
    const { job } = await until(stack.url, started.id, over);
    expect(job).toMatchObject({ status: 'SUCCEEDED', rows: 0, error: null });
    expect(decoded(job.watermark).at).toBe(at);
    const iso = encodeURIComponent(new Date(end).toISOString());
    expect(stack.sim.stats.byPath(true)).toEqual({
      [`/api/v3/experiments/${EXP}`]: 1,
      [`/api/v3/data/events/experiment/${EXP}?endTime=${iso}&limit=1000&offset=0&startTime=${iso}`]: 1,
    });
  });

  it('reads a row list below rooms from the watermark, the rooms read in full as its context', async () => {
    const query = `query($id: ID!) { experiment(id: $id) { rooms { edges { node { roomId events { edges { node { id eventType } } } } } } } }`;
    const first = await finished(stack, undefined, query);
    const ids = await record(stack, [
      { eventType: 'custom.nested', timestamp: '2032-01-01T00:00:00.000Z' },
      { eventType: 'custom.nested', timestamp: '2032-01-01T00:00:01.000Z' },
    ]);
    stack.sim.stats.reset();
    const second = await finished(stack, first.watermark ?? '', query);
    expect(second).toMatchObject({ status: 'SUCCEEDED', rows: 2 });
    // The context (the experiment, its rooms) and one page of the events from the watermark's instant, lifted to the experiment.
    expect(stack.sim.stats.byPath(true)).toEqual({
      [`/api/v3/experiments/${EXP}`]: 1,
      [`/api/v3/data/rooms/experiment/${EXP}?limit=5000&offset=0`]: 1,
      [`/api/v3/data/events/experiment/${EXP}?limit=1000&offset=0&startTime=${encodeURIComponent(new Date(decoded(first.watermark).at ?? 0).toISOString())}`]: 1,
    });
    const file = await download(stack.url, second.downloadUrl ?? '');
    const room = file.text.split('\r\n')[1]?.split(',')[0];
    expect(file.text).toBe(
      `experiment.rooms.roomId,experiment.rooms.events.id,experiment.rooms.events.eventType\r\n${ids.map((id) => `${String(room)},${id},custom.nested\r\n`).join('')}`,
    );
  });
});

describe('an incremental job that fails mid-way', () => {
  const simulator = simulatorPerTest();
  const exportDir = exportDirPerTest();
  const closing: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    await Promise.all(closing.splice(0).map((close) => close()));
  });

  it('resumed, reads only the pages it lacks and ends with the watermark of every page, those on disk included', async () => {
    // Newest first: the latest instant is on the first page, read before the failure and not again.
    const query = `query($id: ID!) { experiment(id: $id) { experimentId events(order: DESC) { edges { node { id eventType timestamp } } } } }`;
    const sim = await simulator({ rooms: 5, participantsPerRoom: 4, eventsPerParticipant: 250 });
    const events = await restAll(async (path) => {
      const res = await fetch(`${sim.url}${path}`, { headers: { 'x-api-key': 'hst_test_demo_full' } });
      return (await res.json()) as { data: Rec[] };
    }, `/data/events/experiment/${EXP}?order=desc`);
    const time = (e: Rec): number => Date.parse(String(e.timestamp));
    const at = time(events[3500] as Rec);
    const fresh = events.filter((e) => time(e) >= at);
    const latest = time(events[0] as Rec);
    sim.stats.reset();
    let failing = true;
    const base = sim.url.replace(/\/api\/v3$/, '');
    const upstream: Scripted = await startScripted(async (req, res) => {
      if (failing && req.url?.includes('offset=2000')) return json(res, 503, failure('SERVICE_UNAVAILABLE', 'down for a moment'));
      await passOn(base, req, res);
    });
    closing.push(() => upstream.close());
    const { gateway, url } = await startGateway({
      HYPERSTUDY_API_URL: upstream.url,
      EXPORT_DIR: exportDir(),
      CACHE_TTL_MS: '0',
      UPSTREAM_RETRIES: '0',
      UPSTREAM_PAGE_CONCURRENCY: '1',
      EXPORT_RETRIES: '0',
    });
    closing.push(() => gateway.close());
    const since = encode(documentOf(query, { id: EXP }, null), { at, prints: [] });
    const started = await startExport(url, query, 'CSV', { id: EXP }, undefined, since);
    const { job: failed } = await until(url, started.id, over);
    expect(failed).toMatchObject({ status: 'FAILED', rows: 2000, watermark: null });

    failing = false;
    await gql(url, `mutation($id: ID!) { resumeExport(id: $id) { status } }`, { id: started.id });
    const { job } = await until(url, started.id, over);
    expect(job).toMatchObject({ status: 'SUCCEEDED', rows: fresh.length });
    const offsets = sim.stats.requests
      .filter((r) => r.path === `/api/v3/data/events/experiment/${EXP}`)
      .map((r) => {
        const q = new URLSearchParams(r.query);
        return [q.get('offset'), q.get('startTime')];
      });
    const from = new Date(at).toISOString();
    expect(offsets).toEqual([
      ['0', from],
      ['1000', from],
      ['2000', from],
      ['3000', from],
    ]);
    const mark = decoded(job.watermark);
    expect([mark.at, [...mark.prints].sort()]).toEqual([
      latest,
      events
        .filter((e) => time(e) === latest)
        .map((e) => printOf(e))
        .sort(),
    ]);
    const file = await download(url, job.downloadUrl ?? '');
    expect(file.text).toBe(HEADER + fresh.map((e) => `${EXP},${String(e.id)},${String(e.eventType)},${String(e.timestamp)}\r\n`).join(''));
  });
});
