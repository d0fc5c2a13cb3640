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
 * for another starts a whole latency later. Rounds are the clusters of start times separated by at
 * least half the latency (CPU work shared by the in-process simulator and gateway does not make an
 * independent request look dependent, as comparing start and end times would).
 */
export function sequentialRounds(requests: readonly RequestRecord[], latencyMs: number): number {
  const starts = requests.map((r) => r.startedAt).sort((a, b) => a - b);
  let rounds = starts.length > 0 ? 1 : 0;
  for (let i = 1; i < starts.length; i++) if ((starts[i] ?? 0) - (starts[i - 1] ?? 0) >= latencyMs / 2) rounds++;
  return rounds;
}
