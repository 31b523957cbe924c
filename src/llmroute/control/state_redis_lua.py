"""The Lua scripts `RedisState` runs (each atomic in Redis). Amounts travel as decimal strings and are
added with INCRBY (64-bit integers); only the limit checks compare Lua numbers (doubles), exact
below 2^53 (about 9 million USD in nano-USD). Times come from the Redis server's clock (TIME), so
replicas with skewed clocks agree on cooldowns.
"""

from __future__ import annotations

#: Shared by the counter scripts: add each ARGV amount and give a counter without expiry its ttl.
#: KEYS[i] is counter i; ARGV[3i-2] its amount, ARGV[3i-1] its limit ('' for none), ARGV[3i] its ttl (ms).
_APPLY = """
local function apply()
  for i = 1, #KEYS do
    redis.call('INCRBY', KEYS[i], ARGV[3 * i - 2])
    if redis.call('PTTL', KEYS[i]) == -1 then
      redis.call('PEXPIRE', KEYS[i], ARGV[3 * i])
    end
  end
end
"""

#: All or nothing: nil when every limited charge fits (and all were applied), else {index, current}
#: of the first that does not (0-based; current counts earlier charges of the same call to that key).
RESERVE = _APPLY + """
local pending = {}
for i = 1, #KEYS do
  local current = pending[KEYS[i]]
  if current == nil then
    current = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
  local amount = tonumber(ARGV[3 * i - 2])
  local limit = ARGV[3 * i - 1]
  if limit ~= '' and current + amount > tonumber(limit) then
    return {i - 1, current}
  end
  pending[KEYS[i]] = current + amount
end
apply()
return nil
"""

#: Add every amount, no limit checks.
ADJUST = _APPLY + """
apply()
return nil
"""

#: First writer wins: the stored value, storing ARGV[1] (with PX ARGV[2] unless '') when none is there.
FIRST_VALUE = """
local stored = redis.call('GET', KEYS[1])
if stored then
  return stored
end
if ARGV[2] == '' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return ARGV[1]
"""

#: Acquire the lease KEYS[1] for holder ARGV[1] for ARGV[2] ms, or renew it if ARGV[1] holds it.
LEAD = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

#: The cooldown hash KEYS[1] maps model -> until (server epoch ms). `live` drops expired fields and
#: returns {model, ms left, ...} and the latest until.
_COOLDOWNS = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function live(now)
  local all = redis.call('HGETALL', KEYS[1])
  local out, latest = {}, 0
  for i = 1, #all, 2 do
    local until_ms = tonumber(all[i + 1])
    if until_ms <= now then
      redis.call('HDEL', KEYS[1], all[i])
    else
      out[#out + 1] = all[i]
      out[#out + 1] = until_ms - now
      if until_ms > latest then latest = until_ms end
    end
  end
  return out, latest
end
"""

#: Cool model ARGV[1] down for ARGV[2] ms unless a later end is set; the hash expires with its
#: latest entry, so an idle deployment leaves nothing behind.
OPEN_COOLDOWN = _COOLDOWNS + """
local now = now_ms()
local until_ms = now + tonumber(ARGV[2])
local old = redis.call('HGET', KEYS[1], ARGV[1])
if (not old) or tonumber(old) < until_ms then
  redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', until_ms))
end
local _, latest = live(now)
if latest > now then
  redis.call('PEXPIRE', KEYS[1], string.format('%d', latest - now))
end
return nil
"""

#: {model, ms left, ...} for every model still cooling down (expired fields pruned).
COOLDOWNS = _COOLDOWNS + """
local out = live(now_ms())
return out
"""
