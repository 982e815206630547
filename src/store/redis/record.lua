-- KEYS[1] = the vehicle's hash, which holds everything stored about it:
-- `layout` (2: this layout; a hash without it is of the first layout, see
-- migrate.lua), `last_seen`, and per signal a field `w:<signal>` =
-- `<total> <n> <newest> <ts>:<value> ...`: the count of samples ever
-- accepted, how many the window holds, its newest stamp, then the window,
-- oldest first (see window.rs).
-- ARGV: window, ttl and slack (milliseconds), received_at, W; then per written
-- signal its name, how many server-stamped readings it has, how many of those
-- are sent (the newest `window`), how many device-stamped readings it has,
-- and `1` when the sent readings are of one kind with distinct stamps, oldest
-- first (the fast path below); then per written signal its sent readings,
-- each as a timestamp and a value.
-- Last, the vehicle's change channel and the written signals' names
-- (`live::channel`, `live::encode_signals`).
--
-- Redis' time is what this costs, so calls are few and do not grow with the
-- batch: PTTL, one HMGET of the fields written, one HSET of them, PEXPIRE now
-- and then, SPUBLISH. Merging a window of a few samples in Lua costs less than
-- the sorted-set commands it replaces, and a read is then one HMGET.
--
-- Expiry: the vehicle is one key, so it is forgotten all at once, signals a
-- car stopped sending included. The TTL is the retention plus a slack; the
-- key gets the whole TTL again when less than the retention is left on it (or
-- it has none), so at most once per slack. So the vehicle outlives its last
-- reading by the retention period, and by at most the slack more, on Redis'
-- clock alone.
--
-- Live streams: once everything is written, the script SPUBLISHes the written
-- signals to the vehicle's sharded channel (Redis 7.0+; the channel carries
-- the vehicle's hash tag, so on a cluster it is in the key's slot). In the
-- script, so an acknowledged write always announces itself and nothing is
-- announced that was not stored.
local window = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local received_at = ARGV[4]
local nsignals = tonumber(ARGV[5])
local vehicle = KEYS[1]
local left = redis.call('PTTL', vehicle)
-- A new vehicle (no hash) is refused once Redis uses 90% of its maxmemory,
-- so the vehicles it holds keep a tenth to write in: with noeviction, Redis
-- itself refuses every write past maxmemory (see mod.rs).
if left == -2 then
  local memory = redis.call('INFO', 'memory')
  local max = tonumber(string.match(memory, '\nmaxmemory:(%d+)') or '0')
  local used = tonumber(string.match(memory, '\nused_memory:(%d+)') or '0')
  if max > 0 and used >= max * 0.9 then
    return redis.error_reply('VEHICLELIMIT ' .. used .. ' ' .. max)
  end
end
local fields = { 'last_seen', 'layout' }
for j = 1, nsignals do
  fields[j + 2] = 'w:' .. ARGV[1 + 5 * j]
end
local stored = redis.call('HMGET', vehicle, unpack(fields))
-- A vehicle kept in the first layout (no `layout` field) is moved first: the
-- store runs migrate.lua, with every key of that layout, and calls again.
if left ~= -2 and not stored[2] then
  return redis.error_reply('OLDLAYOUT the vehicle is stored in the first layout')
end
local writes = {}
if left == -2 then
  writes[1] = 'layout'
  writes[2] = '2'
end
if tonumber(received_at) > tonumber(stored[1] or '0') then
  writes[#writes + 1] = 'last_seen'
  writes[#writes + 1] = received_at
end
local at = 6 + 5 * nsignals
for j = 1, nsignals do
  local h = 1 + 5 * j
  local server_total = tonumber(ARGV[h + 1])
  local server_sent = tonumber(ARGV[h + 2])
  local device = tonumber(ARGV[h + 3])
  local server_at = at
  local device_at = at + 2 * server_sent
  at = device_at + 2 * device
  local old = stored[j + 2]
  local total, n, newest, e = 0, 0, nil, nil
  if old then
    local start, t, c, x
    start, e, t, c, x = string.find(old, '^(%d+) (%d+) (%d+)')
    total, n, newest = tonumber(t), tonumber(c), tonumber(x)
  end
  local field
  if ARGV[h + 4] == '1' and (not old or tonumber(ARGV[server_at]) > newest) then
    -- The common case: the batch's stamps are distinct, of one kind, sent
    -- oldest first, and all newer than the stored window. Then each is new and
    -- counted, and the window is the stored one's newest part followed by the
    -- batch's newest part, spliced as text.
    local sent = server_sent + device
    local fresh = math.min(sent, window)
    local kept = math.min(n, window - fresh)
    local parts = {}
    if kept > 0 then
      local p = e + 2
      for _ = 1, n - kept do
        p = string.find(old, ' ', p, true) + 1
      end
      parts[1] = string.sub(old, p)
    end
    for i = at - 2 * fresh, at - 1, 2 do
      parts[#parts + 1] = ARGV[i] .. ':' .. ARGV[i + 1]
    end
    field = string.format('%d', total + server_total + device) .. ' ' .. (kept + fresh) .. ' '
      .. ARGV[at - 2] .. ' ' .. table.concat(parts, ' ')
  else
    -- The window as stored: its stamps newest first (as text: timestamps are
    -- integers written one way only) and each one's value.
    local stamps = {}
    local values = {}
    if old then
      local i = n
      for ts, value in string.gmatch(string.sub(old, e + 2), '(%d+):(%S+)') do
        stamps[i] = ts
        values[ts] = value
        i = i - 1
      end
    end
    -- A sample new to the window goes in its place by time.
    local function insert(ts, value)
      local t = tonumber(ts)
      local i = 1
      while i <= n and tonumber(stamps[i]) > t do
        i = i + 1
      end
      table.insert(stamps, i, ts)
      n = n + 1
      values[ts] = value
    end
    -- The floor as the batch found it: the oldest stamp of a full window. A
    -- device's reading older than that would be trimmed at once, and as it
    -- may be a resend of a reading trimmed long ago, it is not counted.
    local floor = nil
    if device > 0 and n >= window then
      floor = tonumber(stamps[window])
    end
    local count = 0
    for i = device_at, at - 1, 2 do
      local ts = ARGV[i]
      if values[ts] then
        -- A resend: replace the value, count nothing.
        values[ts] = ARGV[i + 1]
      elseif floor == nil or tonumber(ts) >= floor then
        insert(ts, ARGV[i + 1])
        count = count + 1
      end
    end
    -- The server never reuses a stamp: its readings are all counted, and
    -- only the newest `window` can stay, unless a device stamped one with the
    -- same microsecond: then it replaces that one and is not counted.
    count = count + server_total - server_sent
    for i = server_at, device_at - 1, 2 do
      local ts = ARGV[i]
      if values[ts] then
        values[ts] = ARGV[i + 1]
      else
        insert(ts, ARGV[i + 1])
        count = count + 1
      end
    end
    local kept = math.min(n, window)
    local parts = { string.format('%d', total + count), kept, stamps[1] }
    for i = kept, 1, -1 do
      local ts = stamps[i]
      parts[#parts + 1] = ts .. ':' .. values[ts]
    end
    field = table.concat(parts, ' ')
  end
  writes[#writes + 1] = fields[j + 2]
  writes[#writes + 1] = field
end
if #writes > 0 then
  redis.call('HSET', vehicle, unpack(writes))
end
if left < ttl - tonumber(ARGV[3]) then
  redis.call('PEXPIRE', vehicle, ttl)
end
redis.call('SPUBLISH', ARGV[#ARGV - 1], ARGV[#ARGV])
return 1
