import { describe, expect, it } from 'vitest';
import { ListingFetcher, NO_META, type ListingSource, type Page } from '../src/loaders/fetch.ts';
import type { Rec } from '../src/upstream/values.ts';
import { Planner } from '../src/loaders/planner.ts';

/** A listing fetcher over fixed records per path, counting the windows asked for. */
function fakeFetcher(listings: Record<string, Rec[]>) {
  const calls: string[] = [];
  const fetcher = {
    async window(source: ListingSource, offset: number, limit: number): Promise<Page> {
      calls.push(`${source.path} ${offset}+${limit}`);
      const all = listings[source.path] ?? [];
      return { records: all.slice(offset, offset + limit), total: all.length, offset, meta: NO_META };
    },
    // The real `all`, over this fake's windows.
    all: ListingFetcher.prototype.all,
  } as unknown as ListingFetcher;
  return { fetcher, calls };
}

const events = (room: string, participant: string, n: number, legacy = false): Rec[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `${participant}-${i}`,
    participantId: participant,
    ...(legacy ? { sessionId: room } : { roomId: room }),
  }));

describe('Planner', () => {
  it('serves a scope from its own complete listing as is, even records that name no room', async () => {
    const own = [
      { id: 'a', participantId: 'p1' },
      { id: 'b', participantId: 'p1' },
    ];
    const { fetcher, calls } = fakeFetcher({ '/data/events/participant/p1': own });
    const planner = new Planner(fetcher, true);
    planner.prefetch({ type: 'events', params: {}, scope: { kind: 'participant', id: 'p1', roomId: 'r1' } }, 1000);
    expect(
      (
        await planner.records({
          type: 'events',
          params: {},
          scope: { kind: 'participant', id: 'p1', roomId: 'r1' },
          experimentId: 'e1',
          pageLimit: 1000,
        })
      )?.records,
    ).toEqual(own);
    expect(calls).toEqual(['/data/events/participant/p1 0+1000']);
  });

  it('lifts siblings of one room to the room listing and splits it, legacy sessionId records included', async () => {
    const room = [...events('r1', 'p1', 3), ...events('r1', 'p2', 2, true), ...events('r1', 'p3', 1)];
    const { fetcher, calls } = fakeFetcher({ '/data/events/room/r1': room });
    const planner = new Planner(fetcher, true);
    const ask = (p: string) =>
      planner.records({
        type: 'events',
        params: {},
        scope: { kind: 'participant', id: p, roomId: 'r1' },
        experimentId: null,
        pageLimit: 1000,
      });
    const [p1, p2] = await Promise.all([ask('p1'), ask('p2')]);
    expect(p1?.records.map((r) => r.id)).toEqual(['p1-0', 'p1-1', 'p1-2']);
    expect(p2?.records.map((r) => r.id)).toEqual(['p2-0', 'p2-1']);
    expect(calls).toEqual(['/data/events/room/r1 0+1000']);
    expect(planner.explain()).toEqual([
      { listing: { type: 'events', params: {}, scope: { kind: 'room', id: 'r1' } }, decision: 'lifted', parents: 2, total: 6 },
    ]);
    // A later sibling is served from the same listing without asking again.
    expect((await ask('p3'))?.records.map((r) => r.id)).toEqual(['p3-0']);
    expect(calls).toHaveLength(1);
  });

  it('keeps per-parent fetching when the wider listing needs more pages than there are parents', async () => {
    const room = [...events('r1', 'p1', 1500), ...events('r1', 'p2', 1500)];
    const { fetcher, calls } = fakeFetcher({ '/data/events/room/r1': room });
    const planner = new Planner(fetcher, true);
    const ask = (p: string) =>
      planner.records({
        type: 'events',
        params: {},
        scope: { kind: 'participant', id: p, roomId: 'r1' },
        experimentId: null,
        pageLimit: 1000,
      });
    expect(await Promise.all([ask('p1'), ask('p2')])).toEqual([null, null]);
    expect(calls).toEqual(['/data/events/room/r1 0+1000']);
    expect(planner.explain()).toEqual([
      { listing: { type: 'events', params: {}, scope: { kind: 'room', id: 'r1' } }, decision: 'per-parent', parents: 2, total: 3000 },
    ]);
  });

  it('groups a complete wider listing once per operation, however many parents it serves', async () => {
    const experiment = [...events('r1', 'p1', 2), ...events('r1', 'p2', 1), ...events('r2', 'p3', 2)];
    const { fetcher, calls } = fakeFetcher({ '/data/events/experiment/e1': experiment });
    const planner = new Planner(fetcher, true);
    planner.prefetch({ type: 'events', params: {}, scope: { kind: 'experiment', id: 'e1' } }, 1000);
    const ask = (id: string, roomId: string) =>
      planner.records({ type: 'events', params: {}, scope: { kind: 'participant', id, roomId }, experimentId: 'e1', pageLimit: 1000 });
    const first = await ask('p1', 'r1');
    const [again, other] = await Promise.all([ask('p1', 'r1'), ask('p3', 'r2')]);
    expect(first?.records.map((r) => r.id)).toEqual(['p1-0', 'p1-1']);
    expect(other?.records.map((r) => r.id)).toEqual(['p3-0', 'p3-1']);
    // The same slice of the same grouping, not a regrouping for each request.
    expect(again?.records).toBe(first?.records);
    expect(calls).toEqual(['/data/events/experiment/e1 0+1000']);
  });

  it('does nothing when turned off', async () => {
    const { fetcher, calls } = fakeFetcher({});
    const planner = new Planner(fetcher, false);
    planner.prefetch({ type: 'events', params: {}, scope: { kind: 'experiment', id: 'e1' } }, 1000);
    expect(
      await planner.records({ type: 'events', params: {}, scope: { kind: 'room', id: 'r1' }, experimentId: 'e1', pageLimit: 1000 }),
    ).toBeNull();
    expect(calls).toEqual([]);
  });
});
