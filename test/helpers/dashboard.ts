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
 * Sequential rounds on the critical path: a request is in round n+1 when it started after a request of
 * round n had ended (so could have waited for it); the answer is the deepest round.
 */
export function sequentialRounds(requests: readonly RequestRecord[]): number {
  const sorted = [...requests].sort((a, b) => a.startedAt - b.startedAt);
  const rounds: number[] = [];
  sorted.forEach((r, i) => {
    let round = 1;
    for (let j = 0; j < i; j++) {
      const q = sorted[j];
      if (q && q.endedAt <= r.startedAt) round = Math.max(round, (rounds[j] ?? 1) + 1);
    }
    rounds.push(round);
  });
  return Math.max(0, ...rounds);
}
