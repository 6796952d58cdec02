/**
 * Every Lua script the Redis store runs, in one place. Each runs atomically in one round trip.
 *
 * Keys (all share the `{roomId}` hash tag, so a room lives in one cluster slot):
 *   sb:{R}          hash: info (room JSON), exp/ttl/cap (ms), max, host, topo, n (peer count),
 *                   jk (a key room's join key, SHA-256), lk ('1' while the host has it locked),
 *                   im/mb (the mail budget: messages per inbox, bytes per room), q (bytes of
 *                   unread mail now), p:<peerId> (peer JSON), t:<peerId> (SHA-256 of the
 *                   peer's token), s:<sessionId> (an AI session's record), e:<sessionId> (when
 *                   that record expires, ms; records without one last as long as the room),
 *                   x:<peerId> (the peer's stream ticket: "<SHA-256> <expires, ms>"),
 *                   lb ('1': joiners wait in the lobby), w:<peerId> (a peer in the lobby: its JSON
 *                   while it waits, '-' once denied; it has a t: too, to read its own mail),
 *                   c (the room's chat rate window), c:<peerId> (a sender's), l:<peerId> (a peer's
 *                   call limit's): "<window start> <count> <previous window's count>"
 *   sb:{R}:lobby    sorted set: the peers in the lobby, by when their wait (or denial notice) ends
 *   sb:{R}:in:<P>   stream: P's inbox; entry fields t (type) and b (message JSON)
 *   sb:{R}:tk:<P>:<type>  list: ids of P's offers, answers or candidates, oldest first, so a
 *                   take finds them without scanning the inbox (ids acknowledged since are skipped)
 *   sb:{R}:chat     list: the room's last chat messages
 *   sb:{R}:closed   hash, for CLOSED_NOTICE_MS once the room closed: b (the room-closed message),
 *                   t:<peerId> (each peer's token hash then), so its peers still read that it closed
 *   sb:{R}:ch:<P>   pub/sub channel (sharded on a cluster) waking P's waiting reads: "m:<id>:<type>:<JSON>", "gone",
 *                   "closed:<JSON>" or "w:<mark>" (a waiting read of P began)
 *   sb:ai:ends      sorted set, the one key outside any room: "<R>/<sessionId>" by the AI call's deadline
 *
 * The mail budget: every delivery counts against its recipient's inbox (at most `im` messages)
 * and the room's bytes (at most `mb`, each message counted as its size plus ENTRY_OVERHEAD).
 * Chat fills at most half of either, so it can never starve offers, answers and candidates.
 *
 * Fan-out (join, leave, close, TTL refresh) reaches inboxes named from the room hash rather than
 * declared in KEYS: they share the room's slot, which Redis Cluster and Upstash (whose scripts
 * take its global lock unless flagged allow-key-locking) both accept.
 */

import { CLOSED_NOTICE_MS, ENTRY_OVERHEAD, LOBBY_MAX } from "./types.js";

const PRELUDE = `
local room = KEYS[1]
local function inbox(id) return room .. ':in:' .. id end
local function channel(id) return room .. ':ch:' .. id end
-- Wakes the peer's waiting reads and streams (on a cluster, sharded: see SHARDED_SCRIPTS).
local function notify(id, payload) redis.call('PUBLISH', channel(id), payload) end
local TAKEABLE = { offer = true, answer = true, candidate = true }
local function index(id, kind) return room .. ':tk:' .. id .. ':' .. kind end
-- Every key a peer's mail occupies.
local function mailKeys(id) return { inbox(id), index(id, 'offer'), index(id, 'answer'), index(id, 'candidate') } end

local LOBBY = room .. ':lobby'

-- The room's settings and, for each id given, that peer's token hash (false if absent) and
-- lobby state (aw, bw: false for a peer in the room).
local function load(a, b)
  local f = redis.call('HMGET', room, 'host', 'topo', 'exp', 'ttl', 'cap', 'max', 'n', 't:' .. (a or ''), 't:' .. (b or ''),
    'im', 'mb', 'q', 'w:' .. (a or ''), 'w:' .. (b or ''))
  if not f[1] then return nil end
  return { host = f[1], topo = f[2], exp = tonumber(f[3]), ttl = tonumber(f[4]), cap = tonumber(f[5]),
           max = tonumber(f[6]), n = tonumber(f[7]), a = f[8], b = f[9],
           im = tonumber(f[10]) or 1000, mb = tonumber(f[11]) or 4194304, q = tonumber(f[12]) or 0,
           aw = f[13], bw = f[14] }
end

-- Upstash's sliding window, in the room's hash field 'field' ("<window start> <count> <previous
-- window's count>"; it goes with the room): one more use if under 'max'. Returns whether it was,
-- and {max, what is left, when the window ends}.
local function spend(field, max, windowMs, now)
  local start = now - now % windowMs
  local count, previous = 0, 0
  local saved = redis.call('HGET', room, field)
  if saved then
    local s, c, p = string.match(saved, '^(%d+) (%d+) (%d+)$')
    if tonumber(s) == start then count, previous = tonumber(c), tonumber(p)
    elseif tonumber(s) == start - windowMs then previous = tonumber(c) end
  end
  local used = math.floor(previous * (1 - (now - start) / windowMs)) + count
  if used >= max then return false, { max, 0, start + windowMs } end
  redis.call('HSET', room, field, string.format('%d %d %d', start, count + 1, previous))
  return true, { max, max - used - 1, start + windowMs }
end

-- The caller's call limit, charged in this step: the last argument of every script, "<max>
-- <window ms> <now>" (with " if-mail": only by a read that returns mail, see chargeIfMail), or ''
-- (none). 'charged' is where it stands then: {max, left, reset, 1 or 0}.
local CHARGE, charged = ARGV[#ARGV], false
local IF_MAIL = string.sub(CHARGE, -8) == ' if-mail'

-- Takes the charge; false past the limit.
local function charge(caller)
  local max, windowMs, at = string.match(CHARGE, '^(%d+) (%d+) (%d+)')
  local ok, w = spend('l:' .. caller, tonumber(max), tonumber(windowMs), tonumber(at))
  charged = { w[1], w[2], w[3], ok and 1 or 0 }
  return ok
end

-- A read's conditional charge, once it knows what it returns: 'rate-limited', or nil.
local function chargeIfMail(caller, entries)
  if IF_MAIL and #entries > 0 and not charge(caller) then return 'rate-limited' end
end

-- When a lobby peer's wait (or its denial notice) ends, ms.
local function waitEnds(id) return tonumber(redis.call('ZSCORE', LOBBY, id)) or 0 end

-- Why the caller may not act, or nil if it may. need: 'host'; 'peer' (anyone in the room); or
-- 'own-mail' (a peer in the lobby too, until its wait ends: it may read its own mail, and leave).
local function denied(r, caller, tokenHash, need, now)
  if not r then return 'room-missing' end
  if r.a ~= tokenHash then return 'unauthorized' end
  -- Verified: charge the call (per peer), once, whether or not what it asks is allowed.
  if CHARGE ~= '' and not IF_MAIL and not charged and not charge(caller) then return 'rate-limited' end
  if r.aw then
    if need ~= 'own-mail' then return 'not-admitted' end
    if waitEnds(caller) <= now then return 'unauthorized' end
  end
  if need == 'host' and caller ~= r.host then return 'forbidden' end
end

-- What a message counts against the room's bytes.
local function size(kind, body) return #kind + #body + ${ENTRY_OVERHEAD} end

-- Stream entries leave the room's byte count.
local function forget(r, entries)
  local bytes = 0
  for _, e in ipairs(entries) do bytes = bytes + size(e[2][2], e[2][4]) end
  if bytes > 0 then
    r.q = r.q - bytes
    redis.call('HINCRBY', room, 'q', -bytes)
  end
end

local function peerIds()
  local ids = {}
  for _, field in ipairs(redis.call('HKEYS', room)) do
    if string.sub(field, 1, 2) == 'p:' then ids[#ids + 1] = string.sub(field, 3) end
  end
  return ids
end

-- Activity extends the room once less than half its TTL is left, never past its cap.
local function refresh(r, now)
  if r.exp - now >= r.ttl / 2 then return end
  local extended = math.min(now + r.ttl, r.cap)
  if extended <= r.exp then return end
  r.exp = extended
  redis.call('HSET', room, 'exp', extended)
  redis.call('PEXPIREAT', room, extended)
  for _, id in ipairs(peerIds()) do
    for _, key in ipairs(mailKeys(id)) do redis.call('PEXPIREAT', key, extended) end
  end
  redis.call('PEXPIREAT', room .. ':chat', extended)
  redis.call('PEXPIREAT', LOBBY, extended)
end

-- Whether the budget takes one more message for 'to': share 1 is the whole budget, 2 is half
-- (chat). Returns nil, or why not: 'inbox-full' or 'room-busy'.
local function refusal(r, to, bytes, share)
  if redis.call('XLEN', inbox(to)) >= r.im / share then return 'inbox-full' end
  if r.q + bytes > r.mb / share then return 'room-busy' end
  return nil
end

-- Appends to a peer's inbox, within the budget, and wakes its waiting read: the id, or nil and why not.
local function deliver(r, to, kind, body, share)
  local bytes = size(kind, body)
  local refused = refusal(r, to, bytes, share)
  if refused then return nil, refused end
  local key = inbox(to)
  local id = redis.call('XADD', key, '*', 't', kind, 'b', body)
  redis.call('PEXPIREAT', key, r.exp)
  r.q = r.q + bytes
  redis.call('HINCRBY', room, 'q', bytes)
  if TAKEABLE[kind] then
    -- Live ids are always the newest of their type, and an inbox holds at most im.
    local ix = index(to, kind)
    redis.call('RPUSH', ix, id)
    redis.call('LTRIM', ix, -r.im, -1)
    redis.call('PEXPIREAT', ix, r.exp)
  end
  -- The message rides along, so a waiting poll needs no read to answer.
  notify(to, 'm:' .. id .. ':' .. kind .. ':' .. body)
  return id
end

-- Who hears of a peer joining or leaving: in a star room only the host, in a mesh everyone
-- else; a recipient whose inbox is full misses the notice rather than fail the join or leave.
local function announce(r, about, kind, body)
  if r.topo == 'star' then
    if r.host ~= about then deliver(r, r.host, kind, body, 1) end
    return
  end
  for _, id in ipairs(peerIds()) do
    if id ~= about then deliver(r, id, kind, body, 1) end
  end
end

-- A waiting read of 'id' began: older waiting reads of that peer end.
local function markWaiter(id, mark)
  if mark ~= '' then notify(id, 'w:' .. mark) end
end

-- A peer (in the room or in the lobby) leaves no trace: fields, mail, place in the lobby; its
-- reads end. (The room's count is the caller's to mend: lobby peers are not in it.)
local function drop(r, id)
  redis.call('HDEL', room, 'p:' .. id, 'w:' .. id, 't:' .. id, 'x:' .. id, 'c:' .. id, 'l:' .. id)
  redis.call('ZREM', LOBBY, id)
  forget(r, redis.call('XRANGE', inbox(id), '-', '+'))
  redis.call('DEL', unpack(mailKeys(id)))
  notify(id, 'gone')
end

-- Lobby peers whose wait (or denial notice) is over go.
local function prune(r, now)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', LOBBY, '-inf', now)) do drop(r, id) end
end

-- 'body' (a JSON object) with a join's view added: the room, and the peers a joiner deals with
-- (in a star room the host and itself, in a mesh everyone).
local function withView(r, id, body)
  local f = redis.call('HMGET', room, 'info', 'lk')
  local info = string.sub(f[1], 1, -2) .. ',"expiresAt":' .. r.exp .. ',"locked":' .. (f[2] == '1' and 'true' or 'false') .. '}'
  local peers = {}
  if r.topo == 'star' then
    peers = redis.call('HMGET', room, 'p:' .. r.host, 'p:' .. id)
  else
    for _, pid in ipairs(peerIds()) do peers[#peers + 1] = redis.call('HGET', room, 'p:' .. pid) end
  end
  return string.sub(body, 1, -2) .. ',"room":' .. info .. ',"peers":[' .. table.concat(peers, ',') .. ']}'
end

-- Deletes the room, waking everyone (the lobby too) with 'closed'; returns its session records.
local function close(body)
  local sessions, notice, ids = {}, { 'b', body }, {}
  local fields = redis.call('HGETALL', room)
  for i = 1, #fields, 2 do
    local kind = string.sub(fields[i], 1, 2)
    if kind == 's:' then sessions[#sessions + 1] = fields[i + 1] end
    if kind == 't:' then notice[#notice + 1] = fields[i]; notice[#notice + 1] = fields[i + 1] end
    if kind == 'p:' or kind == 'w:' then ids[#ids + 1] = string.sub(fields[i], 3) end
  end
  local keys = { room, room .. ':chat', LOBBY }
  for _, id in ipairs(ids) do
    for _, key in ipairs(mailKeys(id)) do keys[#keys + 1] = key end
    notify(id, 'closed:' .. body)
  end
  redis.call('DEL', unpack(keys))
  redis.call('HSET', room .. ':closed', unpack(notice))
  redis.call('PEXPIRE', room .. ':closed', ${CLOSED_NOTICE_MS})
  return sessions
end
`;

/** Each script's reply is {charged, its own reply} (lib/store/redis.ts reads the charge). */
const script = (body: string) => `${PRELUDE}local function main()\n${body}\nend\nlocal reply = main()\nreturn {charged, reply}\n`;

/** ARGV: info, exp, ttl, cap, max, host, topo, hostJson, hostTokenHash, inboxMax, mailMaxBytes, joinKeyHash ('' for none), lobby ('1' or '') */
export const CREATE_ROOM = script(`
if redis.call('EXISTS', room) == 1 then return 'exists' end
redis.call('DEL', room .. ':closed')
redis.call('HSET', room, 'info', ARGV[1], 'exp', ARGV[2], 'ttl', ARGV[3], 'cap', ARGV[4], 'max', ARGV[5],
  'host', ARGV[6], 'topo', ARGV[7], 'n', 1, 'p:' .. ARGV[6], ARGV[8], 't:' .. ARGV[6], ARGV[9],
  'im', ARGV[10], 'mb', ARGV[11], 'q', 0)
if ARGV[12] ~= '' then redis.call('HSET', room, 'jk', ARGV[12]) end
if ARGV[13] == '1' then redis.call('HSET', room, 'lb', '1') end
redis.call('PEXPIREAT', room, ARGV[2])
return 'ok'
`);

/** ARGV: peerId, tokenHash → {'ok', hgetall} | {status} */
export const LIST_PEERS = script(`
local r = load(ARGV[1])
local no = denied(r, ARGV[1], ARGV[2], 'peer')
if no then return {no} end
return {'ok', redis.call('HGETALL', room)}
`);

/**
 * ARGV: now, peerId, peerJson, tokenHash, announceType, announceBody, joinKeyHash ('' for none),
 * byHost ('1': the host's own peer, past every gate), knockBody, waitUntil
 * → {'ok', fields} | {'waiting', waitUntil} | {status}
 */
export const JOIN_ROOM = script(`
local now = tonumber(ARGV[1])
local r = load(ARGV[2])
if not r then return {'room-missing'} end
local gate = redis.call('HMGET', room, 'lk', 'jk', 'lb')
local byHost = ARGV[8] == '1'
if not byHost then
  if gate[1] == '1' then return {'room-locked'} end
  if gate[2] and ARGV[7] == '' then return {'join-key-required'} end
  if gate[2] and gate[2] ~= ARGV[7] then return {'join-key-invalid'} end
end
if r.n >= r.max then return {'room-full'} end
refresh(r, now)
if gate[3] == '1' and not byHost then
  prune(r, now)
  if redis.call('ZCARD', LOBBY) >= ${LOBBY_MAX} then return {'lobby-full'} end
  -- The host must hear the knock, or nobody would answer it.
  if not deliver(r, r.host, 'knock', ARGV[9], 1) then return {'room-busy'} end
  redis.call('HSET', room, 'w:' .. ARGV[2], ARGV[3], 't:' .. ARGV[2], ARGV[4])
  redis.call('ZADD', LOBBY, ARGV[10], ARGV[2])
  redis.call('PEXPIREAT', LOBBY, r.exp)
  return {'waiting', ARGV[10]}
end
redis.call('HSET', room, 'p:' .. ARGV[2], ARGV[3], 't:' .. ARGV[2], ARGV[4])
redis.call('HINCRBY', room, 'n', 1)
announce(r, ARGV[2], ARGV[5], ARGV[6])
-- A star viewer talks only to the host: it gets the host and itself, not the whole room (filling
-- a room would cost O(n^2) bytes). In a mesh everyone connects to everyone: all of it.
if r.topo == 'star' then
  local f = redis.call('HMGET', room, 'info', 'exp', 'p:' .. r.host)
  return {'ok', {'info', f[1], 'exp', f[2], 'p:' .. r.host, f[3], 'p:' .. ARGV[2], ARGV[3], 'lk', gate[1] or '0'}}
end
return {'ok', redis.call('HGETALL', room)}
`);

/** ARGV: now, callerId, tokenHash, targetId, announceType, announceBody, closedBody */
export const LEAVE_ROOM = script(`
local now, caller, target = tonumber(ARGV[1]), ARGV[2], ARGV[4]
local r = load(caller, target)
local no = denied(r, caller, ARGV[3], target == caller and 'own-mail' or 'peer', now)
if no then return {no} end
if target ~= caller and caller ~= r.host then return {'forbidden'} end
if not r.b then return {'peer-missing'} end
if target == r.host then return {'closed', unpack(close(ARGV[7]))} end
if r.bw then
  -- From the lobby: the host's knock goes with it (a denied peer's is answered already).
  drop(r, target)
  if r.bw ~= '-' then deliver(r, r.host, ARGV[5], ARGV[6], 1) end
  return {'ok'}
end
drop(r, target)
redis.call('HINCRBY', room, 'n', -1)
refresh(r, now)
announce(r, target, ARGV[5], ARGV[6])
return {'ok'}
`);

/** ARGV: callerId, tokenHash, closedBody → {'closed', session records...} | {status} */
export const CLOSE_ROOM = script(`
local r = load(ARGV[1])
local no = denied(r, ARGV[1], ARGV[2], 'host')
if no then return {no} end
return {'closed', unpack(close(ARGV[3]))}
`);

/** ARGV: now, callerId, tokenHash, to, type, body → {'ok', id} | {status} */
export const SEND = script(`
local now, caller, to = tonumber(ARGV[1]), ARGV[2], ARGV[4]
local r = load(caller, to)
local no = denied(r, caller, ARGV[3], 'peer')
if no then return {no} end
if to == caller or not r.b or r.bw then return {'peer-missing'} end
if r.topo == 'star' and caller ~= r.host and to ~= r.host then return {'forbidden'} end
refresh(r, now)
local id, refused = deliver(r, to, ARGV[5], ARGV[6], 1)
if not id then return {refused} end
return {'ok', id}
`);

/**
 * KEYS[2]: the caller's inbox. ARGV: now, callerId, tokenHash, after ('' for none),
 * trimBelow (the id just past 'after'; entries below it are acknowledged), batch, waiter mark
 * ('' for none), from (return entries after it; '' for all).
 */
export const READ = script(`
local r = load(ARGV[2])
if not r then
  local notice = redis.call('HMGET', room .. ':closed', 'b', 't:' .. ARGV[2])
  if notice[1] and notice[2] == ARGV[3] then return {'closed', notice[1]} end
  return {'room-missing'}
end
local no = denied(r, ARGV[2], ARGV[3], 'own-mail', tonumber(ARGV[1]))
if no then return {no} end
markWaiter(ARGV[2], ARGV[7])
if ARGV[5] ~= '' then
  forget(r, redis.call('XRANGE', KEYS[2], '-', ARGV[4]))
  redis.call('XTRIM', KEYS[2], 'MINID', ARGV[5])
end
refresh(r, tonumber(ARGV[1]))
local start = '-'
if ARGV[8] ~= '' then start = '(' .. ARGV[8] end
local entries = redis.call('XRANGE', KEYS[2], start, '+', 'COUNT', ARGV[6])
return {chargeIfMail(ARGV[2], entries) or 'ok', entries}
`);

/**
 * KEYS[2]: the caller's inbox. ARGV: now, callerId, tokenHash, type, batch, waiter mark ('' for none).
 * Follows the type's index, so it costs what it takes (plus ids acknowledged since, once each).
 */
export const TAKE = script(`
local r = load(ARGV[2])
local no = denied(r, ARGV[2], ARGV[3], 'own-mail', tonumber(ARGV[1]))
if no then return {no} end
markWaiter(ARGV[2], ARGV[6])
refresh(r, tonumber(ARGV[1]))
local taken, ids, batch = {}, {}, tonumber(ARGV[5])
if TAKEABLE[ARGV[4]] then
  local ix = index(ARGV[2], ARGV[4])
  while #taken < batch do
    local id = redis.call('LPOP', ix)
    if not id then break end
    local entry = redis.call('XRANGE', KEYS[2], id, id)[1]
    if entry then
      taken[#taken + 1] = entry
      ids[#ids + 1] = id
    end
  end
end
if #ids > 0 then
  redis.call('XDEL', KEYS[2], unpack(ids))
  forget(r, taken)
end
return {'ok', taken}
`);

/** ARGV: callerId, tokenHash, sessionId, record, max, now, expiresAt ('' for none) */
export const PUT_SESSION = script(`
local r = load(ARGV[1])
local no = denied(r, ARGV[1], ARGV[2], 'host')
if no then return no end
local field, now = 's:' .. ARGV[3], tonumber(ARGV[6])
if redis.call('HEXISTS', room, field) == 0 then
  local count = 0
  for _, f in ipairs(redis.call('HKEYS', room)) do
    if string.sub(f, 1, 2) == 's:' then
      local id = string.sub(f, 3)
      local expires = tonumber(redis.call('HGET', room, 'e:' .. id))
      if expires and expires <= now then redis.call('HDEL', room, f, 'e:' .. id)
      else count = count + 1 end
    end
  end
  if count >= tonumber(ARGV[5]) then return 'limit' end
end
redis.call('HSET', room, field, ARGV[4])
if ARGV[7] ~= '' then redis.call('HSET', room, 'e:' .. ARGV[3], ARGV[7]) end
return 'ok'
`);

/** ARGV: callerId, tokenHash, sessionId → {'ok', record or false} | {status} */
export const REMOVE_SESSION = script(`
local r = load(ARGV[1])
local no = denied(r, ARGV[1], ARGV[2], 'host')
if no then return {no} end
local record = redis.call('HGET', room, 's:' .. ARGV[3])
if record then redis.call('HDEL', room, 's:' .. ARGV[3], 'e:' .. ARGV[3]) end
return {'ok', record}
`);

/** ARGV: sessionId → the record, or false; the record goes (a session past its deadline, whoever asks). */
export const END_SESSION = script(`
local record = redis.call('HGET', room, 's:' .. ARGV[1])
if record then redis.call('HDEL', room, 's:' .. ARGV[1], 'e:' .. ARGV[1]) end
return record
`);

/**
 * KEYS[1]: the deadline index (a sorted set: "<roomId>/<sessionId>" by deadline). ARGV: member,
 * deadline, keepUntil. The index outlives its last deadline by a day, then goes like every key.
 */
export const SCHEDULE_END = script(`
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
`);

/**
 * ARGV: now, callerId, tokenHash, peerId, allow ('1' or '0'), admittedBody, deniedBody,
 * announceType, announceBody, deniedUntil
 */
export const ADMIT = script(`
local now, target = tonumber(ARGV[1]), ARGV[4]
local r = load(ARGV[2], target)
local no = denied(r, ARGV[2], ARGV[3], 'host', now)
if no then return no end
prune(r, now)
local waiting = redis.call('HGET', room, 'w:' .. target)
local allow = ARGV[5] == '1'
-- The same answer twice does nothing more (a retried request); any other is to no one waiting.
if not waiting then
  if allow and r.b and redis.call('HEXISTS', room, 'p:' .. target) == 1 then return 'ok' end
  return 'peer-missing'
end
if waiting == '-' then
  if allow then return 'peer-missing' end
  return 'ok'
end
if not allow then
  redis.call('HSET', room, 'w:' .. target, '-')
  redis.call('ZADD', LOBBY, ARGV[10], target)
  deliver(r, target, 'denied', ARGV[7], 1)
  return 'ok'
end
if r.n >= r.max then return 'room-full' end
redis.call('HSET', room, 'p:' .. target, waiting)
redis.call('HDEL', room, 'w:' .. target)
redis.call('ZREM', LOBBY, target)
redis.call('HINCRBY', room, 'n', 1)
refresh(r, now)
announce(r, target, ARGV[8], string.sub(ARGV[9], 1, -2) .. ',"peer":' .. waiting .. '}')
deliver(r, target, 'admitted', withView(r, target, ARGV[6]), 1)
return 'ok'
`);

/** ARGV: now, callerId, tokenHash. Verifies the caller, so that its charge (the last argument) is taken. */
export const CHARGE_CALL = script(`
local r = load(ARGV[2])
return denied(r, ARGV[2], ARGV[3], 'own-mail', tonumber(ARGV[1])) or 'ok'
`);

/** ARGV: callerId, tokenHash, locked ('1' or '0') */
export const SET_LOCKED = script(`
local r = load(ARGV[1])
local no = denied(r, ARGV[1], ARGV[2], 'host')
if no then return no end
if ARGV[3] == '1' then redis.call('HSET', room, 'lk', '1') else redis.call('HDEL', room, 'lk') end
return 'ok'
`);

/** ARGV: callerId, tokenHash, joinKeyHash */
export const ROTATE_JOIN_KEY = script(`
local r = load(ARGV[1])
local no = denied(r, ARGV[1], ARGV[2], 'host')
if no then return no end
if redis.call('HEXISTS', room, 'jk') == 0 then return 'open-room' end
redis.call('HSET', room, 'jk', ARGV[3])
return 'ok'
`);

/** ARGV: callerId, tokenHash, ticketHash, expiresAt, now. The peer's previous ticket, if any, stops working. */
export const ISSUE_TICKET = script(`
local r = load(ARGV[1])
local no = denied(r, ARGV[1], ARGV[2], 'own-mail', tonumber(ARGV[5]))
if no then return no end
redis.call('HSET', room, 'x:' .. ARGV[1], ARGV[3] .. ' ' .. ARGV[4])
return 'ok'
`);

/** ARGV: peerId, ticketHash, now → the peer's token hash, once; false for any ticket not live. */
export const REDEEM_TICKET = script(`
local f = redis.call('HMGET', room, 'x:' .. ARGV[1], 't:' .. ARGV[1])
if not f[1] or not f[2] then return false end
local hash, expires = string.match(f[1], '^(%S+) (%d+)$')
-- A wrong ticket leaves the real one alone: guessing must not be a way to burn it.
if hash ~= ARGV[2] then return false end
redis.call('HDEL', room, 'x:' .. ARGV[1])
if tonumber(expires) <= tonumber(ARGV[3]) then return false end
return f[2]
`);

/**
 * KEYS[2]: the room's chat history. ARGV: now, callerId, tokenHash, body (without the sender's
 * name: added here), historyMax, perSender, perRoom, windowMs (the rate limits; windowMs 0: none)
 * → {'ok', nameJson, limit, remaining, reset} | {'rate-limited', limit, reset} | {status}
 */
export const CHAT = script(`
local now = tonumber(ARGV[1])
local r = load(ARGV[2])
local no = denied(r, ARGV[2], ARGV[3], 'peer')
if no then return {no} end
-- The limits are charged once the token checks out (a forged one spends no room's budget), the
-- sender's first (a sender past its own spends none of the room's).
local tight
local windowMs = tonumber(ARGV[8])
if windowMs > 0 then
  for _, limit in ipairs({ { 'c:' .. ARGV[2], tonumber(ARGV[6]) }, { 'c', tonumber(ARGV[7]) } }) do
    local ok, w = spend(limit[1], limit[2], windowMs, now)
    if not ok then return {'rate-limited', w[1], w[3]} end
    if not tight or w[2] < tight[2] then tight = w end
  end
end
-- The sender's name, from the peer JSON we wrote: a flat object whose strings escape their
-- quotes, so '"name":"' can only open that value, which ends at the first unescaped quote.
local peer = redis.call('HGET', room, 'p:' .. ARGV[2])
local name, from = 'null', string.find(peer, '"name":"', 1, true)
if from then
  local i = from + 8
  while i <= #peer and string.sub(peer, i, i) ~= '"' do i = i + (string.sub(peer, i, i) == '\\\\' and 2 or 1) end
  name = string.sub(peer, from + 7, i)
end
local body = string.sub(ARGV[4], 1, -2) .. ',"name":' .. name .. '}'
refresh(r, now)
-- Chat has half the budget: a recipient with half a full inbox is not reading, and misses it
-- (the history keeps it); the room's half full refuses it whole.
local to = {}
for _, id in ipairs(peerIds()) do
  if id ~= ARGV[2] and redis.call('XLEN', inbox(id)) < r.im / 2 then to[#to + 1] = id end
end
if r.q + #to * size('chat', body) > r.mb / 2 then return {'room-busy'} end
for _, id in ipairs(to) do deliver(r, id, 'chat', body, 2) end
redis.call('RPUSH', KEYS[2], body)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
redis.call('PEXPIREAT', KEYS[2], r.exp)
return {'ok', name, unpack(tight or {})}
`);

/** KEYS[2]: the room's chat history. ARGV: callerId, tokenHash → {'ok', bodies} | {status} */
export const CHAT_HISTORY = script(`
local r = load(ARGV[1])
local no = denied(r, ARGV[1], ARGV[2], 'peer')
if no then return {no} end
return {'ok', redis.call('LRANGE', KEYS[2], 0, -1)}
`);

export const SCRIPTS = { CREATE_ROOM, LIST_PEERS, JOIN_ROOM, LEAVE_ROOM, CLOSE_ROOM, SEND, READ, TAKE, PUT_SESSION, REMOVE_SESSION, END_SESSION, SCHEDULE_END, CHAT, CHAT_HISTORY, CHARGE_CALL, ISSUE_TICKET, REDEEM_TICKET, SET_LOCKED, ROTATE_JOIN_KEY, ADMIT };

/**
 * The same scripts publishing with SPUBLISH (Redis 7): on a cluster a notice then goes to the
 * room's shard only, not to every node. The channel shares the room's slot.
 */
export const SHARDED_SCRIPTS = Object.fromEntries(
  Object.entries(SCRIPTS).map(([name, source]) => [name, source.replace("redis.call('PUBLISH', channel(id), payload)", "redis.call('SPUBLISH', channel(id), payload)")]),
) as typeof SCRIPTS;
