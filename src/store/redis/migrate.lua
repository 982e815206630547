-- Moves a vehicle stored in the first layout (before the one-hash layout: a
-- sorted set per signal and the totals in the meta hash) into the current one
-- (one hash per vehicle, see record.lua), in place and atomically; the store
-- calls it when a write or read finds a meta hash without `layout`. Doing
-- nothing when there is nothing to move, so two callers racing to move one
-- vehicle are harmless.
--
-- KEYS[1] = the meta hash, then the sorted set of each signal the vehicle may
-- have (one per `total:<signal>` the hash holds); ARGV = those signals'
-- names, in the same order. A sorted set member is
-- `<timestamp>:<value>` scored by its timestamp, so the set in score order is
-- the window oldest first, as the field holds it. Each field becomes
-- `<total> <n> <newest> <members...>` (`window.rs`).
--
-- Everything is read first and the hash written before anything is deleted:
-- Redis does not undo a script's writes when it fails part-way, so a failure
-- (a full Redis refusing the HSET, say) leaves the first layout whole. The
-- hash keeps its expiry, which every key of the vehicle shared.
local meta = KEYS[1]
if redis.call('EXISTS', meta) == 0 or redis.call('HEXISTS', meta, 'layout') == 1 then
  return 0
end
local fields = {}
for j = 2, #KEYS do
  local name = ARGV[j - 1]
  local members = redis.call('ZRANGE', KEYS[j], 0, -1)
  if #members > 0 then
    local total = tonumber(redis.call('HGET', meta, 'total:' .. name) or '0')
    if total < #members then
      total = #members
    end
    local newest = string.match(members[#members], '^(%d+):')
    fields[#fields + 1] = 'w:' .. name
    fields[#fields + 1] = string.format('%d', total) .. ' ' .. #members .. ' ' .. newest .. ' '
      .. table.concat(members, ' ')
  end
end
-- In slices: unpack() takes at most a few thousand values at once.
for first = 1, #fields, 1000 do
  redis.call('HSET', meta, unpack(fields, first, math.min(first + 999, #fields)))
end
redis.call('HSET', meta, 'layout', '2')
for j = 2, #KEYS do
  redis.call('HDEL', meta, 'total:' .. ARGV[j - 1])
  redis.call('DEL', KEYS[j])
end
return 1
