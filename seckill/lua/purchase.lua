-- A flash-sale purchase in one atomic step: the whole Redis side of it, one round trip.
--
-- KEYS[1] meta      hash: starts_ms, ends_ms, limit, enabled, payment_ms
-- KEYS[2] stock     string: units left to reserve
-- KEYS[3] users     hash: customer id -> units held (reserved or ordered)
-- KEYS[4] resv      hash: reservation id -> "customer:quantity:reserved_ms"
-- KEYS[5] rate limit counter of the customer, KEYS[6] of the client IP
-- KEYS[7] due       sorted set: reservation id -> payment deadline (ms), the per-order
--                   countdown (seckill/services/deadlines.py)
-- KEYS[8] intents   stream: one entry per accepted purchase, read by the order writer
-- KEYS[9] idem      hash: "customer:key" -> the first answer to that Idempotency-Key
-- KEYS[10] numbers  hash: order number -> "reservation:customer:quantity:deadline_ms"
--                   while its order is on its way (the order page shows "confirming")
-- ARGV: customer id, quantity, reservation id, customer limit per window, IP limit per
--       window (0 = off), window in ms, order number, idempotency field ("" = none),
--       unit price, the order's idempotency key ("" = none), '1' when the request waits
--       for the writer's answer (SECKILL_ACK=committed; absent = '0'), '1' when these
--       keys are one bucket of a bucketed sale (absent = '0'): an empty bucket is then not
--       the sale's last word (units may move in from the reserve or another bucket,
--       seckill/buckets.py), so its sold_out / insufficient is not remembered for the key
--
-- Returns {outcome, value, order number}: {'ok', units left, number}; {'replay',
-- "the first answer", ''}; or a refusal {'sold_out' | 'insufficient' | 'limit_reached' |
-- 'not_started' | 'ended' | 'rate_limited' | 'unavailable', value, ''}.
--
-- Why it is safe: Redis runs a script alone, so the replay check, the window, the
-- per-customer count, the stock check, the decrement, the reservation and the order
-- intent see one state and no request can slip between them (the read-then-decrement
-- of the incident in docs/architecture.md could). This script is the one point where
-- a customer's parallel requests are put in order, so no lock is needed around it. The
-- reservation and its intent are written together: a unit is never reserved without
-- an order on its way. Time is Redis's own clock, so a web worker with a skewed clock
-- cannot open the sale early. Missing keys answer "unavailable": an empty Redis never
-- reads as "stock available". The database still refuses an oversell, a second unit
-- over the limit and a duplicate on its own when the writer commits the intent.

local meta = redis.call('HMGET', KEYS[1], 'starts_ms', 'ends_ms', 'limit', 'enabled', 'payment_ms')
if not meta[1] then
  return {'unavailable', 0, ''}
end

local field = ARGV[8]
if field ~= '' then
  local earlier = redis.call('HGET', KEYS[9], field)
  if earlier then
    return {'replay', earlier, ''}
  end
end

-- Final refusals are remembered for the key; busy and rate-limited answers are not.
local function refuse(outcome, value)
  if field ~= '' then
    redis.call('HSET', KEYS[9], field, outcome .. ':' .. value)
  end
  return {outcome, value, ''}
end

local function over_limit(key, limit)
  if limit <= 0 then
    return false
  end
  local count = redis.call('INCR', key)
  if count == 1 then
    redis.call('PEXPIRE', key, ARGV[6])
  end
  return count > limit
end
if over_limit(KEYS[5], tonumber(ARGV[4])) or over_limit(KEYS[6], tonumber(ARGV[5])) then
  return {'rate_limited', 0, ''}
end

if meta[4] ~= '1' then
  return refuse('ended', 0)
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if now < tonumber(meta[1]) then
  return refuse('not_started', tonumber(meta[1]) - now)
end
if now >= tonumber(meta[2]) then
  return refuse('ended', 0)
end

local stock = redis.call('GET', KEYS[2])
if not stock then
  return {'unavailable', 0, ''}
end
stock = tonumber(stock)
local quantity = tonumber(ARGV[2])
local held = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if held + quantity > tonumber(meta[3]) then
  return refuse('limit_reached', held)
end
if stock < quantity then
  local outcome = stock <= 0 and 'sold_out' or 'insufficient'
  if ARGV[12] == '1' then
    return {outcome, math.max(stock, 0), ''}
  end
  return refuse(outcome, math.max(stock, 0))
end

local deadline = now + tonumber(meta[5] or '0')
local number = ARGV[7]
redis.call('DECRBY', KEYS[2], quantity)
redis.call('HINCRBY', KEYS[3], ARGV[1], quantity)
redis.call('HSET', KEYS[4], ARGV[3], ARGV[1] .. ':' .. quantity .. ':' .. now)
redis.call('ZADD', KEYS[7], deadline, ARGV[3])
redis.call('XADD', KEYS[8], '*', 'r', ARGV[3], 'n', number, 'u', ARGV[1], 'q', quantity,
           'p', ARGV[9], 'k', ARGV[10], 'd', deadline, 't', now, 'w', ARGV[11] or '0')
redis.call('HSET', KEYS[10], number, ARGV[3] .. ':' .. ARGV[1] .. ':' .. quantity .. ':' .. deadline)
if field ~= '' then
  redis.call('HSET', KEYS[9], field, 'ok:' .. number)
end
return {'ok', stock - quantity, number}
