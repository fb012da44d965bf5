-- Take a lease-based lock and issue its fencing token in one atomic step.
-- KEYS[1] lock key, KEYS[2] fence counter (same hash tag)
-- ARGV[1] holder token (random per acquisition), ARGV[2] lease in ms,
-- ARGV[3] "1" to issue a fencing token, "0" for a lock without fencing
-- Returns {1, fence} when taken (fence 0 without fencing),
--         {0, pttl}  when somebody else holds it (pttl: ms left on their lease),
--         {-1, 0}    when the fence counter is missing (new name or Redis lost its data):
--                    nothing was written; the client seeds the counter and calls again.
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('GET', KEYS[1]) == ARGV[1] then
    -- The client retried a call whose reply it lost, and that call took the lock:
    -- answer as it did, instead of making us wait a whole lease for our own key.
    return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
  end
  return {0, redis.call('PTTL', KEYS[1])}
end
if ARGV[3] ~= '1' then
  return {1, 0}
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  -- Counting from zero here could hand out a token an older holder already has.
  redis.call('DEL', KEYS[1])
  return {-1, 0}
end
return {1, redis.call('INCR', KEYS[2])}
