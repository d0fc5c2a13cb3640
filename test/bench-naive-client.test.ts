import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { naiveDashboard, recordCount, type NaiveDashboard } from '../bench/naive-client.ts';
import { DASHBOARD } from './helpers/dashboard.ts';
import { nodes, startStack, type Stack } from './helpers/stack.ts';
import { FULL } from './helpers/simulator.ts';

/** The bench's naive REST client is a reference: it must read exactly what the gateway answers. */
describe('the bench’s naive sequential REST client', () => {
  let stack: Stack;
  beforeAll(async () => {
    // More events than one upstream page holds, so that following nextOffset is exercised.
    stack = await startStack({ rooms: 3, participantsPerRoom: 2, eventsPerParticipant: 1_200 }, { UPSTREAM_BUDGET: '1000' });
  });
  afterAll(() => stack.close());

  const fromNaive = (d: NaiveDashboard) => ({
    name: d.experiment.name,
    rooms: d.rooms.map((r) => ({
      roomId: r.record.id,
      status: r.record.status,
      participants: r.participants.map((p) => ({
        participantId: p.record.id,
        completionCode: p.record.completionCode,
        // The gateway's connections give at most 1000 edges, and the total.
        events: {
          totalCount: p.events.length,
          nodes: p.events
            .slice(0, 1000)
            .map((e) => ({ id: e.id, eventType: e.eventType, onset: e.onset, roomId: e.roomId ?? e.sessionId })),
        },
        sparseRatings: p.sparseRatings.map((s) => ({ ratingId: s.ratingId, value: s.value })),
      })),
    })),
  });

  it('returns the same records as the gateway’s dashboard, one request per parent and page', async () => {
    const reply = await stack.gql<{ experiment: { name: string; rooms: unknown } }>(DASHBOARD, { variables: { id: 'exp_movie01' } });
    expect(reply.body.errors).toBeUndefined();
    const experiment = reply.body.data?.experiment;
    const fromGateway = {
      name: experiment?.name,
      rooms: nodes<{ roomId: string; status: string; participants: unknown }>(experiment?.rooms).map((r) => ({
        roomId: r.roomId,
        status: r.status,
        participants: nodes<{ participantId: string; completionCode: string; events: { totalCount: number }; sparseRatings: unknown }>(
          r.participants,
        ).map((p) => ({
          participantId: p.participantId,
          completionCode: p.completionCode,
          events: { totalCount: p.events.totalCount, nodes: nodes(p.events) },
          sparseRatings: nodes(p.sparseRatings),
        })),
      })),
    };

    stack.sim.stats.reset();
    const naive = await naiveDashboard(stack.sim.url, 'exp_movie01', FULL);
    expect(fromNaive(naive)).toEqual(fromGateway);
    expect(recordCount(naive)).toBe(
      3 + 6 + 6 * 1_200 + naive.rooms.flatMap((r) => r.participants).reduce((n, p) => n + p.sparseRatings.length, 0),
    );
    // experiment + rooms + 3 × participants + 6 × (2 pages of events + 1 of sparse ratings)
    expect(naive.requests).toBe(1 + 1 + 3 + 6 * 3);
    expect(stack.sim.stats.total).toBe(naive.requests);
    expect(stack.sim.stats.maxInFlight).toBe(1);
  });
});
