-- Compare-and-set transition of one run: check (state, step, attempt), then write the new
-- position, append events, add statuses and move the state index, atomically.
-- KEYS[1] run hash, KEYS[2] event list, KEYS[3] status set
-- ARGV[1] prefix, ARGV[2] run id, ARGV[3..5] expected state/step/attempt,
-- ARGV[6..8] new state/step/attempt, ARGV[9] cause (message id), ARGV[10] now (s),
-- ARGV[11] retention ms (0 = not terminal), ARGV[12] ignored-event JSON ('' = none),
-- ARGV[13] n fields, then field/value pairs, then n events, events, then n statuses, statuses
local prefix, run_id = ARGV[1], ARGV[2]
local cur = redis.call('HMGET', KEYS[1], 'state', 'step', 'attempt', 'cause', 'key')
if not cur[1] then
  return {'NOT_FOUND'}
end
if cur[1] ~= ARGV[3] or cur[2] ~= ARGV[4] or cur[3] ~= ARGV[5] then
  local outcome, reason = 'STALE', 'stale_step'
  if cur[4] == ARGV[9] then
    outcome, reason = 'ALREADY_APPLIED', 'duplicate'
  elseif cur[1] == 'SUCCEEDED' or cur[1] == 'FAILED' then
    reason = 'run_finished'
  elseif cur[2] == ARGV[4] then
    reason = 'stale_attempt'
  end
  if ARGV[12] ~= '' then
    local ev = cjson.decode(ARGV[12])
    ev['reason'] = reason
    redis.call('RPUSH', KEYS[2], cjson.encode(ev))
  end
  return {outcome, cur[1], cur[2], cur[3], reason}
end
local i = 13
local n = tonumber(ARGV[i])
local fields = {'state', ARGV[6], 'step', ARGV[7], 'attempt', ARGV[8], 'cause', ARGV[9],
  'updated_at', ARGV[10]}
for j = i + 1, i + 2 * n do fields[#fields + 1] = ARGV[j] end
i = i + 2 * n + 1
redis.call('HSET', KEYS[1], unpack(fields))
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
if cur[1] ~= ARGV[6] then
  redis.call('ZREM', prefix .. ':idx:state:' .. cur[1], run_id)
  redis.call('ZADD', prefix .. ':idx:state:' .. ARGV[6], ARGV[10], run_id)
end
local retention = tonumber(ARGV[11])
if retention > 0 then
  redis.call('PEXPIRE', KEYS[1], retention)
  redis.call('PEXPIRE', KEYS[2], retention)
  redis.call('PEXPIRE', KEYS[3], retention)
  if cur[5] and cur[5] ~= '' then
    redis.call('PEXPIRE', prefix .. ':key:' .. cur[5], retention)
  end
  redis.call('PUBLISH', prefix .. ':finished', run_id)
end
return {'APPLIED'}
