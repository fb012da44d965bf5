-- Set the remaining lease of a lock we still hold (watchdog renewal, extend, reacquire).
-- KEYS[1] lock key; ARGV[1] holder token, ARGV[2] new lease in ms
-- Returns 1 when renewed, 0 when the lock is no longer ours (never touches another
-- holder's key, never brings back an expired one).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
