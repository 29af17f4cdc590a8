-- Create a run in state PENDING, or return the live run that already holds the same key.
-- KEYS[1] run hash, KEYS[2] event list, KEYS[3] timer zset, KEYS[4] the run's timer members
-- ARGV[1] key prefix, ARGV[2] run id, ARGV[3] external key ('' for none), ARGV[4] now (s),
-- ARGV[5] flow index name, ARGV[6] run_created event (JSON), ARGV[7] deadline timer member,
-- ARGV[8] its due ms ('' = no deadline), ARGV[9..] field/value pairs
local prefix, run_id, key, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if key ~= '' then
  local key_ref = prefix .. ':key:' .. key
  local existing = redis.call('GET', key_ref)
  if existing then
    local state = redis.call('HGET', prefix .. ':run:{' .. existing .. '}', 'state')
    if state then
      return {0, existing, state}
    end
  end
  redis.call('SET', key_ref, run_id)
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, run_id, redis.call('HGET', KEYS[1], 'state')}
end
local fields = {}
for i = 9, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'state', 'PENDING', 'step', '0', 'attempt', '0', 'phase', 'QUEUED',
  'cause', '', 'created_at', now, 'updated_at', now, unpack(fields))
if ARGV[8] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[8], ARGV[7])
  redis.call('SADD', KEYS[4], ARGV[7])
end
redis.call('RPUSH', KEYS[2], ARGV[6])
redis.call('ZADD', prefix .. ':idx:state:PENDING', now, run_id)
redis.call('ZADD', prefix .. ':idx:flow:' .. ARGV[5], now, run_id)
return {1, run_id, 'PENDING'}
