"""Lua scripts: each status move, epoch append or cancel is one atomic step in Redis.

A status event goes to the run stream at `{last_epoch}-*` (Redis >= 7 picks the sequence), so
epoch k keeps the id `k-0` and "after epoch k" is simply "after k-0". Runs of a sweep also
copy every event, with their run_id, to the sweep stream, and count terminal moves in the
sweep hash so a sweep stream knows when it is complete.

Every script takes the same KEYS (Store._script_keys builds them from runstore/keys.py): the
leases zset, the stats hash, the run hash, the run stream and, for a run of a sweep, the
sweep hash and the sweep stream.
"""

# The keys, named once for every script below.
_KEYS = """
local leases, stats, run, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local sweep, sweep_stream = KEYS[5], KEYS[6]
"""

# A run that ended: its lease goes, and the stats hash counts it and its duration (/metrics).
_ENDED = (
    _KEYS
    + """
local DURATION_BOUNDS = {1, 5, 15, 60, 300, 900, 3600, 14400, 86400}
local function ended(status)
  redis.call('ZREM', leases, ARGV[1])
  redis.call('HINCRBY', stats, 'runs:' .. status, 1)
  local started = tonumber(redis.call('HGET', run, 'started_at') or '')
  if not started then return end
  local t = redis.call('TIME')
  local seconds = math.max(0, tonumber(t[1]) + tonumber(t[2]) / 1e6 - started)
  redis.call('HINCRBY', stats, 'duration_count', 1)
  redis.call('HINCRBYFLOAT', stats, 'duration_sum', string.format('%.6f', seconds))
  for _, bound in ipairs(DURATION_BOUNDS) do
    if seconds <= bound then redis.call('HINCRBY', stats, 'duration_le:' .. bound, 1) end
  end
end
"""
)

# ARGV[1] run_id, ARGV[2] data, ARGV[3] "1" when the new status is terminal.
_EMIT_STATUS = (
    _ENDED
    + """
local function emit_status()
  local last = redis.call('HGET', run, 'last_epoch') or '0'
  local id = redis.call('XADD', stream, last .. '-*', 'type', 'status', 'data', ARGV[2])
  if sweep then
    redis.call('XADD', sweep_stream, '*', 'type', 'status', 'run_id', ARGV[1], 'data', ARGV[2])
    if ARGV[3] == '1' then redis.call('HINCRBY', sweep, 'n_terminal', 1) end
  end
  return id
end
"""
)

# ARGV[4] allowed current statuses (comma-separated), ARGV[5] to status,
# ARGV[6] "1": refuse with 'cancel' when a cancel was requested, ARGV[7] the holder that must
# hold the run, running ('' for anyone: 'lost' otherwise: it was requeued or taken over),
# ARGV[8..] field/value pairs.
TRANSITION = (
    _EMIT_STATUS
    + """
local cur = redis.call('HGET', run, 'status')
if not cur then return {'missing', ''} end
local allowed = false
for s in string.gmatch(ARGV[4], '[^,]+') do
  if s == cur then allowed = true end
end
if not allowed then return {'refused', cur} end
if ARGV[7] ~= '' and (cur ~= 'running' or redis.call('HGET', run, 'holder') ~= ARGV[7]) then
  return {'lost', cur}
end
if ARGV[6] == '1' and redis.call('HGET', run, 'cancel_requested') == '1' then
  return {'cancel', cur}
end
redis.call('HSET', run, 'status', ARGV[5])
if #ARGV >= 9 then redis.call('HSET', run, unpack(ARGV, 8)) end
if ARGV[3] == '1' then ended(ARGV[5]) end
return {'ok', emit_status()}
"""
)

# ARGV[4] finished_at. Queued: cancelled now. Running: flag it for the worker.
CANCEL = (
    _EMIT_STATUS
    + """
local cur = redis.call('HGET', run, 'status')
if not cur then return 'missing' end
if cur == 'running' then
  redis.call('HSET', run, 'cancel_requested', '1')
  return 'requested'
end
if cur ~= 'queued' then return 'finished' end
redis.call('HSET', run, 'status', 'cancelled', 'finished_at', ARGV[4], 'cancel_requested', '1')
ended('cancelled')
emit_status()
return 'cancelled'
"""
)

# ARGV: run_id, epoch, data, holder ('' for any).
# Only a running run takes epochs, only from its holder (-1 otherwise, also when the run is no
# longer running: the lease was lost, the run requeued or ended),
# and only newer ones: a retried or resumed run never duplicates one.
APPEND_EPOCH = (
    _KEYS
    + """
local status = redis.call('HGET', run, 'status')
if ARGV[4] ~= '' and (status ~= 'running' or redis.call('HGET', run, 'holder') ~= ARGV[4])
then
  return -1
end
if status ~= 'running' then return 0 end
local last = tonumber(redis.call('HGET', run, 'last_epoch') or '0')
if tonumber(ARGV[2]) <= last then return 0 end
redis.call('XADD', stream, ARGV[2] .. '-0', 'type', 'epoch', 'data', ARGV[3])
redis.call('HSET', run, 'last_epoch', ARGV[2])
redis.call('HINCRBY', stats, 'epochs', 1)
if sweep_stream then
  redis.call('XADD', sweep_stream, '*', 'type', 'epoch', 'run_id', ARGV[1], 'data', ARGV[3])
end
return 1
"""
)
