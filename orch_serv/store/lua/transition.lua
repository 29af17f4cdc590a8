-- Compare-and-set transition of one run: check (state, step, attempt, phase), then write the
-- new position, append events, add statuses, move the state index and set/clear timers,
-- atomically. A failed check appends the 'ignored' event (duplicate or late result).
-- KEYS[1] run hash, KEYS[2] event list, KEYS[3] status set, KEYS[4] timer zset,
-- KEYS[5] the run's set of timer members
-- ARGV[1] prefix, ARGV[2] run id,
-- ARGV[3] expected states (comma-separated), ARGV[4] expected step ('*' = any),
-- ARGV[5] expected attempt ('*' = any), ARGV[6] expected phase ('*' = any),
-- ARGV[7..10] new state/step/attempt/phase (step or attempt '*' = keep),
-- ARGV[11] cause (message or timer id), ARGV[12] now (s), ARGV[13] retention ms (terminal),
-- ARGV[14] ignored-event JSON ('' = none), ARGV[15] '1' = clear the run's step timers,
-- then: n fields + pairs, n events + events, n statuses + statuses,
-- n timers to add + (member, due ms) pairs, n timers to remove + members
local prefix, run_id = ARGV[1], ARGV[2]
local cur = redis.call('HMGET', KEYS[1], 'state', 'step', 'attempt', 'phase', 'cause', 'key')
if not cur[1] then
  return {'NOT_FOUND'}
end
local state_ok = false
for s in string.gmatch(ARGV[3], '[^,]+') do
  if s == cur[1] then state_ok = true end
end
local terminal = {SUCCEEDED = true, FAILED = true, TIMED_OUT = true, CANCELLED = true,
  COMPENSATED = true, COMPENSATION_FAILED = true}
if not state_ok or (ARGV[4] ~= '*' and cur[2] ~= ARGV[4])
    or (ARGV[5] ~= '*' and cur[3] ~= ARGV[5]) or (ARGV[6] ~= '*' and cur[4] ~= ARGV[6]) then
  local outcome, reason = 'STALE', 'stale_step'
  if cur[5] == ARGV[11] then
    outcome, reason = 'ALREADY_APPLIED', 'duplicate'
  elseif terminal[cur[1]] then
    reason = 'run_finished'
  elseif cur[2] == ARGV[4] and cur[3] ~= ARGV[5] then
    reason = 'stale_attempt'
  elseif cur[2] == ARGV[4] then
    reason = 'stale_phase'
  end
  if ARGV[14] ~= '' then
    local ev = cjson.decode(ARGV[14])
    ev['r'] = reason  -- events are stored with short keys (Event.to_storage)
    if reason ~= 'duplicate' then ev['k'] = 'lr' end  -- late_result (KIND_CODES)
    redis.call('RPUSH', KEYS[2], cjson.encode(ev))
  end
  return {outcome, cur[1], cur[2], cur[3], reason, cur[4]}
end
local new_step = ARGV[8] == '*' and cur[2] or ARGV[8]
local new_attempt = ARGV[9] == '*' and cur[3] or ARGV[9]
local i = 16
local n = tonumber(ARGV[i])
local fields = {'state', ARGV[7], 'step', new_step, 'attempt', new_attempt, 'phase', ARGV[10],
  'cause', ARGV[11], 'updated_at', ARGV[12]}
for j = i + 1, i + 2 * n do fields[#fields + 1] = ARGV[j] end
i = i + 2 * n + 1
redis.call('HSET', KEYS[1], unpack(fields))
if terminal[ARGV[7]] then
  -- what only an active run needs goes (memory of retained runs); a retry of a failed
  -- step still needs its input
  redis.call('HDEL', KEYS[1], 'cause', 'updated_at', 'phase')
  if ARGV[7] == 'SUCCEEDED' then redis.call('HDEL', KEYS[1], 'step_input') end
end
n = tonumber(ARGV[i])
if n > 0 then
  local events = {}
  for j = i + 1, i + n do events[#events + 1] = ARGV[j] end
  redis.call('RPUSH', KEYS[2], unpack(events))
end
i = i + n + 1
n = tonumber(ARGV[i])
if n > 0 then
  local statuses = {}
  for j = i + 1, i + n do statuses[#statuses + 1] = ARGV[j] end
  redis.call('SADD', KEYS[3], unpack(statuses))
end
i = i + n + 1
local finished = terminal[ARGV[7]]
if finished or ARGV[15] == '1' then
  local members = redis.call('SMEMBERS', KEYS[5])
  for _, m in ipairs(members) do
    if finished or not string.find(m, '|deadline|', 1, true) then
      redis.call('ZREM', KEYS[4], m)
      redis.call('SREM', KEYS[5], m)
    end
  end
end
n = tonumber(ARGV[i])
for j = i + 1, i + 2 * n, 2 do
  redis.call('ZADD', KEYS[4], ARGV[j + 1], ARGV[j])
  redis.call('SADD', KEYS[5], ARGV[j])
end
i = i + 2 * n + 1
n = tonumber(ARGV[i])
for j = i + 1, i + n do
  redis.call('ZREM', KEYS[4], ARGV[j])
  redis.call('SREM', KEYS[5], ARGV[j])
end
if cur[1] ~= ARGV[7] then
  redis.call('ZREM', prefix .. ':idx:state:' .. cur[1], run_id)
  redis.call('ZADD', prefix .. ':idx:state:' .. ARGV[7], ARGV[12], run_id)
end
local retention = tonumber(ARGV[13])
if finished and retention > 0 then
  for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], retention) end
  redis.call('DEL', KEYS[5])
  if cur[6] and cur[6] ~= '' then
    redis.call('PEXPIRE', prefix .. ':key:' .. cur[6], retention)
  end
  redis.call('PUBLISH', prefix .. ':finished', run_id)
elseif terminal[cur[1]] and not finished then
  -- resumed (retry of a failed run): keep it for good again
  for k = 1, 3 do redis.call('PERSIST', KEYS[k]) end
  if cur[6] and cur[6] ~= '' then
    redis.call('PERSIST', prefix .. ':key:' .. cur[6])
  end
end
return {'APPLIED', cur[1], cur[2], cur[3], cur[4]}
