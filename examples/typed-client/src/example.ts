import { createClient, type Client } from './client';
import { ExperimentOverviewDocument, ExperimentsDocument, ParticipantEventsDocument } from './gql/graphql';
import type { JsonValue } from './json';

/** The names of a JSON object's keys: a JSON field is narrowed before use. */
const keysOf = (value: JsonValue | null): string[] =>
  value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.keys(value) : [];

/**
 * A tour of the graph as a front end walks it: the experiments, one of them by the node id the list
 * handed out, and a participant's events by the participant's node id (which carries its room).
 */
export async function tour(client: Client) {
  const list = await client.execute(ExperimentsDocument, {});
  const first = list.data?.experiments?.edges[0]?.node;
  if (!first) throw new Error(`No experiment: ${list.errors.map((e) => e.message).join('; ')}`);
  // DateTime arrives as an ISO string.
  const created: string | null = first.createdAt;

  const overview = await client.execute(ExperimentOverviewDocument, { id: first.id });
  const experiment = overview.data?.experiment;
  const room = experiment?.rooms?.edges[0]?.node;
  const person = room?.participants?.edges[0]?.node;
  if (!experiment || !room || !person) throw new Error('The experiment has no participant to show');

  const events = await client.execute(ParticipantEventsDocument, { id: person.id, first: 3 });
  const participant = events.data?.participant;
  return {
    experiment: { id: experiment.id, name: experiment.name, created, roles: keysOf(experiment.roles) },
    rooms: experiment.rooms?.totalCount ?? 0,
    participant: participant
      ? {
          participantId: participant.participantId,
          roomId: participant.roomId,
          events: participant.events?.totalCount ?? 0,
          // An event category is a string: known ones and any the upstream adds.
          categories: (participant.events?.edges ?? []).map((e) => e.node.category ?? 'unknown'),
        }
      : null,
  };
}

/** `tour` against a gateway. */
export const run = (url: string, apiKey: string) => tour(createClient({ url, apiKey }));
