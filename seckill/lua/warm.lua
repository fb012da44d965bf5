-- Load a sale into Redis from the database, or refresh its metadata.
--
-- KEYS[1] meta, KEYS[2] stock, KEYS[3] users, KEYS[4] resv, KEYS[5] returned, KEYS[6] due,
-- KEYS[7] intents (stream), KEYS[8] idem, KEYS[9] numbers
-- ARGV: starts_ms, ends_ms, limit, enabled ('1'/'0'), stock_total, remaining,
--       expire_at_ms, payment window in ms, then pairs of (customer id, units held)
--
-- The metadata is always rewritten (an edit of the window or the kill switch takes
-- effect at once). The counters are written only when the stock key is missing:
-- warming a live sale twice must never put sold units back on sale. The intents stream
-- and its consumer group are created if missing and never emptied here: intents in it
-- are purchases already accepted, on their way to the database. The two hashes get a
-- placeholder field so that their expiry, set here, survives their last real field.

redis.call('HSET', KEYS[1], 'starts_ms', ARGV[1], 'ends_ms', ARGV[2], 'limit', ARGV[3],
           'enabled', ARGV[4], 'total', ARGV[5], 'payment_ms', ARGV[8])
redis.call('PEXPIREAT', KEYS[1], ARGV[7])
pcall(redis.call, 'XGROUP', 'CREATE', KEYS[7], 'writers', '0', 'MKSTREAM')
redis.call('HSETNX', KEYS[8], '_', '')
redis.call('HSETNX', KEYS[9], '_', '')
for i = 7, 9 do
  redis.call('PEXPIREAT', KEYS[i], ARGV[7])
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5], KEYS[6])
for i = 9, #ARGV, 2 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
redis.call('SET', KEYS[2], ARGV[6])
for i = 2, 6 do
  redis.call('PEXPIREAT', KEYS[i], ARGV[7])
end
return 1
