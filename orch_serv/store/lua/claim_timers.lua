-- Claim due timers with a lease: each is re-scored to the lease's end, so that if the
-- claiming replica dies before handling it, the timer falls due again for another replica.
-- KEYS[1] timer zset. ARGV[1] now ms, ARGV[2] lease end ms, ARGV[3] max timers to claim.
-- Returns member, original due ms, member, due ms, ...
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0,
  tonumber(ARGV[3]))
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], ARGV[2], due[i])
end
return due
