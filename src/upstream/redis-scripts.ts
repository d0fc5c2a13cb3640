/**
 * The Lua scripts the shared state runs in Redis, each one atomic: "count and decide" for the quota,
 * the cache's generation check on look-up and store, a Retry-After block that only ever lengthens, and
 * the replay of what a process spent while Redis was away. Times are Redis's own (`TIME`), so replicas'
 * clocks do not matter. ioredis sends them by SHA (EVALSHA), loading them once.
 */
import type { Redis, Result } from 'ioredis';

/** The buckets and windows of the quota, as `WindowCounter` has them in memory. */
export const HOUR_MS = 3_600_000;
export const MINUTE_MS = 60_000;
export const HOUR_BUCKET_MS = 60_000;
export const MINUTE_BUCKET_MS = 1_000;

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * KEYS: the key's hour window (hash: minute bucket → count), its endpoint-minute window (hash: second
 * bucket → count), its Retry-After block. ARGV: hourly limit, per-minute limit (0: none), 1 to count
 * the request when it may go. Buckets older than the window are deleted as they are read; a bucket counts
 * until all of it is older than the window, so the count never falls short of the true one.
 * Returns { verdict, wait ms, requests of the last hour }: 0 go (counted when asked), 1 blocked by a
 * Retry-After, 2 hourly limit, 3 per-minute limit.
 */
const QUOTA = `${NOW}
local function window(key, bucket, span)
  local fields = redis.call('HGETALL', key)
  local total, oldest = 0, nil
  for i = 1, #fields, 2 do
    local start = tonumber(fields[i])
    if start + bucket + span <= now then
      redis.call('HDEL', key, fields[i])
    else
      total = total + tonumber(fields[i + 1])
      if oldest == nil or start < oldest then oldest = start end
    end
  end
  if oldest == nil then return total, 0 end
  return total, oldest + bucket + span - now
end
local hour, hourWait = window(KEYS[1], ${HOUR_BUCKET_MS}, ${HOUR_MS})
local blocked = redis.call('PTTL', KEYS[3])
if blocked > 0 then return {1, blocked, hour} end
local perHour, perMinute = tonumber(ARGV[1]), tonumber(ARGV[2])
if perHour > 0 and hour >= perHour then return {2, hourWait, hour} end
local minute, minuteWait = window(KEYS[2], ${MINUTE_BUCKET_MS}, ${MINUTE_MS})
if perMinute > 0 and minute >= perMinute then return {3, minuteWait, hour} end
if ARGV[3] == '1' then
  redis.call('HINCRBY', KEYS[1], string.format('%d', now - now % ${HOUR_BUCKET_MS}), 1)
  redis.call('PEXPIRE', KEYS[1], ${HOUR_MS + HOUR_BUCKET_MS})
  redis.call('HINCRBY', KEYS[2], string.format('%d', now - now % ${MINUTE_BUCKET_MS}), 1)
  redis.call('PEXPIRE', KEYS[2], ${MINUTE_MS + MINUTE_BUCKET_MS})
  hour = hour + 1
end
return {0, 0, hour}
`;

/**
 * KEYS: the hour window, the endpoint-minute window. ARGV: how long ago (ms) each request was sent
 * that a process counted only locally while Redis was away; each is added to its buckets.
 */
const REPLAY = `${NOW}
for i = 1, #ARGV do
  local at = now - tonumber(ARGV[i])
  if at + ${HOUR_MS + HOUR_BUCKET_MS} > now then
    redis.call('HINCRBY', KEYS[1], string.format('%d', at - at % ${HOUR_BUCKET_MS}), 1)
  end
  if at + ${MINUTE_MS + MINUTE_BUCKET_MS} > now then
    redis.call('HINCRBY', KEYS[2], string.format('%d', at - at % ${MINUTE_BUCKET_MS}), 1)
  end
end
redis.call('PEXPIRE', KEYS[1], ${HOUR_MS + HOUR_BUCKET_MS})
redis.call('PEXPIRE', KEYS[2], ${MINUTE_MS + MINUTE_BUCKET_MS})
return 1
`;

/** KEYS: the key's Retry-After block. ARGV: ms to wait. A block is only ever lengthened. */
const BLOCK = `
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
`;

/**
 * KEYS: the key's cache generation. ARGV: the prefix of its entries, the URL's digest, the generation
 * of the copy this process holds (or ''), a fresh generation (used when the key has none: generations
 * are never reused, so no answer from before a write can be found again, even after the generation's
 * own key expired or was evicted), the generation's TTL in ms. Returns { generation } when this
 * process's copy is current or nothing is cached, else { generation, body, its TTL in ms }.
 */
const LOOKUP = `
local gen = redis.call('GET', KEYS[1])
if not gen then
  gen = ARGV[4]
  redis.call('SET', KEYS[1], gen, 'PX', ARGV[5])
end
if gen == ARGV[3] then return {gen} end
local key = ARGV[1] .. gen .. ':' .. ARGV[2]
local body = redis.call('GET', key)
if not body then return {gen} end
return {gen, body, redis.call('PTTL', key)}
`;

/**
 * KEYS: the key's cache generation. ARGV: the prefix of its entries, the URL's digest, the generation
 * the answer was fetched under, the body, its TTL in ms. Stored only while that generation is current.
 */
const STORE = `
if redis.call('GET', KEYS[1]) ~= ARGV[3] then return 0 end
redis.call('SET', ARGV[1] .. ARGV[3] .. ':' .. ARGV[2], ARGV[4], 'PX', ARGV[5])
return 1
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    hsgqlQuota(
      hourKey: string,
      minuteKey: string,
      blockKey: string,
      perHour: number,
      perMinute: number,
      charge: '0' | '1',
    ): Result<[number, number, number], Context>;
    hsgqlReplay(hourKey: string, minuteKey: string, ...agesMs: number[]): Result<number, Context>;
    hsgqlBlock(blockKey: string, waitMs: number): Result<number, Context>;
    hsgqlLookup(
      generationKey: string,
      entryPrefix: string,
      digest: string,
      knownGeneration: string,
      freshGeneration: string,
      generationTtlMs: number,
    ): Result<[string] | [string, string, number], Context>;
    hsgqlStore(
      generationKey: string,
      entryPrefix: string,
      digest: string,
      generation: string,
      body: string,
      ttlMs: number,
    ): Result<number, Context>;
  }
}

/** Registers the scripts as commands of `redis` (sent by SHA, loaded on first use). */
export function defineScripts(redis: Redis): void {
  redis.defineCommand('hsgqlQuota', { numberOfKeys: 3, lua: QUOTA });
  redis.defineCommand('hsgqlReplay', { numberOfKeys: 2, lua: REPLAY });
  redis.defineCommand('hsgqlBlock', { numberOfKeys: 1, lua: BLOCK });
  redis.defineCommand('hsgqlLookup', { numberOfKeys: 1, lua: LOOKUP });
  redis.defineCommand('hsgqlStore', { numberOfKeys: 1, lua: STORE });
}
