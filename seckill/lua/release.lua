-- Give back a reservation that did not become an order (the DB write failed).
--
-- KEYS[1] stock, KEYS[2] users, KEYS[3] resv, KEYS[4] due (payment deadlines)
-- ARGV[1] reservation id, ARGV[2] '1' to put the units back on sale, '0' to drop them
--         (when the DB said the sale is sold out, Redis was ahead and must not grow),
-- ARGV[3] the sale's id, published on the units-back channel (seckill/cache.py) so that
--         every web process forgets its "sold out" flag for the sale at once
--
-- Safe to call twice: the reservation entry is deleted in the same step that returns
-- its units, so a repeated call finds nothing and returns 0. A wiped Redis (no stock
-- key) is left alone: the next warm-up counts from the database.

local entry = redis.call('HGET', KEYS[3], ARGV[1])
if not entry then
  return 0
end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local customer, quantity = string.match(entry, '^(%d+):(%d+):')
quantity = tonumber(quantity)
if ARGV[2] == '1' then
  redis.call('INCRBY', KEYS[1], quantity)
  redis.call('PUBLISH', 'seckill:units-back', ARGV[3])
end
if redis.call('HINCRBY', KEYS[2], customer, -quantity) <= 0 then
  redis.call('HDEL', KEYS[2], customer)
end
return quantity
