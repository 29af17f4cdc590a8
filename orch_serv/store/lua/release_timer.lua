-- Remove a handled timer, unless it was set again meanwhile (its score is no longer the
-- lease this replica put on it).
-- KEYS[1] timer zset, KEYS[2] the run's timer members. ARGV[1] member, ARGV[2] lease end ms.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[1])
  return 1
end
return 0
