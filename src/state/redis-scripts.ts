/**
 * The Lua scripts the shared state runs in Redis, each one atomic: "count and decide" for the quota,
 * when more requests would fit the hour, the cache's generation check on look-up and store, a Retry-After block that only ever lengthens, and
 * a process's catch-up after Redis was away (what it spent meanwhile, what it knew the fleet spent), and the live pollers' lease, stream, feeds and
 * spend. Times are Redis's own (`TIME`), so replicas'
 * clocks do not matter. ioredis sends them by SHA (EVALSHA), loading them once.
 */
import type { Redis, Result } from 'ioredis';
import { HOUR_BUCKET_MS, HOUR_MS, MINUTE_BUCKET_MS } from './quota.ts';

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * KEYS: the key's hour window (hash: minute bucket → count), its endpoint-minute window (hash: second
 * bucket → count), its Retry-After block. ARGV: hourly limit, per-minute limit (0: none), 1 to count
 * the request when it may go, the per-minute window in ms. Buckets older than the window are deleted as they are read; a bucket counts
 * until all of it is older than the window, so the count never falls short of the true one.
 * Returns { verdict, wait ms, requests of the last hour, requests of the last minute to the endpoint
 * (-1: not counted, when the hour decided) }: 0 go (counted when asked), 1 blocked by a Retry-After,
 * 2 hourly limit, 3 per-minute limit.
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
if blocked > 0 then return {1, blocked, hour, -1} end
local perHour, perMinute = tonumber(ARGV[1]), tonumber(ARGV[2])
if perHour > 0 and hour >= perHour then return {2, hourWait, hour, -1} end
local minuteMs = tonumber(ARGV[4])
local minute, minuteWait = window(KEYS[2], ${MINUTE_BUCKET_MS}, minuteMs)
if perMinute > 0 and minute >= perMinute then return {3, minuteWait, hour, minute} end
if ARGV[3] == '1' then
  redis.call('HINCRBY', KEYS[1], string.format('%d', now - now % ${HOUR_BUCKET_MS}), 1)
  redis.call('PEXPIRE', KEYS[1], ${HOUR_MS + HOUR_BUCKET_MS})
  redis.call('HINCRBY', KEYS[2], string.format('%d', now - now % ${MINUTE_BUCKET_MS}), 1)
  redis.call('PEXPIRE', KEYS[2], minuteMs + ${MINUTE_BUCKET_MS})
  hour = hour + 1
  minute = minute + 1
end
return {0, 0, hour, minute}
`;

/**
 * A process catches one window of a key up after Redis was away (one call per window, so that it is
 * atomic against other processes catching up). KEYS: the window (hash: bucket start → count). ARGV:
 * its bucket and its span in ms; the count the window must hold at least afterwards (what this
 * process knew of the fleet's spend, its own requests meanwhile included), how long ago (ms) that
 * count was known; then how long ago each request was sent that this process counted only locally
 * meanwhile. The requests are added to their buckets; then, if the window (as counted in the quota
 * script) holds less than the count, the difference is added to the bucket of when it was known. So
 * an empty Redis (restarted) gets back the fleet's spend this process knew of, and a Redis that kept
 * its data gets only the requests it never saw: the count never counts twice what it holds.
 */
const CATCH_UP = `${NOW}
local bucket, span, floor = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local function add(at, n)
  if n > 0 and at + bucket + span > now then
    redis.call('HINCRBY', KEYS[1], string.format('%d', at - at % bucket), n)
  end
end
for i = 5, #ARGV do add(now - tonumber(ARGV[i]), 1) end
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  if tonumber(fields[i]) + bucket + span > now then total = total + tonumber(fields[i + 1]) end
end
add(now - tonumber(ARGV[4]), floor - total)
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], span + bucket) end
return 1
`;

/**
 * KEYS: the key's hour window (hash: minute bucket → count). ARGV: the hourly limit, requests wanted.
 * Counts the window as the quota script does (a bucket until all of it is older than the hour) and
 * returns in how many ms that many more requests would fit it: 0 now, else when enough of its oldest
 * buckets have left the hour (-1: never, they are more than the limit). Reads only.
 */
const UNTIL_ROOM = `${NOW}
local limit, wanted = tonumber(ARGV[1]), tonumber(ARGV[2])
if wanted > limit then return -1 end
local fields = redis.call('HGETALL', KEYS[1])
local buckets, total = {}, 0
for i = 1, #fields, 2 do
  local start = tonumber(fields[i])
  if start + ${HOUR_BUCKET_MS} + ${HOUR_MS} > now then
    local n = tonumber(fields[i + 1])
    table.insert(buckets, {start, n})
    total = total + n
  end
end
if total + wanted <= limit then return 0 end
table.sort(buckets, function(a, b) return a[1] < b[1] end)
for _, bucket in ipairs(buckets) do
  total = total - bucket[2]
  if total + wanted <= limit then return math.max(0, bucket[1] + ${HOUR_BUCKET_MS} + ${HOUR_MS} - now) end
end
return 0
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
 * KEYS: the key's cache generation. ARGV: a generation. Deletes the key's generation while it is that
 * one: what a lookup gave a key whose request then got no answer from the upstream (nothing is held for
 * a key the upstream never confirmed), unless a write or another process moved it on meanwhile.
 */
const DROP_GENERATION = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
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

/**
 * Live pollers (src/live/fleet.ts). KEYS: the feed's lease, its stream. ARGV: the holder's token, the
 * stream's bound (MAXLEN ~), its TTL in ms, the batch (JSON), the feed's state after it (JSON), '1'
 * when that state does not follow from the entry before. Appends only while the lease is the caller's:
 * returns the entry's id, or nil when another process leads.
 */
const LIVE_APPEND = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'i', ARGV[4], 's', ARGV[5], 'r', ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return id
`;

/**
 * KEYS: the feed's lease, its stream, the key's polled feeds (sorted set: member → expiry). ARGV: the
 * holder's token, the lease in ms, the stream's TTL in ms, the feed's member ("cost:digest"), '1' to
 * renew (else only read). Renews the lease, the stream and the member while the lease is the caller's;
 * drops expired members. Returns { 1 renewed | 0 not the holder, members… }.
 */
const LIVE_RENEW = `${NOW}
local held = 0
if ARGV[5] == '1' and redis.call('GET', KEYS[1]) == ARGV[1] then
  held = 1
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[4])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local members = redis.call('ZRANGE', KEYS[3], 0, -1)
table.insert(members, 1, held)
return members
`;

/**
 * KEYS: the feed's lease, its stream, the key's polled feeds. ARGV: the holder's token, the feed's
 * member, the stream's TTL from now on in ms. Compare-and-delete: only the holder's lease goes.
 */
const LIVE_RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
`;

/**
 * KEYS: the key's live spend (sorted set: one member per request, scored by when it was sent). ARGV:
 * requests, the hourly allowance (-1: count them unconditionally), a unique nonce. Counts and decides
 * at once: when the requests fit in the allowance of the last hour they are counted and 0 is returned,
 * else nothing is counted and the wait in ms until they fit is. Returns { wait ms, requests of the hour }.
 */
const LIVE_SPEND = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ${HOUR_MS})
local n, allowed = tonumber(ARGV[1]), tonumber(ARGV[2])
local used = redis.call('ZCARD', KEYS[1])
if allowed >= 0 and used + n > allowed then
  local oldest = redis.call('ZRANGE', KEYS[1], math.max(0, used + n - allowed - 1), math.max(0, used + n - allowed - 1), 'WITHSCORES')
  local wait = ${HOUR_MS}
  if oldest[2] then wait = tonumber(oldest[2]) + ${HOUR_MS} - now end
  return {math.max(1, wait), used}
end
for i = 1, n do redis.call('ZADD', KEYS[1], now, ARGV[3] .. ':' .. i) end
if n > 0 then redis.call('PEXPIRE', KEYS[1], ${HOUR_MS}) end
return {0, used + n}
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
      minuteMs: number,
    ): Result<[number, number, number, number], Context>;
    hsgqlCatchUp(
      windowKey: string,
      bucketMs: number,
      spanMs: number,
      atLeast: number,
      knownAgoMs: number,
      ...sentAgoMs: number[]
    ): Result<number, Context>;
    hsgqlBlock(blockKey: string, waitMs: number): Result<number, Context>;
    hsgqlUntilRoom(hourKey: string, perHour: number, wanted: number): Result<number, Context>;
    hsgqlLookup(
      generationKey: string,
      entryPrefix: string,
      digest: string,
      knownGeneration: string,
      freshGeneration: string,
      generationTtlMs: number,
    ): Result<[string] | [string, string, number], Context>;
    hsgqlDropGeneration(generationKey: string, generation: string): Result<number, Context>;
    hsgqlStore(
      generationKey: string,
      entryPrefix: string,
      digest: string,
      generation: string,
      body: string,
      ttlMs: number,
    ): Result<number, Context>;
    hsgqlLiveAppend(
      leaseKey: string,
      streamKey: string,
      token: string,
      maxLength: number,
      streamTtlMs: number,
      items: string,
      state: string,
      rebase: '0' | '1',
    ): Result<string | null, Context>;
    hsgqlLiveRenew(
      leaseKey: string,
      streamKey: string,
      feedsKey: string,
      token: string,
      leaseMs: number,
      streamTtlMs: number,
      member: string,
      renew: '0' | '1',
    ): Result<[number, ...string[]], Context>;
    hsgqlLiveRelease(
      leaseKey: string,
      streamKey: string,
      feedsKey: string,
      token: string,
      member: string,
      streamTtlMs: number,
    ): Result<number, Context>;
    hsgqlLiveSpend(spendKey: string, requests: number, allowed: number, nonce: string): Result<[number, number], Context>;
  }
}

/** Registers the scripts as commands of `redis` (sent by SHA, loaded on first use). */
export function defineScripts(redis: Redis): void {
  redis.defineCommand('hsgqlQuota', { numberOfKeys: 3, lua: QUOTA });
  redis.defineCommand('hsgqlCatchUp', { numberOfKeys: 1, lua: CATCH_UP });
  redis.defineCommand('hsgqlBlock', { numberOfKeys: 1, lua: BLOCK });
  redis.defineCommand('hsgqlUntilRoom', { numberOfKeys: 1, lua: UNTIL_ROOM });
  redis.defineCommand('hsgqlLookup', { numberOfKeys: 1, lua: LOOKUP });
  redis.defineCommand('hsgqlStore', { numberOfKeys: 1, lua: STORE });
  redis.defineCommand('hsgqlDropGeneration', { numberOfKeys: 1, lua: DROP_GENERATION });
  redis.defineCommand('hsgqlLiveAppend', { numberOfKeys: 2, lua: LIVE_APPEND });
  redis.defineCommand('hsgqlLiveRenew', { numberOfKeys: 3, lua: LIVE_RENEW });
  redis.defineCommand('hsgqlLiveRelease', { numberOfKeys: 3, lua: LIVE_RELEASE });
  redis.defineCommand('hsgqlLiveSpend', { numberOfKeys: 1, lua: LIVE_SPEND });
}
