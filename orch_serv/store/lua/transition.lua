-- Compare-and-set transition of one run: check (state, step, attempt, phase), then write the
-- new position, append events, add statuses, move the state index and set/clear timers,
-- atomically. A failed check appends the 'ignored' event (duplicate or late result).
-- KEYS[1] run hash, KEYS[2] event list, KEYS[3] status set, KEYS[4] timer zset,
-- KEYS[5] the run's set of timer members
-- ARGV[1] one JSON object with named members (RedisRunStore.transition builds it):
--   prefix, run_id, cause, now (string), retention_ms (terminal only, else 0),
--   expect = {states = [..], step, attempt, phase} ('*' = any),
--   new = {state, step, attempt, phase} (step or attempt '*' = keep),
--   fields = [[name, JSON value], ..], events = [JSON, ..], statuses = [..],
--   timers_add = [[member, due ms], ..], timers_remove = [member, ..],
--   clear_timers (boolean), ignored (JSON of the event recorded if the check fails, or '')
-- Reply, always six strings: outcome, state, step, attempt, phase, reason ('' = none); the
-- position is the run's current one (after a failed check) or previous one (once applied).
local a = cjson.decode(ARGV[1])
local prefix, run_id, expect, new = a.prefix, a.run_id, a.expect, a.new
local cur = redis.call('HMGET', KEYS[1], 'state', 'step', 'attempt', 'phase', 'cause', 'key')
if not cur[1] then
  return {OUTCOME.NOT_FOUND, '', '', '', '', ''}
end
local state_ok = false
for _, s in ipairs(expect.states) do
  if s == cur[1] then state_ok = true end
end
if not state_ok or (expect.step ~= '*' and cur[2] ~= expect.step)
    or (expect.attempt ~= '*' and cur[3] ~= expect.attempt)
    or (expect.phase ~= '*' and cur[4] ~= expect.phase) then
  local outcome, reason = OUTCOME.STALE, 'stale_step'
  if cur[5] == a.cause then
    outcome, reason = OUTCOME.ALREADY_APPLIED, 'duplicate'
  elseif TERMINAL[cur[1]] then
    reason = 'run_finished'
  elseif cur[2] == expect.step and cur[3] ~= expect.attempt then
    reason = 'stale_attempt'
  elseif cur[2] == expect.step then
    reason = 'stale_phase'
  end
  if a.ignored ~= '' then
    local ev = cjson.decode(a.ignored)
    ev[EVENT_REASON] = reason  -- events are stored with short keys (Event.to_storage)
    if reason ~= 'duplicate' then ev[EVENT_KIND] = LATE_RESULT end
    redis.call('RPUSH', KEYS[2], cjson.encode(ev))
  end
  return {outcome, cur[1], cur[2], cur[3], cur[4] or '', reason}
end
local new_step = new.step == '*' and cur[2] or new.step
local new_attempt = new.attempt == '*' and cur[3] or new.attempt
local finished = TERMINAL[new.state]
local hash = {'state', new.state, 'step', new_step, 'attempt', new_attempt, 'phase', new.phase,
  'cause', a.cause, 'updated_at', a.now}
for _, kv in ipairs(a.fields) do
  hash[#hash + 1] = kv[1]
  hash[#hash + 1] = kv[2]
end
redis.call('HSET', KEYS[1], unpack(hash))
if finished then
  -- what only an active run needs goes (memory of retained runs); a retry of a failed
  -- step still needs its input
  redis.call('HDEL', KEYS[1], 'cause', 'updated_at', 'phase')
  if new.state == STATE.SUCCEEDED then redis.call('HDEL', KEYS[1], 'step_input') end
end
if #a.events > 0 then
  redis.call('RPUSH', KEYS[2], unpack(a.events))
end
if #a.statuses > 0 then
  redis.call('SADD', KEYS[3], unpack(a.statuses))
end
if finished or a.clear_timers then
  local members = redis.call('SMEMBERS', KEYS[5])
  for _, m in ipairs(members) do
    if finished or not string.find(m, DEADLINE_MARK, 1, true) then
      redis.call('ZREM', KEYS[4], m)
      redis.call('SREM', KEYS[5], m)
    end
  end
end
for _, timer in ipairs(a.timers_add) do
  redis.call('ZADD', KEYS[4], timer[2], timer[1])
  redis.call('SADD', KEYS[5], timer[1])
end
for _, member in ipairs(a.timers_remove) do
  redis.call('ZREM', KEYS[4], member)
  redis.call('SREM', KEYS[5], member)
end
if cur[1] ~= new.state then
  redis.call('ZREM', state_index(prefix, cur[1]), run_id)
  redis.call('ZADD', state_index(prefix, new.state), a.now, run_id)
end
local retention = tonumber(a.retention_ms)
if finished and retention > 0 then
  for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], retention) end
  redis.call('DEL', KEYS[5])
  if cur[6] and cur[6] ~= '' then
    redis.call('PEXPIRE', key_ref(prefix, cur[6]), retention)
  end
  redis.call('PUBLISH', finished_channel(prefix), run_id)
elseif TERMINAL[cur[1]] and not finished then
  -- resumed (retry of a failed run): keep it for good again
  for k = 1, 3 do redis.call('PERSIST', KEYS[k]) end
  if cur[6] and cur[6] ~= '' then
    redis.call('PERSIST', key_ref(prefix, cur[6]))
  end
end
return {OUTCOME.APPLIED, cur[1], cur[2], cur[3], cur[4] or '', ''}
