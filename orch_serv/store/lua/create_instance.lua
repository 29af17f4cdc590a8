-- Create a status-model instance: a run of kind 'object' that starts RUNNING (phase STARTED,
-- so no recovery ever sends it a START), with its timeout as a deadline timer.
-- KEYS[1] run hash, KEYS[2] event list, KEYS[3] timer zset, KEYS[4] the run's timer members
-- Arguments: named, declared above by statuses.CREATE_ARGS.
-- Reply: 1 created, 0 the id is taken.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'state', STATE.RUNNING, 'step', '0', 'attempt', '0', 'phase',
  PHASE.STARTED, 'cause', '', 'created_at', now, 'updated_at', now,
  unpack(ARGV, fields_at, fields_at + fields_n - 1))
if deadline_ms ~= '' then
  redis.call('ZADD', KEYS[3], deadline_ms, deadline_member)
  redis.call('SADD', KEYS[4], deadline_member)
end
redis.call('RPUSH', KEYS[2], created_event)
redis.call('ZADD', state_index(base, STATE.RUNNING), now, run_id)
redis.call('ZADD', flow_index(base, model), now, run_id)
return 1
