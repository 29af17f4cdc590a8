-- Create a run in state PENDING unless a live run already holds its idempotency key.
-- KEYS[1] run hash, KEYS[2] event list, KEYS[3] timer zset, KEYS[4] the run's timer members
-- ARGV[1] base (the shard's key base), ARGV[2] run id, ARGV[3] key ('' = none), ARGV[4] now, ARGV[5] flow name,
-- ARGV[6] run_created event JSON, ARGV[7] deadline timer member, ARGV[8] its due ms
-- ('' = no deadline), then field/value pairs of the hash.
-- Reply: {1 created | 0 existing, run id, state}.
local base, run_id, key, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if key ~= '' then
  local existing = redis.call('GET', key_ref(base, key))
  if existing then
    local state = redis.call('HGET', run_hash(base, existing), 'state')
    if state then
      return {0, existing, state}
    end
  end
  redis.call('SET', key_ref(base, key), run_id)
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, run_id, redis.call('HGET', KEYS[1], 'state')}
end
local fields = {}
for i = 9, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'state', STATE.PENDING, 'step', '0', 'attempt', '0', 'phase',
  PHASE.QUEUED, 'cause', '', 'created_at', now, 'updated_at', now, unpack(fields))
if ARGV[8] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[8], ARGV[7])
  redis.call('SADD', KEYS[4], ARGV[7])
end
redis.call('RPUSH', KEYS[2], ARGV[6])
redis.call('ZADD', state_index(base, STATE.PENDING), now, run_id)
redis.call('ZADD', flow_index(base, ARGV[5]), now, run_id)
return {1, run_id, STATE.PENDING}
