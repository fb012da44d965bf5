-- Raise a fence counter to at least ARGV[1]; never lowers it.
-- KEYS[1] fence counter; ARGV[1] floor reserved in the database
-- Raising rather than SET NX lets two clients seed at once after a Redis restart:
-- whichever order they land in, the counter ends at the higher reserved floor.
-- Returns 1 when it raised the counter, 0 when it was already at or above the floor.
local floor = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
