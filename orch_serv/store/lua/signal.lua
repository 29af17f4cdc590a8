-- Send a signal to a run: keep its data in the run hash, append the event, and make the
-- run's pending wait check (if its current step waits) due now, so a wait for it ends at once.
-- KEYS[1] run hash, KEYS[2] event list, KEYS[3] timer zset.
-- Arguments: named, declared above by signals.SIGNAL_ARGS.
-- Reply: {answer, run state}; the answer is SIGNAL.OK, SIGNAL.NOT_FOUND or SIGNAL.FINISHED.
local cur = redis.call('HMGET', KEYS[1], 'state', 'step', 'attempt')
if not cur[1] then return {SIGNAL.NOT_FOUND, ''} end
if TERMINAL[cur[1]] then return {SIGNAL.FINISHED, cur[1]} end
redis.call('HSET', KEYS[1], field, data)
redis.call('RPUSH', KEYS[2], event)
redis.call('ZADD', KEYS[3], 'XX', now_ms, run_id .. wait_mid .. cur[2] .. '|' .. cur[3])
return {SIGNAL.OK, cur[1]}
