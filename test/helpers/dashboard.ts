import type { RequestRecord } from '../../src/simulator/stats.ts';

/** The dashboard query of issue 4: experiment → rooms → participants → events + sparse ratings. */
export const DASHBOARD = `query Dashboard($id: ID!) {
  experiment(id: $id) {
    name
    rooms(first: 1000) {
      totalCount
      edges { node {
        roomId status
        participants(first: 100) { edges { node {
          participantId completionCode
          events(first: 1000) { totalCount edges { cursor node { id eventType onset roomId } } }
          sparseRatings(first: 1000) { totalCount edges { node { ratingId value } } }
        } } }
      } }
    }
  }
}`;

/**
 * Sequential rounds of upstream requests: with the simulator adding `latencyMs` to every answer, the
 * requests of one round start within a few milliseconds of each other, and a request that had to wait
 * for another starts a whole latency later, after that one ended. A request starts a new round when it
 * starts at least half the latency after the one before it and after a request of the current round
 * ended (as one that waited for another must): CPU work shared by the in-process simulator and gateway
 * then makes an independent request look dependent only if it delays its start past a whole latency
 * (start times alone: half of one; end times alone: any delay of the end).
 */
export function sequentialRounds(requests: readonly RequestRecord[], latencyMs: number): number {
  const sorted = [...requests].sort((a, b) => a.startedAt - b.startedAt);
  let rounds = sorted.length > 0 ? 1 : 0;
  let firstEnd = sorted[0]?.endedAt ?? 0;
  for (let i = 1; i < sorted.length; i++) {
    const { startedAt, endedAt } = sorted[i] as RequestRecord;
    if (startedAt - (sorted[i - 1]?.startedAt ?? 0) >= latencyMs / 2 && startedAt >= firstEnd) {
      rounds++;
      firstEnd = endedAt;
    } else firstEnd = Math.min(firstEnd, endedAt);
  }
  return rounds;
}
