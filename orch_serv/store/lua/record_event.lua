-- Append one event (and optionally a status) to a run's history.
-- KEYS[1] run hash, KEYS[2] event list, KEYS[3] status set, KEYS[4..] the path indexes of
-- the event's file paths (lineage, s3_path): the run id is added to each, scored by now
-- ARGV[1] event JSON, ARGV[2] status name ('' = none), ARGV[3] now (s), ARGV[4] run id
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return false
end
redis.call('RPUSH', KEYS[2], ARGV[1])
if ARGV[2] ~= '' then
  redis.call('SADD', KEYS[3], ARGV[2])
end
for i = 4, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[3], ARGV[4])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
return state
