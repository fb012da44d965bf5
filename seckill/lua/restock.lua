-- Put the units of a cancelled or expired order back on sale, once.
--
-- KEYS[1] stock, KEYS[2] users, KEYS[3] returned (hash: order number -> 1), KEYS[4] resv,
-- KEYS[5] due (payment deadlines)
-- ARGV[1] order number, ARGV[2] customer id, ARGV[3] quantity, ARGV[4] reservation id,
-- ARGV[5] the sale's id, published on the units-back channel (seckill/cache.py)
--
-- Exactly once: HSETNX on the order number succeeds for the first caller only, so a
-- retried task or a second sweep cannot return the same units twice. If Redis was
-- wiped (no stock key) nothing is written: the warm-up rebuilds from the database,
-- where the units are already back.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if redis.call('HSETNX', KEYS[3], ARGV[1], 1) == 0 then
  return 0
end
redis.call('HDEL', KEYS[4], ARGV[4])
redis.call('ZREM', KEYS[5], ARGV[4])
redis.call('INCRBY', KEYS[1], ARGV[3])
redis.call('PUBLISH', 'seckill:units-back', ARGV[5])
if redis.call('HINCRBY', KEYS[2], ARGV[2], -tonumber(ARGV[3])) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
end
return 1
