-- Set a status of a run under its status model, as ONE compare-and-set: the rules of
-- seed-behaviours 2.4 are checked in their order against the run's status set and, only if
-- they all pass, the status and its event are recorded and the finish rules applied.
-- KEYS[1] run hash, KEYS[2] event list, KEYS[3] status set, KEYS[4] timer zset,
-- KEYS[5] the run's timer members, KEYS[6..] the path indexes of the event's lineage (the
-- run id is added to each once the status is recorded, as record_event.lua does)
-- Arguments: named, declared above by statuses.SET_ARGS. mode: MODE.TOUCH (lazy timeout
-- only), MODE.CHECK (rules, no write but the lazy timeout) or MODE.SET. standalone '1': the
-- run is an instance, whose state follows its model (SUCCEEDED when finished, TIMED_OUT on
-- timeout); else a flow run, whose model only records why it is finished. The rule of the
-- status: known, stype and the lists mandatory_before, other_before, after, mandatory_all.
-- Reply: {code, why the instance is finished ('' = it is not), run state}.
local cur = redis.call('HMGET', KEYS[1], 'state', 'deadline', SF.FINISHED)
if not cur[1] then
  return {CODE.INSTANCE_TOKEN_IS_NOT_FOUND, '', ''}
end
local state = cur[1]
local now_n = tonumber(now)

local function with_reason(event, reason)
  return string.sub(event, 1, -2) .. ',' .. cjson.encode(EVENT_REASON) .. ':'
    .. cjson.encode(reason) .. '}'
end

local function finish(new_state, reason, event, error)
  redis.call('HSET', KEYS[1], 'state', new_state, 'finished_at', now, SF.FINISHED, reason)
  if error ~= '' then
    redis.call('HSET', KEYS[1], 'error', error)
  end
  redis.call('HDEL', KEYS[1], 'cause', 'updated_at', 'phase')
  redis.call('RPUSH', KEYS[2], event)
  redis.call('ZREM', state_index(base, state), run_id)
  redis.call('ZADD', state_index(base, new_state), now, run_id)
  for _, m in ipairs(redis.call('SMEMBERS', KEYS[5])) do
    redis.call('ZREM', KEYS[4], m)
  end
  redis.call('DEL', KEYS[5])
  local retention = tonumber(retention_ms)
  if retention > 0 then
    for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], retention) end
  end
  redis.call('PUBLISH', finished_channel(prefix), run_id)
  state = new_state
end

-- rules 1 and 2: the run exists; lazy timeout
local finished = cur[3] or ''
if finished == '' then
  local deadline = tonumber(cur[2] or '')
  if state == STATE.TIMED_OUT then
    finished = FINISH.TIMEOUT
  elseif standalone == '1' and TERMINAL[state] then
    finished = state
  elseif deadline and now_n >= deadline then
    finished = FINISH.TIMEOUT
    if standalone == '1' then
      finish(STATE.TIMED_OUT, FINISH.TIMEOUT, timeout_event, timeout_error)
    end
  end
end
if mode == MODE.TOUCH then
  return {CODE.SUCCESS, finished, state}
end

local function refuse(code)
  if refused ~= '' then
    redis.call('RPUSH', KEYS[2], with_reason(refused, code))
  end
  return {code, finished, state}
end

local function is_set(name)
  return redis.call('SISMEMBER', KEYS[3], name) == 1
end

-- rules 3 to 7
if finished ~= '' then
  return refuse(CODE.INSTANCE_IS_FINISHED)
end
if known ~= '1' then
  return refuse(CODE.STATUS_NAME_IS_NOT_FOUND_FOR_OBJECT)
end
for j = mandatory_before_at, mandatory_before_at + mandatory_before_n - 1 do
  if not is_set(ARGV[j]) then
    return refuse(CODE.NOT_ALL_PREVIOS_MANDATORY_STATUSES_ARE_SET)
  end
end
if mandatory_before_n == 0 and other_before_n > 0 then
  local any = false
  for j = other_before_at, other_before_at + other_before_n - 1 do
    if is_set(ARGV[j]) then any = true end
  end
  if not any then
    return refuse(CODE.NO_ONE_PREVIOS_OPTIONAL_STATUSES_ARE_SET)
  end
end
if stype == TYPE.OPTIONAL then
  for j = after_at, after_at + after_n - 1 do
    if is_set(ARGV[j]) then
      return refuse(CODE.AT_LEAST_ONE_NEXT_STATUS_IS_SET)
    end
  end
end
if is_set(name) then
  return refuse(CODE.STATUS_IS_ALREADY_SET)
end
if mode == MODE.CHECK then
  return {CODE.SUCCESS, '', state}
end

-- record, then the finish rules (all mandatory set wins over a STOP status, as in Statusek)
redis.call('SADD', KEYS[3], name)
redis.call('RPUSH', KEYS[2], event)
for k = 6, #KEYS do
  redis.call('ZADD', KEYS[k], now, run_id)
end
local reason = ''
if stype == TYPE.STOP then
  reason = FINISH.STOP_STATUS_IS_SET
end
local all = true
for j = mandatory_all_at, mandatory_all_at + mandatory_all_n - 1 do
  if not is_set(ARGV[j]) then all = false end
end
if all then
  reason = FINISH.ALL_MANDATORY_STATUSES_ARE_SET
end
if reason ~= '' then
  if standalone == '1' then
    finish(STATE.SUCCEEDED, reason, with_reason(finish_event, reason), '')
  else
    redis.call('HSET', KEYS[1], SF.FINISHED, reason)
  end
elseif standalone == '1' then
  redis.call('HSET', KEYS[1], 'updated_at', now)
end
if standalone ~= '1' then
  -- a flow run keeps its history as long as its run hash (as record_event does)
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[2], ttl)
    redis.call('PEXPIRE', KEYS[3], ttl)
  end
end
return {CODE.SUCCESS, reason, state}
