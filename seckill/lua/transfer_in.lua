-- Step 2 of a stock transfer (transfer_out.lua is step 1): add the units to the target
-- bucket, once per transfer id.
--
-- KEYS[1] stock of the target bucket, KEYS[2] xfer:in of the target (hash: transfer id
-- -> "source:units", every transfer it has received), KEYS[3] the target's meta (its expiry)
-- ARGV[1] transfer id, ARGV[2] units, ARGV[3] the sale's id, published on the units-back
--         channel (seckill/cache.py) so that no web process keeps a stale "sold out",
-- ARGV[4] the source space ("reserve" or a bucket's), kept in the received record
--
-- Returns 1 when the units were added now, 0 when this transfer was received before.
--
-- Why it is exactly once: HSETNX on the transfer id and the increment are one script on
-- the target's slot, so a retried step 2 (the mover and the sweep both finishing one
-- transfer, a crash after this script and before the outgoing record was cleared)
-- finds the id and adds nothing. The received ids are kept as long as the sale's keys.
-- A target that is not in Redis (wiped) refuses with -1 and the record stays: the
-- units are then counted by the warm-up from the database.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[4] .. ':' .. ARGV[2]) == 0 then
  return 0
end
redis.call('INCRBY', KEYS[1], ARGV[2])
local expiry = redis.call('PEXPIRETIME', KEYS[3])
if expiry > 0 then
  redis.call('PEXPIREAT', KEYS[2], expiry)
end
redis.call('PUBLISH', 'seckill:units-back', ARGV[3])
return 1
