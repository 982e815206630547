-- KEYS[1] = meta hash, then one sorted set per signal: first the W signals this
-- batch writes, then every other signal the vehicle may have, so that retention
-- is per vehicle (any reading keeps all its signals) with every key declared.
-- ARGV: window, ttl and slack (milliseconds), received_at, W; then per written
-- signal (same order as KEYS[2..W+1]) its name, how many server-stamped
-- readings it has, how many of those are sent (the newest `window`), the
-- lowest and highest server stamp, and how many device-stamped readings it
-- has; then per written signal its sent server-stamped readings and then its
-- device-stamped ones (in the batch's order), each as a score and a member
-- `<timestamp>:<value>`. Last, the vehicle's change channel and the written
-- signals' names (`live::channel`, `live::encode_signals`).
--
-- Redis' time is what this costs, so calls are few: a signal's server-stamped
-- readings go in one ZADD, and each signal's count in one HINCRBY.
--
-- Expiry: every key of a vehicle expires at the meta hash's deadline, so a
-- vehicle is forgotten all at once. The TTL is the retention plus a slack;
-- when less than the retention is left on the meta hash (or it has none), every
-- key gets the whole TTL again, else only the keys written get the meta's
-- remaining time (a new key has none). So each key outlives the vehicle's last
-- reading by the retention period, and by at most the slack more, on Redis'
-- clock alone.
--
-- Live streams: once everything is written, the script SPUBLISHes the written
-- signals to the vehicle's sharded channel (Redis 7.0+; the channel carries
-- the vehicle's hash tag, so on a cluster it is in the keys' slot). In the
-- script, so an acknowledged write always announces itself and nothing is
-- announced that was not stored.
local window = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local received_at = tonumber(ARGV[4])
local nsignals = tonumber(ARGV[5])
local meta = KEYS[1]
local left = redis.call('PTTL', meta)
-- A new vehicle (no meta hash) is refused once Redis uses 90% of its
-- maxmemory, so the vehicles it holds keep a tenth to write in: with
-- noeviction, Redis itself refuses every write past maxmemory (see mod.rs).
if left == -2 then
  local memory = redis.call('INFO', 'memory')
  local max = tonumber(string.match(memory, '\nmaxmemory:(%d+)') or '0')
  local used = tonumber(string.match(memory, '\nused_memory:(%d+)') or '0')
  if max > 0 and used >= max * 0.9 then
    return redis.error_reply('VEHICLELIMIT ' .. used .. ' ' .. max)
  end
end
local refresh = left < ttl - tonumber(ARGV[3])
local expiry = refresh and ttl or left
if received_at > tonumber(redis.call('HGET', meta, 'last_seen') or '0') then
  redis.call('HSET', meta, 'last_seen', ARGV[4])
end
local at = 6 + 6 * nsignals
for j = 1, nsignals do
  local key = KEYS[j + 1]
  local h = 6 + 6 * (j - 1)
  local server_total = tonumber(ARGV[h + 1])
  local server_sent = tonumber(ARGV[h + 2])
  local device = tonumber(ARGV[h + 5])
  local count = 0
  -- The floor as the batch found it: the oldest score of a full window. A
  -- device's reading older than that would be trimmed at once, and as it may be
  -- a resend of a reading trimmed long ago, it is not counted.
  local floor = nil
  if device > 0 and redis.call('ZCARD', key) >= window then
    floor = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2])
  end
  local server_at = at
  local device_at = at + 2 * server_sent
  at = device_at + 2 * device
  for i = device_at, at - 1, 2 do
    local ts = ARGV[i]
    if redis.call('ZREMRANGEBYSCORE', key, ts, ts) > 0 then
      -- A resend: replace the value, count nothing.
      redis.call('ZADD', key, ts, ARGV[i + 1])
    elseif floor == nil or tonumber(ts) >= floor then
      redis.call('ZADD', key, ts, ARGV[i + 1])
      count = count + 1
    end
  end
  if server_total > 0 then
    -- The server never reuses a stamp: its readings are all counted, and only
    -- the newest `window` can stay. They clash with a stored sample only if a
    -- device stamped one with the same microsecond; then take them one by one.
    if redis.call('ZCOUNT', key, ARGV[h + 3], ARGV[h + 4]) == 0 then
      -- unpack() takes at most a few thousand values at once.
      for first = server_at, device_at - 1, 2000 do
        redis.call('ZADD', key, unpack(ARGV, first, math.min(first + 1999, device_at - 1)))
      end
      count = count + server_total
    else
      count = count + server_total - server_sent
      for i = server_at, device_at - 1, 2 do
        if redis.call('ZREMRANGEBYSCORE', key, ARGV[i], ARGV[i]) == 0 then
          count = count + 1
        end
        redis.call('ZADD', key, ARGV[i], ARGV[i + 1])
      end
    end
  end
  if count > 0 then
    redis.call('HINCRBY', meta, 'total:' .. ARGV[h], count)
  end
  redis.call('ZREMRANGEBYRANK', key, 0, -(window + 1))
  redis.call('PEXPIRE', key, expiry)
end
if refresh then
  for k = nsignals + 2, #KEYS do
    redis.call('PEXPIRE', KEYS[k], ttl)
  end
  redis.call('PEXPIRE', meta, ttl)
end
redis.call('SPUBLISH', ARGV[#ARGV - 1], ARGV[#ARGV])
return 1
