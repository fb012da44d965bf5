-- Issue the fencing token of a lock taken while its fence counter was missing.
-- KEYS[1] lock key, KEYS[2] fence counter (same hash tag); ARGV[1] holder token
-- Returns {1, fence} issued, {-1, 0} counter still missing (seed it, then call again),
--         {0, 0} the lock is no longer ours: a token now could be lower than a later
--         holder's, so none is issued.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0, 0}
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {-1, 0}
end
return {1, redis.call('INCR', KEYS[2])}
