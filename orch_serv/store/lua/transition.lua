-- Compare-and-set transition of one run: check (state, step, attempt, phase), then write the
-- new position, append events, add statuses, move the state index and set/clear timers,
-- atomically. A failed check appends the 'ignored' event (duplicate or late result).
-- KEYS[1] run hash, KEYS[2] event list, KEYS[3] status set, KEYS[4] timer zset,
-- KEYS[5] the run's set of timer members, KEYS[6] (a group member's run only) the parent's
-- join hash (store/groups.py)
-- Arguments: named, declared above by shape.TRANSITION_ARGS: expect_* ('*' = any),
-- new_* (new_step or new_attempt '*' = keep), cause, now, retention_ms (terminal only),
-- clear_timers ('1'), ignored (JSON of the event recorded if the check fails, or ''),
-- join_member and join_timer (a group member's field in KEYS[6] and its group's check, or ''),
-- and the lists expect_states, fields (name, value pairs), events, statuses, timers_add
-- (member, due ms pairs), timers_remove. base: the shard's key base (store/keys.py); prefix:
-- the deployment's (for the 'finished' channel).
-- Reply: once applied, the one string APPLIED; otherwise six strings: outcome, state, step,
-- attempt, phase, reason ('' = none), the position being the run's current one.
local cur = redis.call('HMGET', KEYS[1], 'state', 'step', 'attempt', 'phase', 'cause', 'key')
if not cur[1] then
  return {OUTCOME.NOT_FOUND, '', '', '', '', ''}
end
local state_ok = false
for j = expect_states_at, expect_states_at + expect_states_n - 1 do
  if ARGV[j] == cur[1] then state_ok = true end
end
if not state_ok or (expect_step ~= '*' and cur[2] ~= expect_step)
    or (expect_attempt ~= '*' and cur[3] ~= expect_attempt)
    or (expect_phase ~= '*' and cur[4] ~= expect_phase) then
  local outcome, reason = OUTCOME.STALE, 'stale_step'
  if cur[5] == cause then
    outcome, reason = OUTCOME.ALREADY_APPLIED, 'duplicate'
  elseif TERMINAL[cur[1]] then
    reason = 'run_finished'
  elseif cur[2] == expect_step and cur[3] ~= expect_attempt then
    reason = 'stale_attempt'
  elseif cur[2] == expect_step then
    reason = 'stale_phase'
  end
  if ignored ~= '' then
    local ev = cjson.decode(ignored)
    ev[EVENT_REASON] = reason  -- events are stored with short keys (Event.to_storage)
    if reason ~= 'duplicate' then ev[EVENT_KIND] = LATE_RESULT end
    redis.call('RPUSH', KEYS[2], cjson.encode(ev))
  end
  return {outcome, cur[1], cur[2], cur[3], cur[4] or '', reason}
end
local finished = TERMINAL[new_state]
local hash = {'state', new_state, 'step', new_step == '*' and cur[2] or new_step,
  'attempt', new_attempt == '*' and cur[3] or new_attempt, 'phase', new_phase,
  'cause', cause, 'updated_at', now}
for j = fields_at, fields_at + fields_n - 1 do hash[#hash + 1] = ARGV[j] end
redis.call('HSET', KEYS[1], unpack(hash))
if finished then
  -- what only an active run needs goes (memory of retained runs); a retry of a failed
  -- step still needs its input
  redis.call('HDEL', KEYS[1], 'cause', 'updated_at', 'phase')
  if new_state == STATE.SUCCEEDED then redis.call('HDEL', KEYS[1], 'step_input') end
end
if events_n > 0 then
  redis.call('RPUSH', KEYS[2], unpack(ARGV, events_at, events_at + events_n - 1))
end
if statuses_n > 0 then
  redis.call('SADD', KEYS[3], unpack(ARGV, statuses_at, statuses_at + statuses_n - 1))
end
if finished or clear_timers == '1' then
  local members = redis.call('SMEMBERS', KEYS[5])
  for _, m in ipairs(members) do
    if finished or not string.find(m, DEADLINE_MARK, 1, true) then
      redis.call('ZREM', KEYS[4], m)
      redis.call('SREM', KEYS[5], m)
    end
  end
end
for j = timers_add_at, timers_add_at + timers_add_n - 1, 2 do
  redis.call('ZADD', KEYS[4], ARGV[j + 1], ARGV[j])
  redis.call('SADD', KEYS[5], ARGV[j])
end
for j = timers_remove_at, timers_remove_at + timers_remove_n - 1 do
  redis.call('ZREM', KEYS[4], ARGV[j])
  redis.call('SREM', KEYS[5], ARGV[j])
end
if finished and join_member ~= '' and redis.call('EXISTS', KEYS[6]) == 1 then
  -- a group member ended: record it in its parent's join hash and make the group's check
  -- due now, in this same call (docs/groups.md); HSET is idempotent under redelivery
  redis.call('HSET', KEYS[6], join_member, new_state)
  redis.call('ZADD', KEYS[4], 'XX', math.floor(tonumber(now) * 1000), join_timer)
end
if cur[1] ~= new_state then
  redis.call('ZREM', state_index(base, cur[1]), run_id)
  redis.call('ZADD', state_index(base, new_state), now, run_id)
end
local retention = tonumber(retention_ms)
if finished and retention > 0 then
  for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], retention) end
  redis.call('DEL', KEYS[5])
  if cur[6] and cur[6] ~= '' then
    redis.call('PEXPIRE', key_ref(base, cur[6]), retention)
  end
  redis.call('PUBLISH', finished_channel(prefix), run_id)
elseif TERMINAL[cur[1]] and not finished then
  -- resumed (retry of a failed run): keep it for good again
  for k = 1, 3 do redis.call('PERSIST', KEYS[k]) end
  if cur[6] and cur[6] ~= '' then
    redis.call('PERSIST', key_ref(base, cur[6]))
  end
end
return OUTCOME.APPLIED
