-- Create a trace: a run without a flow, recorded event by event by a client (the Oslo
-- status-api surface), unless a run with that id exists.
-- KEYS[1] run hash, KEYS[2] event list, KEYS[3] state index, KEYS[4] flow index,
-- KEYS[5..] the path indexes of the first event's file paths
-- ARGV[1] run id, ARGV[2] now (s, the indexes' score), ARGV[3] first event JSON, then
-- field/value pairs of the hash (state, position, kind, flow, times, input).
-- Reply: 1 created, 0 the id is taken.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4, #ARGV))
redis.call('RPUSH', KEYS[2], ARGV[3])
for i = 3, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[2], ARGV[1])
end
return 1
