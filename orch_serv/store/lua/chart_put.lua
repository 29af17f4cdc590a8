-- A chart machine (a run of kind 'chart', see orch_serv/store/charts.py): create it, read
-- it, PUT one of its states, fire its timed state or delete it, in one atomic call each. Every call
-- first fires the timed states whose time has passed (at most once: the machine moves on and
-- its timer member goes), so any caller, and any replica's timer loop, sees the same answer.
-- KEYS[1] run hash, KEYS[2] event list, KEYS[3] status set (states reached), KEYS[4] timer
-- zset, KEYS[5] the run's timer members.
-- Arguments: named, declared above by charts.CHART_ARGS: mode (MODE.*), state_name (PUT),
-- now (s), now_ms, component (who asked, for the history), and for MODE.CREATE the chart's
-- stored JSON, name (flow) and version.
-- Reply: {answer (ANSWER.*), current state, run state, its counter ('' = none), its due ms
-- ('' = not a time state), the counter of the state PUT ('' = none)}.
local events = {}
local nowf, nowms = tonumber(now), tonumber(now_ms)
local cur = redis.call('HMGET', KEYS[1], 'state', 'step', 'attempt', 'kind')
local states, run_state, step, attempt

local function push(code, index, extra)
  local ev = {[EV.KIND] = code, [EV.TIME] = nowf}
  if index then
    ev[EV.STEP] = index
    ev[EV.STEP_NAME] = states[index + 1][J.NAME]
  end
  if component ~= '' then ev[EV.COMPONENT] = component end
  if extra then
    for k, v in pairs(extra) do ev[k] = v end
  end
  events[#events + 1] = cjson.encode(ev)
end

-- Entering state `index`: its counter starts, its timer is set, or the machine has ended.
local function arm(index)
  local st = states[index + 1]
  redis.call('SADD', KEYS[3], st[J.NAME])
  if st[J.FUNC] == FUNC.INCREMENT then
    redis.call('HSET', KEYS[1], CF.COUNT .. index, st[J.START])
  elseif st[J.FUNC] == FUNC.TIME then
    local member = chart_timer(run_id, index, attempt)
    redis.call('ZADD', KEYS[4], string.format('%d', st[J.DUE_MS]), member)
    redis.call('SADD', KEYS[5], member)
  else
    redis.call('HSET', KEYS[1], 'state', STATE.SUCCEEDED, 'finished_at', now)
    redis.call('HDEL', KEYS[1], 'phase')
    redis.call('ZREM', state_index(base, run_state), run_id)
    redis.call('ZADD', state_index(base, STATE.SUCCEEDED), nowf, run_id)
    run_state = STATE.SUCCEEDED
    push(CODE.SUCCEEDED, index, nil)
    redis.call('PUBLISH', finished_channel(prefix), run_id)
  end
end

-- Leaving state `from` for its target (`why`: REASON.*).
local function move(from, why)
  local st = states[from + 1]
  local to = st[J.NEXT]
  if st[J.FUNC] == FUNC.TIME then
    local member = chart_timer(run_id, from, attempt)
    redis.call('ZREM', KEYS[4], member)
    redis.call('SREM', KEYS[5], member)
  end
  push(CODE.COMPLETED, from, {[EV.REASON] = why})
  attempt = attempt + 1
  step = to
  local name = states[to + 1][J.NAME]
  redis.call('HSET', KEYS[1], 'step', to, 'attempt', attempt, 'step_name', name)
  push(CODE.STATUS, to, {[EV.NAME] = name, [EV.MESSAGE] = st[J.NAME] .. ' -> ' .. name})
  arm(to)
end

-- Fire the time states whose time has passed (a chain of them, once each).
local function settle()
  local guard = #states + 1
  while guard > 0 and run_state == STATE.RUNNING do
    local st = states[step + 1]
    if st[J.FUNC] ~= FUNC.TIME or st[J.DUE_MS] > nowms then break end
    move(step, REASON.TIME)
    guard = guard - 1
  end
end

local function finish(answer, counted)
  if #events > 0 then
    redis.call('RPUSH', KEYS[2], unpack(events))
    if run_state == STATE.RUNNING then redis.call('HSET', KEYS[1], 'updated_at', now) end
  end
  local st = states[step + 1]
  local count, due = '', ''
  if st[J.FUNC] == FUNC.INCREMENT then
    count = redis.call('HGET', KEYS[1], CF.COUNT .. step) or ''
  elseif st[J.FUNC] == FUNC.TIME then
    due = string.format('%d', st[J.DUE_MS])
  end
  return {answer, st[J.NAME], run_state, count, due, counted or ''}
end

if mode == MODE.CREATE and not cur[1] then
  local chart = cjson.decode(chart_json)
  states = chart[J.STATES]
  step, attempt, run_state = chart[J.INITIAL], 0, STATE.RUNNING
  redis.call('HSET', KEYS[1], 'state', STATE.RUNNING, 'step', step, 'attempt', 0,
    'phase', PHASE.STARTED, 'kind', CHART_KIND, 'flow', flow, 'version', version,
    'steps_total', #states, 'step_name', states[step + 1][J.NAME], 'created_at', now,
    'updated_at', now, CF.CHART, chart_json)
  redis.call('ZADD', state_index(base, STATE.RUNNING), nowf, run_id)
  redis.call('ZADD', flow_index(base, flow), nowf, run_id)
  push(CODE.CREATED, nil, nil)
  push(CODE.STATUS, step, {[EV.NAME] = states[step + 1][J.NAME]})
  arm(step)
  settle()
  return finish(ANSWER.CREATED)
end
if not cur[1] or cur[4] ~= CHART_KIND then
  return {ANSWER.NOT_FOUND, '', cur[1] or '', '', '', ''}
end
if mode == MODE.DELETE then
  for _, m in ipairs(redis.call('SMEMBERS', KEYS[5])) do redis.call('ZREM', KEYS[4], m) end
  redis.call('ZREM', state_index(base, cur[1]), run_id)
  redis.call('ZREM', flow_index(base, redis.call('HGET', KEYS[1], 'flow')), run_id)
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[5])
  return {ANSWER.OK, '', cur[1], '', '', ''}
end
states = cjson.decode(redis.call('HGET', KEYS[1], CF.CHART))[J.STATES]
run_state, step, attempt = cur[1], tonumber(cur[2]), tonumber(cur[3])
settle()
if mode ~= MODE.PUT then
  return finish(mode == MODE.CREATE and ANSWER.EXISTS or ANSWER.OK)
end
local st = states[step + 1]
if st[J.NAME] ~= state_name then return finish(ANSWER.NOT_CURRENT) end
if not st[J.FUNC] then return finish(ANSWER.ENDED) end
if run_state ~= STATE.RUNNING then return finish(ANSWER.STOPPED) end
if st[J.FUNC] == FUNC.TIME then return finish(ANSWER.TIMED) end
local count = redis.call('HINCRBY', KEYS[1], CF.COUNT .. step, 1)
push(CODE.HEARTBEAT, step, {[EV.BODY] = {[BODY.KEY] = st[J.KEY], [BODY.VALUE] = count,
  [BODY.TARGET] = st[J.TARGET]}})
-- `>=`, not StateService's `==`: a counter that starts at or above its target moves on at
-- the first PUT instead of never (docs/charts.md).
if count >= st[J.TARGET] then
  move(step, REASON.COUNT)
  settle()
end
return finish(ANSWER.OK, tostring(count))
