/**
 * The export jobs' table in Redis (with REDIS_URL), so that every replica lists and controls every job,
 * and the lease by which one replica runs each.
 *
 * Redis keys (REDIS_KEY_PREFIX + `exports:`…):
 * - `job:<id>`: the job's record as JSON (never the key: its owner is the key's hash), expiring EXPORT_TTL_MS
 *   after its last change (an hour more while it is going, as a waiting job may not change for a window);
 * - `jobs`: every job's id; `owner:<digest of the key hash>`: the ids of one owner's jobs; `bytes`: each
 *   job's bytes in EXPORT_DIR (EXPORT_MAX_BYTES counts every replica's jobs), until it is forgotten;
 * - `lease:<id>`: the token of the process running the job (`SET NX PX`), renewed every leaseMs/3 by a
 *   script that renews only the caller's own lease (or takes it again when no process holds it: Redis
 *   lost it, or it lapsed while the runner stalled and no replica took it), released by a
 *   compare-and-delete when its run ends;
 * - `stop:<id>`: a status another replica asks the running one to stop the job as (cancelExport there),
 *   also published on the channel `stop` at once: the runner's subscriber acts on the message, the key is
 *   for a runner whose subscriber missed it (it reads it at its next renewal).
 *
 * A job going (QUEUED, RUNNING, WAITING) without a lease has lost its replica: it is PAUSED, to be resumed
 * by its owner from any replica, which takes the lease and goes on from the pages on the shared EXPORT_DIR.
 * The runner writes the record only while the lease is its own (a script checks it with the write): a
 * runner whose lease another replica took writes nothing more.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { LiveRedis } from '../live/fleet.ts';
import { HOUR_MS } from '../state/quota.ts';
import { EXPORT_STATUSES, ACTIVE, type ExportStatus, type JobRecord } from './types.ts';

/** Renews a lease while it is the caller's (1), takes it again when no process holds it (2); 0: another process's. */
const RENEW = `local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not held then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0`;
/**
 * Writes a record (and its ids in the sets) unless the mode forbids it: 'any' writes; 'free' only while no
 * other process holds the job's lease; 'hold' likewise, and takes the lease when none holds it (the
 * runner after Redis lost it). 0: another process holds the lease, nothing written.
 */
const SAVE = `local held = redis.call('GET', KEYS[4])
if ARGV[5] ~= 'any' and held and held ~= ARGV[4] then return 0 end
if ARGV[5] == 'hold' and not held then redis.call('SET', KEYS[4], ARGV[4], 'PX', ARGV[6]) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[7])
redis.call('HSET', KEYS[5], ARGV[3], ARGV[8])
redis.call('PEXPIRE', KEYS[5], ARGV[7])
return 1`;
/** Gives a lease up only while it is the caller's. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

const digest = (text: string): string => createHash('sha256').update(`exports:${text}`).digest('hex').slice(0, 32);

export interface RedisJobTableOptions {
  /** How long a lease lasts unless renewed, in ms (EXPORT_LEASE_MS). */
  leaseMs: number;
  /** How long a job's record is kept after its last change, in ms (EXPORT_TTL_MS). */
  ttlMs: number;
}

/** How a record is written: see SAVE. */
export type SaveMode = 'any' | 'free' | 'hold';

/** The export jobs' records and leases in Redis (see the header). Each call answers null when Redis does not. */
export class RedisJobTable {
  /** This process's lease token. */
  readonly token = randomBytes(12).toString('hex');
  readonly beatMs: number;
  /** The connection subscribed to the stop channel (a subscriber cannot send other commands). */
  #subscriber: Redis | null = null;

  constructor(
    private readonly redis: LiveRedis,
    private readonly options: RedisJobTableOptions,
  ) {
    this.beatMs = Math.max(50, Math.floor(options.leaseMs / 3));
  }

  #key(...parts: string[]): string {
    return `${this.redis.prefix}exports:${parts.join(':')}`;
  }

  #ttl(record: JobRecord): number {
    return this.options.ttlMs + (ACTIVE.has(record.status) ? HOUR_MS : 0);
  }

  /** Writes the record as `mode` allows: 'saved', 'lost' (another process holds the lease: nothing written), null (Redis did not answer). */
  async save(record: JobRecord, mode: SaveMode = 'any'): Promise<'saved' | 'lost' | null> {
    const keys = [
      this.#key('job', record.id),
      this.#key('jobs'),
      this.#key('owner', digest(record.owner)),
      this.#key('lease', record.id),
      this.#key('bytes'),
    ];
    const args = [
      JSON.stringify(record),
      this.#ttl(record),
      record.id,
      this.token,
      mode,
      this.options.leaseMs,
      this.options.ttlMs + HOUR_MS,
      record.bytes,
    ];
    const answer = await this.redis.call((r) => r.eval(SAVE, keys.length, ...keys, ...args));
    return answer === null ? null : answer.value === 1 ? 'saved' : 'lost';
  }

  /**
   * The bytes each job's pages and file take in EXPORT_DIR, as its record last said (EXPORT_MAX_BYTES
   * counts every replica's): a job's count goes when it is forgotten, with its files (undefined: Redis did not answer).
   */
  async bytes(): Promise<Map<string, number> | undefined> {
    const answer = await this.redis.call((r) => r.hgetall(this.#key('bytes')));
    if (answer === null) return undefined;
    return new Map(Object.entries(answer.value).map(([id, bytes]) => [id, Number(bytes) || 0]));
  }

  /** The job's record: null when there is none, undefined when Redis did not answer. */
  async get(id: string): Promise<JobRecord | null | undefined> {
    const answer = await this.redis.call((r) => r.get(this.#key('job', id)));
    if (answer === null) return undefined;
    return parse(answer.value);
  }

  /** The ids of one owner's jobs (undefined: Redis did not answer). */
  async idsOf(owner: string): Promise<string[] | undefined> {
    return (await this.redis.call((r) => r.smembers(this.#key('owner', digest(owner)))))?.value;
  }

  /** Every job's id (undefined: Redis did not answer). */
  async ids(): Promise<string[] | undefined> {
    return (await this.redis.call((r) => r.smembers(this.#key('jobs'))))?.value;
  }

  /** Forgets a job whose record has expired (or was removed). */
  async forget(id: string, owner: string | null): Promise<void> {
    await this.redis.call((r) => {
      const m = r.multi().del(this.#key('job', id)).srem(this.#key('jobs'), id).hdel(this.#key('bytes'), id);
      if (owner !== null) m.srem(this.#key('owner', digest(owner)), id);
      return m.exec();
    });
  }

  /** Takes the job's lease for this process: true when it is this process's now. */
  async claim(id: string): Promise<boolean> {
    const answer = await this.redis.call((r) => r.set(this.#key('lease', id), this.token, 'PX', this.options.leaseMs, 'NX'));
    return answer?.value === 'OK';
  }

  /**
   * Renews this process's lease: 'held'; 'taken' when no process held it (taken again); 'lost' when
   * another process holds it now; null when Redis did not answer.
   */
  async renew(id: string): Promise<'held' | 'taken' | 'lost' | null> {
    const answer = await this.redis.call((r) => r.eval(RENEW, 1, this.#key('lease', id), this.token, this.options.leaseMs));
    if (answer === null) return null;
    return answer.value === 1 ? 'held' : answer.value === 2 ? 'taken' : 'lost';
  }

  async release(id: string): Promise<void> {
    await this.redis.call((r) => r.eval(RELEASE, 1, this.#key('lease', id), this.token));
  }

  /** Whether some process holds the job's lease (null: Redis did not answer). */
  async leased(id: string): Promise<boolean | null> {
    const answer = await this.redis.call((r) => r.exists(this.#key('lease', id)));
    return answer === null ? null : answer.value === 1;
  }

  /** Asks the process running the job to stop it as `as`: published (the runner stops at once) and kept for a runner that missed the message. */
  async ask(id: string, as: ExportStatus): Promise<void> {
    await this.redis.call((r) =>
      r
        .multi()
        .set(this.#key('stop', id), as, 'PX', 3 * this.options.leaseMs)
        .publish(this.#key('stop'), JSON.stringify({ id, as }))
        .exec(),
    );
  }

  /**
   * Tells `onStop` of each stop another replica asks (the channel `stop`), on a connection of its own
   * (the shared state's, duplicated, as the live fleet's reader); it subscribes again after a reconnection.
   */
  listen(onStop: (id: string, as: ExportStatus) => void): void {
    if (this.#subscriber) return;
    const subscriber = this.redis.duplicate('hyperstudy-graphql-exports', 5_000);
    this.#subscriber = subscriber;
    const channel = this.#key('stop');
    subscriber.on('message', (from: string, message: string) => {
      if (from !== channel) return;
      try {
        const { id, as } = JSON.parse(message) as { id?: unknown; as?: unknown };
        if (typeof id === 'string' && typeof as === 'string' && (EXPORT_STATUSES as readonly string[]).includes(as))
          onStop(id, as as ExportStatus);
      } catch {
        // not a message of this version of the gateway
      }
    });
    // On each connection (a subscription made while Redis was down fails; a reconnection has none).
    subscriber.on('ready', () => void subscriber.subscribe(channel).catch(() => undefined));
  }

  close(): void {
    this.#subscriber?.disconnect();
    this.#subscriber = null;
  }

  /** What another replica asked of a job this process runs (taken: asked once). */
  async asked(id: string): Promise<ExportStatus | null> {
    const answer = await this.redis.call((r) => r.getdel(this.#key('stop', id)));
    const as = answer?.value;
    return as && (EXPORT_STATUSES as readonly string[]).includes(as) ? (as as ExportStatus) : null;
  }
}

function parse(text: string | null): JobRecord | null {
  if (text === null) return null;
  try {
    const record = JSON.parse(text) as JobRecord;
    return typeof record.id === 'string' && EXPORT_STATUSES.includes(record.status) ? record : null;
  } catch {
    return null;
  }
}
