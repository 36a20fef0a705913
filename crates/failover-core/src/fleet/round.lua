-- failover-core fleet mode: one round of one instance, as docs/fleet.md lays out the keys.
-- Run with EVALSHA, once per round; never retried after a timeout (its deltas would count twice).
-- KEYS[1] = '<prefix>:hb' where <prefix> = 'fo:{<service>}' (the hash tag puts every key of the
-- fleet in one Cluster slot). ARGV, all decimal strings except names:
--   1 prefix, 2 instance, 3 at_ms, 4 live_since_ms, 5 read_from, 6 read_to, 7 lease_ms,
--   8 heartbeat TTL ms, 9 bucket TTL ms, 10 vote TTL ms, 11 register TTL ms, 12 providers, then
--   per provider: name, deltas, per delta (grid index, fields, (field, n) x fields),
--   register? (1/0), epoch, open_until_ms, ramp_start_ms, vote epoch (0: none), want_lease (1/0).
-- Reply: {live instances, per provider {{{grid index, {field, n, ...}}, ...}, epoch,
--   open_until_ms, ramp_start_ms, live voters of that epoch, lease holder ('' when none)}}.
local p = ARGV[1]
local me, at, since = ARGV[2], ARGV[3], ARGV[4]
local rf, rt = tonumber(ARGV[5]), tonumber(ARGV[6])
local lease_ms = ARGV[7]
local hb_ttl, w_ttl, vote_ttl, reg_ttl = ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local hb = KEYS[1]
redis.call('ZADD', hb, at, me)
redis.call('ZREMRANGEBYSCORE', hb, '-inf', '(' .. since)
redis.call('PEXPIRE', hb, hb_ttl)
local out = {redis.call('ZCOUNT', hb, since, '+inf')}
local i = 13
for _ = 1, tonumber(ARGV[12]) do
  local name = ARGV[i]
  local nd = tonumber(ARGV[i + 1])
  i = i + 2
  -- Counter deltas: summed per grid index.
  for _ = 1, nd do
    local k = p .. ':w:' .. name .. ':' .. ARGV[i]
    local nf = tonumber(ARGV[i + 1])
    i = i + 2
    for _ = 1, nf do
      redis.call('HINCRBY', k, ARGV[i], ARGV[i + 1])
      i = i + 2
    end
    redis.call('PEXPIRE', k, w_ttl)
  end
  -- The register: compare-and-set of the join (newer epoch wins; within one, the later times).
  local rk = p .. ':reg:' .. name
  if ARGV[i] == '1' then
    local e, u, r = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local cur = redis.call('HMGET', rk, 'epoch', 'open_until_ms', 'ramp_start_ms')
    local ce = tonumber(cur[1] or '0')
    local cu, cr = cur[2] or '0', cur[3] or '0'
    local write = false
    if tonumber(e) > ce then
      write = true
    elseif tonumber(e) == ce then
      if tonumber(u) > tonumber(cu) then write = true else u = cu end
      if tonumber(r) > tonumber(cr) then write = true else r = cr end
    end
    if write then
      redis.call('HSET', rk, 'epoch', e, 'open_until_ms', u, 'ramp_start_ms', r)
    end
    redis.call('PEXPIRE', rk, reg_ttl)
  end
  local ve, want = ARGV[i + 4], ARGV[i + 5]
  i = i + 6
  if ve ~= '0' then
    local vk = p .. ':vote:' .. name .. ':' .. ve
    redis.call('ZADD', vk, at, me)
    redis.call('PEXPIRE', vk, vote_ttl)
  end
  local lk = p .. ':lease:' .. name
  if want == '1' then
    local h = redis.call('GET', lk)
    if not h then
      redis.call('SET', lk, me, 'PX', lease_ms, 'NX')
    elseif h == me then
      redis.call('SET', lk, me, 'PX', lease_ms, 'XX')
    end
  end
  -- Reads.
  local sums = {}
  for g = rf, rt do
    local gs = string.format('%.0f', g)
    local h = redis.call('HGETALL', p .. ':w:' .. name .. ':' .. gs)
    if #h > 0 then
      sums[#sums + 1] = {gs, h}
    end
  end
  local reg = redis.call('HMGET', rk, 'epoch', 'open_until_ms', 'ramp_start_ms')
  local e = reg[1] or '0'
  local voters = redis.call('ZCOUNT', p .. ':vote:' .. name .. ':' .. e, since, '+inf')
  local holder = redis.call('GET', lk) or ''
  out[#out + 1] = {sums, e, reg[2] or '0', reg[3] or '0', voters, holder}
end
return out
