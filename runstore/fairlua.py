"""The fair-share scheduler's Lua (runstore/fairqueue.py says how it schedules): enqueue, pop
(with fusion across sweeps and users), release and unpark. Each runs as one atomic step."""

# Lua for every script that gives an owner pending work (enqueue here, the reaper's push_front
# in runstore/leases.py, strays.queue_unqueued): an owner who joins the ready set starts at the
# scheduler's clock, so time spent idle earns no credit over those who waited.
ENTER_READY = """
local function enter_ready(ready, vtime, clock, owner)
  if redis.call('SISMEMBER', ready, owner) == 1 then return end
  local own = tonumber(redis.call('HGET', vtime, owner) or '0')
  local now = tonumber(redis.call('GET', clock) or '0')
  if now > own then redis.call('HSET', vtime, owner, string.format('%.17g', now)) end
  redis.call('SADD', ready, owner)
end
"""

# KEYS: owner queue, ready set, vtime hash, clock; ARGV: families (run), owner, fusion key
# ('' when the runs must not fuse with others), groups (JSON run id lists)... The key goes on
# each run's record (`fkey`), where the scheduler reads it, requeued runs included.
ENQUEUE = (
    ENTER_READY
    + """
local F = cjson.decode(ARGV[1])
enter_ready(KEYS[2], KEYS[3], KEYS[4], ARGV[2])
for i = 4, #ARGV do
  redis.call('RPUSH', KEYS[1], ARGV[i])
  if ARGV[3] ~= '' then
    for _, id in ipairs(cjson.decode(ARGV[i])) do
      redis.call('HSET', F.run .. id, 'fkey', ARGV[3])
    end
  end
end
return #ARGV - 3
"""
)

# KEYS: claim, ready set, vtime hash, clock, parked, caps; ARGV: families (POP_FAMILIES),
# claim TTL (s), most runs a group may grow to by fusing across (1: never). Returns {state,
# group JSON}: claimed, group, parked (only capped work waits) or empty (nothing pending).
# A group is {owner, runs, parts: [{owner, runs}...]}; `owner` is its first part's.
POP = """
local claim, ready, vtime, clock, parked, caps = unpack(KEYS)
local F, max_models = cjson.decode(ARGV[1]), tonumber(ARGV[3])
local held = redis.call('GET', claim)
if held then return {'claimed', held} end

local function live(ids)
  local out = {}
  for _, id in ipairs(ids) do
    if redis.call('HGET', F.run .. id, 'status') == 'queued' then out[#out + 1] = id end
  end
  return out
end

local function head(user)
  local q = F.fair_queue .. user
  while true do
    local raw = redis.call('LINDEX', q, 0)
    if not raw then redis.call('SREM', ready, user) return nil end
    local ids = live(cjson.decode(raw))
    if #ids > 0 then return ids end
    redis.call('LPOP', q)
  end
end

local function running(user)
  local set = F.fair_running .. user
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    local s = redis.call('HGET', F.run .. id, 'status')
    if s ~= 'queued' and s ~= 'running' then redis.call('SREM', set, id) end
  end
  return redis.call('SCARD', set)
end

-- the owner fair share serves next: the lowest virtual time among owners whose next group
-- fits their running cap (ties by name); and how many groups wait on capped owners
local function choose()
  local users = redis.call('SMEMBERS', ready)
  table.sort(users)
  local best, best_ids, best_v, waiting = nil, nil, nil, 0
  for _, user in ipairs(users) do
    local ids = head(user)
    if ids then
      local cap = tonumber(redis.call('HGET', F.user .. user, 'max_running') or '')
      cap = cap or tonumber(redis.call('HGET', caps, user) or '')
      local n = running(user)
      if cap == nil or n == 0 or n + #ids <= cap then
        local v = tonumber(redis.call('HGET', vtime, user) or '0')
        if best == nil or v < best_v then best, best_ids, best_v = user, ids, v end
      else
        waiting = waiting + redis.call('LLEN', F.fair_queue .. user)
      end
    end
  end
  return best, best_ids, best_v, waiting
end

-- dispatch the owner's next group: pop it, advance their virtual time, count it running
local function take(user, ids, v)
  local q = F.fair_queue .. user
  redis.call('LPOP', q)
  if redis.call('LLEN', q) == 0 then redis.call('SREM', ready, user) end
  local weight = tonumber(redis.call('HGET', F.user .. user, 'priority') or '1') or 1
  if weight <= 0 then weight = 1 end
  local latest = tonumber(redis.call('GET', clock) or '0')
  if v > latest then redis.call('SET', clock, string.format('%.17g', v)) end
  redis.call('HSET', vtime, user, string.format('%.17g', v + #ids / weight))
  redis.call('SADD', F.fair_running .. user, unpack(ids))
end

local best, ids, v, waiting = choose()
if best == nil then
  if waiting == 0 then redis.call('DEL', parked) return {'empty', ''} end
  if tonumber(redis.call('GET', parked) or '0') < waiting then
    redis.call('INCR', parked)
  end
  return {'parked', ''}
end
take(best, ids, v)
local parts, runs = {{owner = best, runs = ids}}, {unpack(ids)}
-- fusion across sweeps and users: while the group fair share would serve next has this
-- group's fusion key and fits, it joins (so no one is passed over and no cap is exceeded)
local key = redis.call('HGET', F.run .. ids[1], 'fkey')
while key and key ~= '' and #runs < max_models do
  local user, more, more_v = choose()
  if user == nil or #runs + #more > max_models then break end
  if redis.call('HGET', F.run .. more[1], 'fkey') ~= key then break end
  take(user, more, more_v)
  parts[#parts + 1] = {owner = user, runs = more}
  for _, id in ipairs(more) do runs[#runs + 1] = id end
end
local group = cjson.encode({owner = best, runs = runs, parts = parts})
redis.call('SET', claim, group, 'EX', ARGV[2])
return {'group', group}
"""
POP_FAMILIES = ("run", "user", "fair_queue", "fair_running")

# KEYS: claim, parked, claims; ARGV: families (fair_running), claim id. Ends a claim and its
# lease; returns how many tokens are parked.
RELEASE = """
local F = cjson.decode(ARGV[1])
local held = redis.call('GET', KEYS[1])
if held then
  local group = cjson.decode(held)
  for _, part in ipairs(group.parts or {group}) do
    redis.call('SREM', F.fair_running .. part.owner, unpack(part.runs))
  end
  redis.call('DEL', KEYS[1])
end
redis.call('ZREM', KEYS[3], ARGV[2])
return tonumber(redis.call('GET', KEYS[2]) or '0')
"""

# KEYS: parked; ARGV: how many were re-sent.
UNPARK = """
local left = tonumber(redis.call('GET', KEYS[1]) or '0') - tonumber(ARGV[1])
if left > 0 then redis.call('SET', KEYS[1], left) else redis.call('DEL', KEYS[1]) end
return math.max(left, 0)
"""
