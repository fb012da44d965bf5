-- Release a lock only if it still carries our token, and wake one waiter.
-- KEYS[1] lock key, KEYS[2] wake list (same hash tag)
-- ARGV[1] holder token, ARGV[2] ms the wake signal stays if nobody is waiting yet
-- Returns 1 released, 0 no lock at all (lease ran out, or an earlier release of ours
-- landed), -1 somebody else holds it now (left untouched).
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('DEL', KEYS[1])
  -- One signal at most: a release frees the lock for one waiter, so a second element
  -- would only wake a second waiter to find it taken again.
  redis.call('LPUSH', KEYS[2], '1')
  redis.call('LTRIM', KEYS[2], 0, 0)
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
if holder then
  return -1
end
return 0
