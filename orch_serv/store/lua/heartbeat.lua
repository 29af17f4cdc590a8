-- A service picked up a command (first heartbeat) or is still working on it.
-- KEYS[1] run hash, KEYS[2] event list, KEYS[3] timer zset, KEYS[4] the run's timer members
-- ARGV[1] expected state (RUNNING or COMPENSATING), ARGV[2] step, ARGV[3] attempt,
-- ARGV[4] now (s), ARGV[5] step_started event JSON, ARGV[6] heartbeat event JSON ('' = none),
-- ARGV[7] dispatch timer member, ARGV[8] execution timer member, ARGV[9] its due ms ('' = none),
-- ARGV[10] heartbeat timer member, ARGV[11] its due ms ('' = none)
local cur = redis.call('HMGET', KEYS[1], 'state', 'step', 'attempt', 'phase')
if not cur[1] then
  return BEAT.NOT_FOUND
end
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] or cur[3] ~= ARGV[3] then
  return BEAT.STALE
end
local result = BEAT.BEAT
if cur[4] == PHASE.DISPATCHED then
  redis.call('HSET', KEYS[1], 'phase', PHASE.STARTED, 'updated_at', ARGV[4])
  redis.call('ZREM', KEYS[3], ARGV[7])
  redis.call('SREM', KEYS[4], ARGV[7])
  if ARGV[9] ~= '' then
    redis.call('ZADD', KEYS[3], ARGV[9], ARGV[8])
    redis.call('SADD', KEYS[4], ARGV[8])
  end
  redis.call('RPUSH', KEYS[2], ARGV[5])
  result = BEAT.STARTED
elseif cur[4] ~= PHASE.STARTED then
  return BEAT.STALE
end
if ARGV[11] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[11], ARGV[10])
  redis.call('SADD', KEYS[4], ARGV[10])
end
if ARGV[6] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[6])
end
return result
