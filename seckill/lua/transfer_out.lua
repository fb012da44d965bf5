-- Step 1 of a stock transfer between two key spaces of one bucketed sale (the reserve or
-- a bucket, then a bucket): take units from the source and record them as outgoing.
--
-- KEYS[1] stock of the source (the reserve or a bucket's counter)
-- KEYS[2] xfer:out of the source (hash: transfer id -> "target space:units:ms")
-- ARGV[1] transfer id, ARGV[2] units wanted, ARGV[3] the target space, ARGV[4] units the
--         source keeps for itself (0 for the reserve)
--
-- Returns the units taken (0: the source had none to spare, nothing recorded).
--
-- Why it is safe: the decrement and the outgoing record are one script on the source's
-- slot, so a unit leaves the source only with a record saying where it goes. Until step
-- 2 (transfer_in.lua) adds it to the target, the unit is counted "in flight" by
-- reconciliation; a crash between the steps leaves the record, and whoever finishes it
-- (the mover, the sweep, `reconcile --fix`) runs step 2 with the same id, which the
-- target applies at most once. A source that is not in Redis (wiped) gives nothing.

local stock = redis.call('GET', KEYS[1])
if not stock then
  return 0
end
local spare = tonumber(stock) - tonumber(ARGV[4])
local units = math.min(tonumber(ARGV[2]), spare)
if units <= 0 then
  return 0
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('DECRBY', KEYS[1], units)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3] .. ':' .. units .. ':' .. now)
local expiry = redis.call('PEXPIRETIME', KEYS[1])
if expiry > 0 then
  redis.call('PEXPIREAT', KEYS[2], expiry)
end
return units
