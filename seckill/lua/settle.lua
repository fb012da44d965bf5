-- The order writer's settlement of a committed batch, in one step: answer the requests
-- still waiting, acknowledge and delete the entries, forget the orders' "confirming" numbers.
--
-- KEYS[1] intents   the sale's stream
-- KEYS[2] numbers   hash: order number -> "reservation:customer:quantity:deadline_ms"
-- KEYS[3..] answer  one list per intent whose request may still be waiting
--                   (seckill/keys.py `written`)
-- ARGV: consumer group, answer TTL (s), wait window (ms), n, then n entry ids, n order
--       numbers, then for each answer key: the intent's reservation time (ms, Redis
--       clock) and its answer (JSON)
--
-- Returns the number of answers pushed.
--
-- Why it is safe: it runs only after the COMMIT of the batch's orders (or of their
-- refusals), so an entry leaves the stream only once its outcome is durable. A writer
-- that dies before this script leaves the entries pending; the next writer finds them
-- written and runs this again, and a second answer in a list is harmless (a request
-- pops one answer and the list expires). A request waits at most the wait window after
-- its reservation (SECKILL_ACK_WAIT_SECONDS), measured on this server's clock like the
-- reservation time, so an answer for an older intent would never be read and is skipped.

local n = tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local window = tonumber(ARGV[3])
local ttl = tonumber(ARGV[2])
local base = 4 + 2 * n
local pushed = 0
for j = 3, #KEYS do
  local at = base + 2 * (j - 3)
  if now - tonumber(ARGV[at + 1]) <= window then
    redis.call('RPUSH', KEYS[j], ARGV[at + 2])
    redis.call('EXPIRE', KEYS[j], ttl)
    pushed = pushed + 1
  end
end
if n > 0 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 5, 4 + n))
  redis.call('XDEL', KEYS[1], unpack(ARGV, 5, 4 + n))
  redis.call('HDEL', KEYS[2], unpack(ARGV, 5 + n, 4 + 2 * n))
end
return pushed
