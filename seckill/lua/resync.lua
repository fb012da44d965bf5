-- Overwrite a sale's counters with values computed from the database.
--
-- KEYS[1] meta, KEYS[2] stock, KEYS[3] users
-- ARGV: remaining, expire_at_ms, then pairs of (customer id, units held)
--
-- Used by staff ("re-sync Redis from DB") and `reconcile --fix`. Refuses to run on a
-- sale that was never warmed (no metadata), which the warm-up handles instead.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
redis.call('DEL', KEYS[3])
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('PEXPIREAT', KEYS[2], ARGV[2])
redis.call('PEXPIREAT', KEYS[3], ARGV[2])
return 1
