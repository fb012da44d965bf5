-- Take a lease-based lock and issue its fencing token in one atomic step.
-- KEYS[1] lock key, KEYS[2] fence counter (same hash tag)
-- ARGV[1] holder token (random per acquisition), ARGV[2] lease in ms,
-- ARGV[3] "1" to issue a fencing token, "0" for a lock without fencing
-- Returns {1, fence} when taken (fence 0 without fencing),
--         {2, 0}     when taken but the fence counter is missing (new name, or Redis
--                    lost its data): the token is issued later by lock_fence_issue.lua,
--                    once the client has seeded the counter from the database,
--         {0, pttl}  when somebody else holds it (pttl: ms left on their lease).
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('GET', KEYS[1]) == ARGV[1] then
    -- The client retried a call whose reply it lost, and that call took the lock:
    -- answer as it did, instead of making us wait a whole lease for our own key.
    if ARGV[3] ~= '1' then
      return {1, 0}
    end
    local fence = redis.call('GET', KEYS[2])
    if not fence then
      return {2, 0}
    end
    return {1, tonumber(fence)}
  end
  return {0, redis.call('PTTL', KEYS[1])}
end
if ARGV[3] ~= '1' then
  return {1, 0}
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  -- Counting from zero here could hand out a token an older holder already has.
  return {2, 0}
end
return {1, redis.call('INCR', KEYS[2])}
