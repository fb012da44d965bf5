-- Overwrite a sale's counters from a database snapshot, counting the reservations still
-- open at this very moment inside Redis.
--
-- KEYS[1] meta, KEYS[2] stock, KEYS[3] users, KEYS[4] resv
-- ARGV[1] units left in the DB pool, ARGV[2] expire_at_ms, ARGV[3] n = number of settled
-- reservation ids, ARGV[4 .. 3+n] those ids (their order exists), then pairs of
-- (customer id, units in live orders)
--
-- Why it is exact: the DB values come from one statement (one read view). A
-- reservation that is not settled in that snapshot is still in the hash here, whether
-- its order was written after the snapshot or not yet, so it is subtracted from a pool
-- that did not count it. Computing "open" outside the script would let a purchase slip
-- in between the read and the write. Refuses a sale that was never warmed (-1).

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1, 0}
end
local settled = tonumber(ARGV[3])
for i = 4, 3 + settled do
  redis.call('HDEL', KEYS[4], ARGV[i])
end
redis.call('DEL', KEYS[3])
for i = 4 + settled, #ARGV, 2 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
local open = 0
local entries = redis.call('HGETALL', KEYS[4])
for i = 1, #entries, 2 do
  local customer, quantity = string.match(entries[i + 1], '^(%d+):(%d+):')
  open = open + tonumber(quantity)
  redis.call('HINCRBY', KEYS[3], customer, tonumber(quantity))
end
local remaining = math.max(tonumber(ARGV[1]) - open, 0)
redis.call('SET', KEYS[2], remaining)
for i = 2, 4 do
  redis.call('PEXPIREAT', KEYS[i], ARGV[2])
end
return {remaining, open}
