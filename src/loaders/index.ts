import DataLoader from 'dataloader';
import { UpstreamError } from '../upstream/errors.ts';
import { routes } from '../upstream/routes.ts';
import type { UpstreamSession } from '../upstream/session.ts';
import { roomOf, str, type Rec } from '../upstream/values.ts';
import { dataSource, ListingFetcher, mapBounded, objectOf } from './fetch.ts';
import { Planner } from './planner.ts';

const participantKey = (roomId: string, id: string): string => `${roomId}\u0000${id}`;

/** The per-operation loaders: every back-link and by-id lookup goes through one of these. */
export function createLoaders(session: UpstreamSession, pageConcurrency: number, planned: boolean) {
  const listings = new ListingFetcher(session, pageConcurrency);
  const planner = new Planner(listings, planned);
  const notFound = (what: string, id: string): UpstreamError =>
    new UpstreamError(`${what} not found: ${id}`, { code: 'NOT_FOUND', status: 404, details: { id } });

  /** One object by id, or the key's Error (a bad id, NOT_FOUND, an upstream failure): never a thrown batch. */
  const one = async (path: (id: string) => string, what: string, id: string): Promise<Rec | Error> => {
    try {
      return objectOf(await session.get(path(id))) ?? notFound(what, id);
    } catch (error) {
      return error as Error;
    }
  };

  /**
   * A loader whose reads can also start at once (`now`): a root field's own record goes upstream before
   * the lookahead's listings, so that the operation can start walking its tree as soon as possible; both
   * ways share one read per key.
   */
  const startable = (read: (id: string) => Promise<Rec | Error>) => {
    const started = new Map<string, Promise<Rec | Error>>();
    const start = (id: string): Promise<Rec | Error> => {
      let pending = started.get(id);
      if (!pending) started.set(id, (pending = read(id)));
      return pending;
    };
    const loader = new DataLoader<string, Rec>((ids) => Promise.all(ids.map(start)));
    return Object.assign(loader, {
      now(id: string): Promise<Rec> {
        void start(id);
        return loader.load(id);
      },
    });
  };

  const experiment = startable((id) => one(routes.experiment, 'Experiment', id));

  const room = startable(async (id) => {
    try {
      const known = await planner.find('rooms', (r) => r.id === id);
      if (known) return known;
      const page = await listings.window(dataSource('rooms', { kind: 'room', id }, {}), 0, 1);
      return page.records[0] ?? notFound('Room', id);
    } catch (error) {
      return error as Error;
    }
  });

  /** All participants of a room: one listing per room, shared by every participant looked up in it. */
  const roomParticipants = new DataLoader<string, Rec[]>((roomIds) =>
    Promise.all(
      roomIds.map(async (id) => {
        try {
          return (await listings.all(dataSource('participants', { kind: 'room', id }, {}))).records;
        } catch (error) {
          return error as Error;
        }
      }),
    ),
  );

  const participant = new DataLoader<{ roomId: string; id: string }, Rec, string>(
    (keys) =>
      Promise.all(
        keys.map(async ({ roomId, id }) => {
          try {
            const known = await planner.find('participants', (p) => p.id === id && roomOf(p) === roomId);
            if (known) return known;
            const all = await roomParticipants.load(roomId);
            return all.find((p) => p.id === id) ?? notFound('Participant', `${id} in room ${roomId}`);
          } catch (error) {
            return error as Error;
          }
        }),
      ),
    { cacheKeyFn: ({ roomId, id }) => participantKey(roomId, id) },
  );

  /** Download URLs of recordings whose rows do not carry one: one request per recording, bounded. */
  const downloadUrl = new DataLoader<{ roomId: string; recordingId: string }, string | null, string>(
    (keys) =>
      mapBounded(keys, pageConcurrency, ({ roomId, recordingId }) =>
        Promise.resolve()
          .then(() => session.get(routes.recordingDownload(roomId, recordingId)))
          .then(
            (envelope) => str(objectOf(envelope)?.url),
            (error: unknown) => error as Error,
          ),
      ),
    { cacheKeyFn: ({ roomId, recordingId }) => participantKey(roomId, recordingId) },
  );

  const deployment = new DataLoader<string, Rec>((ids) => Promise.all(ids.map((id) => one(routes.deployment, 'Deployment', id))));
  const persona = new DataLoader<string, Rec>((ids) => Promise.all(ids.map((id) => one(routes.persona, 'Persona', id))));

  return { listings, planner, experiment, room, roomParticipants, participant, downloadUrl, deployment, persona };
}

export type Loaders = ReturnType<typeof createLoaders>;
