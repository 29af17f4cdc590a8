-- Where a run is: the read a service worker makes before it starts a command's handler.
-- KEYS[1] run hash
-- Returns {state, step, attempt, phase} (false fields when the run does not exist).
return redis.call('HMGET', KEYS[1], 'state', 'step', 'attempt', 'phase')
