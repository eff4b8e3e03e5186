// The Lua scripts of the Redis cluster registry (./redis-cluster.ts). Each runs atomically in Redis,
// so placement decisions of concurrent nodes never interleave (no double placement, no lost load
// bump). Keys are built inside the scripts from the prefix (ARGV[1]): fine for one Redis server,
// which is the design (a Redis Cluster would need hash tags; docs/relay.md "Several nodes").
//
// Every value read may be hostile or garbage (anyone who can write to Redis): reads go through
// redis.pcall and type checks, a node counts as alive only with a well-formed ws(s) URL and load,
// and a key of the wrong type is overwritten (SET) or ignored, never an error that blocks placement.

/** Shared helpers: `now` in ms from the Redis clock (one clock for all nodes), node parsing. */
const COMMON = `
local P = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function getstr(key)
  local v = redis.pcall('GET', key)
  if type(v) == 'string' then return v end
  return nil
end

-- Mirrors isNodeUrl() in redis-cluster.ts: ws(s)://host[:port][/path], no credentials/query.
local function validurl(u)
  if #u > 512 then return false end
  local rest = string.match(u, '^wss?://(.+)$')
  if not rest then return false end
  local host, path = string.match(rest, '^([^/]+)(.*)$')
  if not host then return false end
  if not string.match(host, '^[%w%.%-%[%]:]+$') then return false end
  if path ~= '' and not string.match(path, '^/[%w%-%._~%%/]*$') then return false end
  return true
end

-- An alive, well-formed node or nil (absent key = dead; garbage = not eligible).
local function node(id)
  if type(id) ~= 'string' or #id == 0 or #id > 64 then return nil end
  local h = redis.pcall('HMGET', P .. 'node:' .. id, 'url', 'draining', 'meetings')
  if type(h) ~= 'table' or h.err then return nil end
  local url, dr, m = h[1], h[2], h[3]
  if type(url) ~= 'string' or not validurl(url) then return nil end
  if type(m) ~= 'string' or #m > 10 then return nil end
  local n = tonumber(m)
  if n == nil or n < 0 or n ~= math.floor(n) then return nil end
  return { id = id, url = url, draining = (dr == '1'), meetings = n }
end

-- Placements not yet created there (younger than the pending window) count as load.
local function pending(id, windowMs)
  local key = P .. 'pending:' .. id
  redis.pcall('ZREMRANGEBYSCORE', key, '-inf', now - windowMs)
  local c = redis.pcall('ZCARD', key)
  if type(c) ~= 'number' then return 0 end
  return c
end

local function members()
  local ids = redis.pcall('SMEMBERS', P .. 'nodes')
  if type(ids) ~= 'table' or ids.err then return {} end
  return ids
end
`;

/**
 * placeCreate. ARGV: prefix, selfId, deviceId, meetingTtlMs, reservationTtlMs, pendingMs,
 * fresh ('1' = choose the first free id among the candidates), candidate meeting ids...
 * Returns {'at', meetingId, nodeId, url} | {'refused', code} | {'retry'} (all candidates taken).
 */
export const PLACE_SCRIPT = `${COMMON}
local self, dev = ARGV[2], ARGV[3]
local meetingTtl, resvTtl, pendingMs = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local fresh = ARGV[7] == '1'
local mid

if fresh then
  -- A fresh id is never one that is placed or bound (even to a dead node, even with a garbage value).
  for i = 8, #ARGV do
    local c = ARGV[i]
    if redis.call('EXISTS', P .. 'meeting:' .. c) == 0 and redis.call('EXISTS', P .. 'resv:' .. c) == 0 then
      mid = c
      break
    end
  end
  if not mid then return { 'retry' } end
else
  mid = ARGV[8]
  local r = redis.pcall('GET', P .. 'resv:' .. mid)
  -- A reservation of the wrong type is unreadable: fail closed (it expires with its TTL if any).
  if type(r) == 'table' then return { 'refused', 'id-bound' } end
  if type(r) == 'string' and r ~= dev then return { 'refused', 'id-bound' } end
  local host = getstr(P .. 'meeting:' .. mid)
  if host then
    local n = node(host)
    -- Lives on an alive node: go there, even if it drains (its meetings stay until they move).
    if n then return { 'at', mid, n.id, n.url } end
  end
  -- Redis came back empty (no boot marker yet, or within the resync grace after it was re-created):
  -- a live host may not have re-published this meeting and its reservation yet, so placing the id
  -- anew could hand a live meeting to another device. Refused (retriable) until every live host
  -- has had time to re-publish; fresh ids (drawn, never live) are placed as usual.
  if getstr(P .. 'epoch') == nil or redis.call('EXISTS', P .. 'resync') == 1 then
    return { 'refused', 'resyncing' }
  end
end

local best, bestLoad
for _, id in ipairs(members()) do
  local n = node(id)
  if n == nil then
    -- Keep the set bounded: forget ids whose key expired (a live node re-adds itself every refresh).
    if type(id) == 'string' and redis.call('EXISTS', P .. 'node:' .. id) == 0 then
      redis.call('SREM', P .. 'nodes', id)
    end
  elseif not n.draining then
    local load = n.meetings + pending(id, pendingMs)
    local better = best == nil or load < bestLoad
    if not better and load == bestLoad then
      -- Ties: prefer the calling node (no redirect), then the lowest id (deterministic).
      if best.id ~= self and (id == self or id < best.id) then better = true end
    end
    if better then best, bestLoad = n, load end
  end
end
if best == nil then return { 'refused', 'no-node' } end

redis.call('SET', P .. 'meeting:' .. mid, best.id, 'PX', meetingTtl)
redis.call('SET', P .. 'resv:' .. mid, dev, 'PX', resvTtl)
local pkey = P .. 'pending:' .. best.id
redis.pcall('ZADD', pkey, now, mid)
redis.pcall('PEXPIRE', pkey, pendingMs)
return { 'at', mid, best.id, best.url }
`;

/** locate. ARGV: prefix, meetingId. Returns {'at', nodeId, url} | {'none'}. */
export const LOCATE_SCRIPT = `${COMMON}
local host = getstr(P .. 'meeting:' .. ARGV[2])
if host then
  local n = node(host)
  if n then return { 'at', n.id, n.url } end
end
return { 'none' }
`;

/**
 * Reconciliation (and hosted()). ARGV: prefix, selfId, url, draining ('1'|'0'), meetings count,
 * nodeTtlMs, meetingTtlMs, reservationTtlMs, pendingMs, nHosted, withNodes ('1' = also return the
 * live node list), knownEpoch (the boot marker this node last saw, '' = none yet), a random token
 * for a new marker, resyncGraceMs, then nHosted pairs (meetingId, leaderDeviceId), then meeting ids
 * no longer hosted here (their entries are deleted if still ours).
 * Returns {lostIds, nodes, withNodes, epoch} with nodes = flat {id, url, draining, load}... of the
 * live nodes and epoch = the boot marker now in Redis.
 *
 * Boot marker: \`epoch\` is written once per life of the Redis data. A node that knew another one
 * (or none is left) sees a Redis that restarted empty: \`resync\` (PX resyncGraceMs) then holds off
 * placing explicit meeting ids until every live host re-published (PLACE_SCRIPT). A brand-new
 * cluster (no node knew a marker) has no grace.
 */
export const RECONCILE_SCRIPT = `${COMMON}
local self, url, draining, count = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local nodeTtl, meetingTtl, resvTtl = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local pendingMs, nHosted, withNodes = tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11] == '1'
local known, token, graceMs = ARGV[12], ARGV[13], tonumber(ARGV[14])
local FIRST = 15

local ekey, rkey = P .. 'epoch', P .. 'resync'
local epoch = getstr(ekey)
if epoch == nil then
  epoch = tostring(now) .. '-' .. token
  redis.call('SET', ekey, epoch)
  -- This node saw the registry before: Redis lost it (restarted without persistence, flushed).
  if known ~= '' then redis.call('SET', rkey, epoch, 'PX', graceMs) end
elseif known ~= '' and epoch ~= known then
  -- Re-created by a node that knew nothing before (it just started): the grace still runs from then.
  local born = tonumber(string.match(epoch, '^(%d+)-') or '')
  if born and now - born < graceMs then
    local left = graceMs - (now - born)
    local ttl = redis.pcall('PTTL', rkey)
    if type(ttl) ~= 'number' or ttl < left then redis.call('SET', rkey, epoch, 'PX', left) end
  end
end

-- Rewritten whole each time: also clears a wrong type or extra fields someone put there.
local nkey = P .. 'node:' .. self
redis.call('DEL', nkey)
redis.call('HSET', nkey, 'url', url, 'draining', draining, 'meetings', count)
redis.call('PEXPIRE', nkey, nodeTtl)
local added = redis.pcall('SADD', P .. 'nodes', self)
if type(added) ~= 'number' then
  redis.call('DEL', P .. 'nodes')
  redis.call('SADD', P .. 'nodes', self)
end

local lost = {}
local pkey = P .. 'pending:' .. self
for i = 0, nHosted - 1 do
  local mid, leader = ARGV[FIRST + 2 * i], ARGV[FIRST + 1 + 2 * i]
  local cur = getstr(P .. 'meeting:' .. mid)
  if cur and cur ~= self and node(cur) then
    -- Re-placed on another alive node while we were unreachable: that copy wins.
    lost[#lost + 1] = mid
  else
    redis.call('SET', P .. 'meeting:' .. mid, self, 'PX', meetingTtl)
    redis.call('SET', P .. 'resv:' .. mid, leader, 'PX', resvTtl)
    redis.pcall('ZREM', pkey, mid)
  end
end
for i = FIRST + 2 * nHosted, #ARGV do
  local key = P .. 'meeting:' .. ARGV[i]
  if getstr(key) == self then redis.call('DEL', key) end
end

-- The node list costs O(nodes) per call (O(nodes^2) cluster-wide): read only when asked.
local nodes = {}
if withNodes then for _, id in ipairs(members()) do
  local n = node(id)
  if n then
    nodes[#nodes + 1] = n.id
    nodes[#nodes + 1] = n.url
    nodes[#nodes + 1] = n.draining and '1' or '0'
    nodes[#nodes + 1] = tostring(n.meetings + pending(id, pendingMs))
  end
end end
return { lost, nodes, withNodes and 1 or 0, epoch }
`;

/**
 * released. ARGV: prefix, selfId, meetingId, freeId ('1'|'0'), leaderDeviceId ('' = unknown).
 * Deletes the meeting entry if it is still ours; with freeId also the reservation, but only while it
 * still names the leader we published (never another device's, never a meeting re-placed elsewhere).
 */
export const RELEASE_SCRIPT = `${COMMON}
local self, mid, freeId, leader = ARGV[2], ARGV[3], ARGV[4] == '1', ARGV[5]
local mkey = P .. 'meeting:' .. mid
local cur = getstr(mkey)
if cur == self then redis.call('DEL', mkey) end
redis.pcall('ZREM', P .. 'pending:' .. self, mid)
if freeId and leader ~= '' and (cur == nil or cur == self) then
  local rkey = P .. 'resv:' .. mid
  if getstr(rkey) == leader then redis.call('DEL', rkey) end
end
return 1
`;

/** Deregister (graceful stop). ARGV: prefix, selfId, meeting ids published here. */
export const DEREGISTER_SCRIPT = `${COMMON}
local self = ARGV[2]
redis.call('DEL', P .. 'node:' .. self, P .. 'pending:' .. self)
redis.pcall('SREM', P .. 'nodes', self)
for i = 3, #ARGV do
  local key = P .. 'meeting:' .. ARGV[i]
  if getstr(key) == self then redis.call('DEL', key) end
end
return 1
`;
