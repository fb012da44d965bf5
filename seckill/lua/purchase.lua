-- Reserve units of a flash sale for one customer, in one atomic step.
--
-- KEYS[1] meta      hash: starts_ms, ends_ms, limit, enabled
-- KEYS[2] stock     string: units left to reserve
-- KEYS[3] users     hash: customer id -> units held (reserved or ordered)
-- KEYS[4] resv      hash: reservation id -> "customer:quantity:reserved_ms"
-- KEYS[5] rate limit counter of the customer, KEYS[6] of the client IP
-- KEYS[7] due       sorted set: reservation id -> payment deadline (ms), the per-order
--                   countdown that seckill.tasks.expire_due_orders works through
-- ARGV: customer id, quantity, reservation id, customer limit per window,
--       IP limit per window (0 = off), window in ms
--
-- Why it is safe: Redis runs a script alone, so the window check, the per-customer
-- count, the stock check and the decrement see one state and no request can slip
-- between them (the read-then-decrement of the incident in docs/architecture.md could). Time is Redis's own
-- clock, so a web worker with a skewed clock cannot open the sale early. Missing keys
-- answer "unavailable": an empty Redis never reads as "stock available".

local meta = redis.call('HMGET', KEYS[1], 'starts_ms', 'ends_ms', 'limit', 'enabled', 'payment_ms')
if not meta[1] then
  return {'unavailable', 0}
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
  return {'rate_limited', 0}
end

if meta[4] ~= '1' then
  return {'ended', 0}
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if now < tonumber(meta[1]) then
  return {'not_started', tonumber(meta[1]) - now}
end
if now >= tonumber(meta[2]) then
  return {'ended', 0}
end

local stock = redis.call('GET', KEYS[2])
if not stock then
  return {'unavailable', 0}
end
stock = tonumber(stock)
local quantity = tonumber(ARGV[2])
local held = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if held + quantity > tonumber(meta[3]) then
  return {'limit_reached', held}
end
if stock < quantity then
  if stock <= 0 then
    return {'sold_out', 0}
  end
  return {'insufficient', stock}
end

redis.call('DECRBY', KEYS[2], quantity)
redis.call('HINCRBY', KEYS[3], ARGV[1], quantity)
redis.call('HSET', KEYS[4], ARGV[3], ARGV[1] .. ':' .. quantity .. ':' .. now)
redis.call('ZADD', KEYS[7], now + tonumber(meta[5] or '0'), ARGV[3])
return {'ok', stock - quantity}
