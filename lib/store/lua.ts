/**
 * Every Lua script the Redis store runs, in one place. Each runs atomically in one round trip,
 * and each is flagged `allow-key-locking`: on Upstash it then locks only the keys it declares
 * (KEYS), and touches no other. A room script declares the room's fixed set of keys
 * (lib/store/keys.ts: roomKeys), plus the request's reply key when it changes something, so
 * a room's mail cannot be spread over per-peer keys: every peer's mail is in the same two.
 *
 *   ROOM    hash: info (room JSON), exp/ttl/cap (ms), max, host, topo, n (peer count), jk (a key
 *           room's join key, SHA-256), lk ('1' while locked), lb ('1': joiners wait in the lobby),
 *           im/mb (the mail budget: messages per inbox, bytes per room), q (bytes of unread mail
 *           now), ms/sq (the last message id's parts), p:<peer> (peer JSON), t:<peer> (SHA-256 of
 *           its token), w:<peer> (a lobby peer: its JSON while it waits, '-' once denied),
 *           x:<peer> (its stream ticket: "<SHA-256> <expires, ms>"), s:<session> (an AI session's
 *           record), e:<session> (when that record expires, ms), and rate windows: l:<peer> (its
 *           calls), c:<peer> and c (chat): "<window start> <count> <previous window's count>"
 *   MAIL    hash: <sort key> → "<type> <body>", each message once; n:<sort key>, for a message
 *           with several recipients, how many have not read it yet. '' keeps the key (and its TTL)
 *   BOX     sorted set, all scores 0, read by name: '<peer>|<sort key>|<ms>|<type>' for each
 *           unread message of each recipient ('|s' after it when the body is shared), and
 *           '<peer>#<type>|<sort key>|<ms>' beside those of offers, answers and candidates, so a
 *           take finds them by type. '' keeps the key. A peer's mail is one range: '[P|' to '(P}'
 *   LOBBY   sorted set: lobby peers by when their wait (or denial notice) ends
 *   CHAT    list: the room's last chat messages
 *   CLOSED  hash, for CLOSED_NOTICE_MS once the room closed: b (the room-closed message) and each
 *           peer's t:<peer> then, so its peers still read that it closed
 *   OP      string: the reply this request got, kept so a repeat of it gets it again (idempotency)
 *
 * Channels (pub/sub, not keys) wake a peer's waiting reads: "m:<id>:<type>:<JSON>" (the message
 * itself), "gone", "closed:<JSON>" or "w:<mark>" (a waiting read of that peer began).
 *
 * A message id is "<ms>-<seq>": seq counts the room's messages, so ids only grow in a room
 * whatever the clocks of the functions that send (ms never goes back either). Its sort key is
 * seq, zero-padded, so that BOX orders a peer's mail by name.
 *
 * The mail budget: a message counts its type and body plus ENTRY_OVERHEAD once, and
 * RECIPIENT_OVERHEAD for each of its places in a recipient's mail (two for an offer, answer or
 * candidate), against the room's bytes (at most `mb`); and one against each recipient's inbox
 * (at most `im` messages). Chat fills at most half of either,
 * so it can never starve offers, answers and candidates.
 *
 * Arguments: ARGV[1], one JSON object (each script's fields are named in lib/store/scripts.ts).
 * Reply: one JSON object, always with `status` ('ok', or why not) and, when the step charged the
 * caller's call limit, `charged`. A script that changed something keeps its reply in OP.
 */

import { CHANNEL_INFIX } from "./keys.js";
import { CLOSED_NOTICE_MS, ENTRY_OVERHEAD, LOBBY_MAX, RECIPIENT_OVERHEAD } from "./types.js";

/** Upstash's flag for per-key locking; it must be the script's first line (anywhere else it is ignored). */
export const KEY_LOCKING = "#!lua flags=allow-key-locking";

const PRELUDE = `
local ROOM, MAIL, BOX, LOBBY, CHAT, CLOSED, OP = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local A = cjson.decode(ARGV[1])
local NOW = A.now
-- What an earlier run of this same request answered (a repeat ends with it), and where the
-- caller's call limit stands once this step charged it.
local REPLY, CHARGED

local TAKEABLE = { offer = true, answer = true, candidate = true }
-- Wakes the peer's waiting reads and streams (on a cluster, sharded: see SHARDED_SCRIPTS).
local function notify(id, payload) redis.call('PUBLISH', ROOM .. '${CHANNEL_INFIX}' .. id, payload) end

-- A repeat of a request this room has answered (OP holds its fingerprint and reply): REPLY is
-- that reply again, or a refusal when the same key came with a different request.
local function repeated()
  if not OP then return nil end
  local saved = redis.call('GET', OP)
  if not saved then return nil end
  local cut = string.find(saved, '\\n', 1, true)
  if string.sub(saved, 1, cut - 1) ~= A.once.fingerprint then
    REPLY = '{"status":"idempotency-mismatch"}'
    return 'mismatch'
  end
  REPLY = '{"replayed":true,' .. string.sub(saved, cut + 2)
  return 'replayed'
end

-- The room's settings and, for each id given, that peer's token hash (false if absent) and
-- lobby state (aw, bw: false for a peer in the room).
local function load(a, b)
  local f = redis.call('HMGET', ROOM, 'host', 'topo', 'exp', 'ttl', 'cap', 'max', 'n', 't:' .. (a or ''), 't:' .. (b or ''),
    'im', 'mb', 'q', 'w:' .. (a or ''), 'w:' .. (b or ''), 'ms', 'sq')
  if not f[1] then return nil end
  local r = { host = f[1], topo = f[2], exp = tonumber(f[3]), ttl = tonumber(f[4]), cap = tonumber(f[5]),
              max = tonumber(f[6]), n = tonumber(f[7]), a = f[8], b = f[9],
              im = tonumber(f[10]) or 1000, mb = tonumber(f[11]) or 4194304, q = tonumber(f[12]) or 0,
              aw = f[13], bw = f[14], ms = tonumber(f[15]) or 0, seq = tonumber(f[16]) }
  if not r.seq then
    -- A room from before its mail moved into MAIL and BOX: its old inboxes are left to expire.
    r.seq, r.q = 0, 0
    redis.call('HSET', ROOM, 'sq', 0, 'q', 0)
    redis.call('HSET', MAIL, '', '')
    redis.call('ZADD', BOX, 0, '')
    redis.call('PEXPIREAT', MAIL, r.exp)
    redis.call('PEXPIREAT', BOX, r.exp)
  end
  return r
end

-- Upstash's sliding window, in the room's hash field 'field' ("<window start> <count> <previous
-- window's count>"; it goes with the room): one more use if under 'max'. The window before
-- counts for the part of it the sliding window still covers. Returns whether it was, and
-- {limit, remaining, reset: when the window ends}.
local function spend(field, max, windowMs)
  local start = NOW - NOW % windowMs
  local count, previous = 0, 0
  local saved = redis.call('HGET', ROOM, field)
  if saved then
    local s, c, p = string.match(saved, '^(%d+) (%d+) (%d+)$')
    if tonumber(s) == start then count, previous = tonumber(c), tonumber(p)
    elseif tonumber(s) == start - windowMs then previous = tonumber(c) end
  end
  local used = math.floor(previous * (1 - (NOW - start) / windowMs)) + count
  local window = { limit = max, remaining = 0, reset = start + windowMs }
  if used >= max then return false, window end
  redis.call('HSET', ROOM, field, string.format('%d %d %d', start, count + 1, previous))
  window.remaining = max - used - 1
  return true, window
end

-- The caller's call limit (A.charge: {max, windowMs, ifMail}), charged in this step. False past it.
local function charge(caller)
  local ok, w = spend('l:' .. caller, A.charge.max, A.charge.windowMs)
  w.ok = ok
  CHARGED = w
  return ok
end

-- When a lobby peer's wait (or its denial notice) ends, ms.
local function waitEnds(id) return tonumber(redis.call('ZSCORE', LOBBY, id)) or 0 end

-- Why the caller may not act, or nil if it may. need: 'host'; 'peer' (anyone in the room); or
-- 'own-mail' (a peer in the lobby too, until its wait ends: it may read its own mail, and leave).
-- Once its token checks out, a repeated request ends here with its first reply; otherwise the
-- call is charged (per peer), whether or not what it asks is allowed.
local function denied(r, caller, tokenHash, need)
  if not r then
    -- The request's first run closed the room: its peer, as the closed notice knows it, gets that reply again.
    if OP and redis.call('HGET', CLOSED, 't:' .. caller) == tokenHash and repeated() then return 'repeated' end
    return 'room-missing'
  end
  if r.a ~= tokenHash then
    -- Or its first run took the token away (the peer left): its reply, nothing secret, again.
    if not r.a and repeated() then return 'repeated' end
    return 'unauthorized'
  end
  if repeated() then return 'repeated' end
  if A.charge and not A.charge.ifMail and not charge(caller) then return 'rate-limited' end
  if r.aw then
    if need ~= 'own-mail' then return 'not-admitted' end
    if waitEnds(caller) <= NOW then return 'unauthorized' end
  end
  if need == 'host' and caller ~= r.host then return 'forbidden' end
end

-- A read's conditional charge (A.charge.ifMail), once it knows whether it found mail: false past the limit.
local function chargedIfMail(caller, found)
  return not (A.charge and A.charge.ifMail and #found > 0 and not charge(caller))
end

local function size(kind, body) return #kind + #body + ${ENTRY_OVERHEAD} end
-- What a message's places in one recipient's mail count: one in order, and one by type for takes.
local function places(kind) return TAKEABLE[kind] and ${2 * RECIPIENT_OVERHEAD} or ${RECIPIENT_OVERHEAD} end

-- How many unread messages peer 'id' has.
local function unreadCount(id) return redis.call('ZLEXCOUNT', BOX, '[' .. id .. '|', '(' .. id .. '}') end

-- A message id's sort key (seq, zero-padded), and the first name in BOX past all of id's entries for it.
local function sortKey(id) return string.format('%012d', tonumber(string.match(id, '^%d+%-(%d+)$'))) end
local function past(peer, id) return '(' .. peer .. '|' .. sortKey(id) .. '|~' end

-- Stores one message for every peer in 'to' (its body once), within the room's bytes (share 1:
-- all of them; 2: half, for chat), and wakes each one's waiting reads: the id, or nil and why not.
-- The recipients' inboxes are the caller's to check.
local function deliver(r, to, kind, body, share)
  if #to == 0 then return nil, 'no-one' end
  local bytes = size(kind, body) + #to * places(kind)
  if r.q + bytes > r.mb / share then return nil, 'room-busy' end
  r.ms, r.seq, r.q = math.max(NOW, r.ms), r.seq + 1, r.q + bytes
  redis.call('HSET', ROOM, 'ms', r.ms, 'sq', r.seq, 'q', r.q)
  local sk, id = string.format('%012d', r.seq), r.ms .. '-' .. r.seq
  redis.call('HSET', MAIL, sk, kind .. ' ' .. body)
  local shared = ''
  if #to > 1 then
    redis.call('HSET', MAIL, 'n:' .. sk, #to)
    shared = '|s'
  end
  local members = {}
  for _, p in ipairs(to) do
    members[#members + 1] = 0
    members[#members + 1] = p .. '|' .. sk .. '|' .. r.ms .. '|' .. kind .. shared
    if TAKEABLE[kind] then
      members[#members + 1] = 0
      members[#members + 1] = p .. '#' .. kind .. '|' .. sk .. '|' .. r.ms
    end
  end
  redis.call('ZADD', BOX, unpack(members))
  -- The message rides along, so a waiting poll needs no read to answer.
  local payload = 'm:' .. id .. ':' .. kind .. ':' .. body
  for _, p in ipairs(to) do notify(p, payload) end
  return id
end

-- One recipient's entry as BOX names it ('<peer>|<sort key>|<ms>|<type>[|s]').
local function entry(member)
  local sk, ms, kind, shared = string.match(member, '|(%d+)|(%d+)|([%l-]+)(|?s?)$')
  return { sk = sk, ms = ms, kind = kind, shared = shared == '|s' }
end

-- Peer 'id' is done with these entries of its mail: they go from BOX, and a body goes from MAIL
-- with its last recipient; the room's bytes shrink by what went.
local function release(r, id, entries)
  if #entries == 0 then return end
  local members, bodies, freed = {}, {}, 0
  for _, e in ipairs(entries) do
    members[#members + 1] = id .. '|' .. e.sk .. '|' .. e.ms .. '|' .. e.kind .. (e.shared and '|s' or '')
    if TAKEABLE[e.kind] then members[#members + 1] = id .. '#' .. e.kind .. '|' .. e.sk .. '|' .. e.ms end
    freed = freed + places(e.kind)
    if not e.shared or redis.call('HINCRBY', MAIL, 'n:' .. e.sk, -1) <= 0 then
      -- The stored value is "<type> <body>": one byte more than the type and body.
      freed = freed + redis.call('HSTRLEN', MAIL, e.sk) - 1 + ${ENTRY_OVERHEAD}
      bodies[#bodies + 1] = e.sk
      if e.shared then bodies[#bodies + 1] = 'n:' .. e.sk end
    end
  end
  redis.call('ZREM', BOX, unpack(members))
  if #bodies > 0 then redis.call('HDEL', MAIL, unpack(bodies)) end
  r.q = r.q - freed
  redis.call('HSET', ROOM, 'q', r.q)
end

-- Peer 'id''s unread entries between two names of BOX (at most 'batch'), with their bodies, as
-- {entries, messages: {id, body}}.
local function mailBetween(id, from, to, batch)
  local entries, messages = {}, {}
  local members = redis.call('ZRANGEBYLEX', BOX, from, to, 'LIMIT', 0, batch)
  if #members == 0 then return entries, messages end
  local keys = {}
  for i, m in ipairs(members) do
    entries[i] = entry(m)
    keys[i] = entries[i].sk
  end
  local values = redis.call('HMGET', MAIL, unpack(keys))
  for i, e in ipairs(entries) do
    messages[i] = { id = e.ms .. '-' .. tonumber(e.sk), body = string.sub(values[i], #e.kind + 2) }
  end
  return entries, messages
end

local function peerIds()
  local ids = {}
  for _, field in ipairs(redis.call('HKEYS', ROOM)) do
    if string.sub(field, 1, 2) == 'p:' then ids[#ids + 1] = string.sub(field, 3) end
  end
  return ids
end

-- Activity extends the room once less than half its TTL is left, never past its cap.
local function refresh(r)
  if r.exp - NOW >= r.ttl / 2 then return end
  local extended = math.min(NOW + r.ttl, r.cap)
  if extended <= r.exp then return end
  r.exp = extended
  redis.call('HSET', ROOM, 'exp', extended)
  for _, key in ipairs({ ROOM, MAIL, BOX, CHAT, LOBBY }) do redis.call('PEXPIREAT', key, extended) end
end

-- Delivers to one peer, if its inbox has room (share 2: half of it, for chat): the id, or nil and why not.
local function deliverTo(r, to, kind, body, share)
  if unreadCount(to) >= r.im / share then return nil, 'inbox-full' end
  return deliver(r, { to }, kind, body, share)
end

-- Who hears of a peer joining or leaving: in a star room only the host, in a mesh everyone
-- else; a recipient whose inbox is full misses the notice rather than fail the join or leave.
local function announce(r, about, kind, body)
  local to = {}
  for _, id in ipairs(r.topo == 'star' and { r.host } or peerIds()) do
    if id ~= about and unreadCount(id) < r.im then to[#to + 1] = id end
  end
  deliver(r, to, kind, body, 1)
end

-- A waiting read of 'id' began: older waiting reads of that peer end.
local function markWaiter(id, mark)
  if mark then notify(id, 'w:' .. mark) end
end

-- A peer (in the room or in the lobby) leaves no trace: fields, mail, place in the lobby; its
-- reads end. (The room's count is the caller's to mend: lobby peers are not in it.)
local function drop(r, id)
  redis.call('HDEL', ROOM, 'p:' .. id, 'w:' .. id, 't:' .. id, 'x:' .. id, 'c:' .. id, 'l:' .. id)
  redis.call('ZREM', LOBBY, id)
  local entries = {}
  for i, m in ipairs(redis.call('ZRANGEBYLEX', BOX, '[' .. id .. '|', '(' .. id .. '}')) do entries[i] = entry(m) end
  release(r, id, entries)
  notify(id, 'gone')
end

-- Lobby peers whose wait (or denial notice) is over go.
local function prune(r)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', LOBBY, '-inf', NOW)) do drop(r, id) end
end

-- The room as a join sees it: its info, expiry and lock, and the peers a joiner deals with (in
-- a star room the host and 'id' alone, in a mesh everyone).
local function view(r, id)
  local f = redis.call('HMGET', ROOM, 'info', 'lk')
  local peers = {}
  if r.topo == 'star' and id then
    peers = redis.call('HMGET', ROOM, 'p:' .. r.host, 'p:' .. id)
  else
    for _, pid in ipairs(peerIds()) do peers[#peers + 1] = redis.call('HGET', ROOM, 'p:' .. pid) end
  end
  return { info = f[1], exp = r.exp, locked = f[2] == '1', peers = peers }
end

-- 'body' (a JSON object) with a join's view added: the room, and the peers a joiner deals with.
local function withView(r, id, body)
  local v = view(r, id)
  local info = string.sub(v.info, 1, -2) .. ',"expiresAt":' .. r.exp .. ',"locked":' .. (v.locked and 'true' or 'false') .. '}'
  return string.sub(body, 1, -2) .. ',"room":' .. info .. ',"peers":[' .. table.concat(v.peers, ',') .. ']}'
end

-- Deletes the room, waking everyone (the lobby too) with 'closed'; returns its session records.
local function close(body)
  local sessions, notice = {}, { 'b', body }
  local fields = redis.call('HGETALL', ROOM)
  for i = 1, #fields, 2 do
    local kind = string.sub(fields[i], 1, 2)
    if kind == 's:' then sessions[#sessions + 1] = fields[i + 1] end
    if kind == 't:' then notice[#notice + 1] = fields[i]; notice[#notice + 1] = fields[i + 1] end
    if kind == 'p:' or kind == 'w:' then notify(string.sub(fields[i], 3), 'closed:' .. body) end
  end
  redis.call('DEL', ROOM, MAIL, BOX, LOBBY, CHAT)
  redis.call('HSET', CLOSED, unpack(notice))
  redis.call('PEXPIRE', CLOSED, ${CLOSED_NOTICE_MS})
  return sessions
end
`;

/**
 * A room script: the prelude, then `body` as its main function. A repeat of a request answers
 * its first reply; a reply with status 'ok' is kept in OP (when declared) for such repeats.
 */
const roomScript = (body: string) => `${KEY_LOCKING}${PRELUDE}
local function main()
${body}
end
local reply = main()
if REPLY then return REPLY end
reply.charged = CHARGED
local encoded = cjson.encode(reply)
if OP and reply.status == 'ok' then redis.call('SET', OP, A.once.fingerprint .. '\\n' .. encoded, 'PX', A.once.ttlMs) end
return encoded
`;

/** A script on the AI call deadline index (KEYS[1]), outside any room. */
const indexScript = (body: string) => `${KEY_LOCKING}
local INDEX = KEYS[1]
local A = cjson.decode(ARGV[1])
${body}
`;

/**
 * {roomJson, hostJson, hostId, maxPeers, topology, lobby?, ttlMs, capAt, hostTokenHash, inboxMax,
 * mailMaxBytes, joinKeyHash?} → {info, exp}: the room made
 */
export const CREATE_ROOM = roomScript(`
local host = A.hostId
if repeated() == 'replayed' then
  -- The same request again (its reply was lost): the same room, under this run's secrets.
  redis.call('HSET', ROOM, 't:' .. host, A.hostTokenHash)
  if A.joinKeyHash then redis.call('HSET', ROOM, 'jk', A.joinKeyHash) end
end
if REPLY then return end
if redis.call('EXISTS', ROOM) == 1 then return { status = 'exists' } end
local exp = math.min(NOW + A.ttlMs, A.capAt)
redis.call('DEL', CLOSED)
redis.call('HSET', ROOM, 'info', A.roomJson, 'exp', exp, 'ttl', A.ttlMs, 'cap', A.capAt, 'max', A.maxPeers,
  'host', host, 'topo', A.topology, 'n', 1, 'p:' .. host, A.hostJson, 't:' .. host, A.hostTokenHash,
  'im', A.inboxMax, 'mb', A.mailMaxBytes, 'q', 0, 'ms', 0, 'sq', 0)
if A.joinKeyHash then redis.call('HSET', ROOM, 'jk', A.joinKeyHash) end
if A.lobby then redis.call('HSET', ROOM, 'lb', '1') end
-- MAIL and BOX always exist (a placeholder each), so they carry the room's expiry from the start.
redis.call('HSET', MAIL, '', '')
redis.call('ZADD', BOX, 0, '')
for _, key in ipairs({ ROOM, MAIL, BOX }) do redis.call('PEXPIREAT', key, exp) end
return { status = 'ok', info = A.roomJson, exp = exp }
`);

/** {} → the room's view (everyone), without any secret; status 'room-missing' when there is none */
export const DESCRIBE_ROOM = roomScript(`
local r = load()
if not r then return { status = 'room-missing' } end
local v = view(r)
v.status = 'ok'
return v
`);

/** {caller, tokenHash} → the room's view (everyone) */
export const LIST_PEERS = roomScript(`
local caller, tokenHash = A.caller, A.tokenHash
local r = load(caller)
local no = denied(r, caller, tokenHash, 'peer')
if no then return { status = no } end
local v = view(r)
v.status = 'ok'
return v
`);

/**
 * {peer, peerJson, tokenHash, announce: {type, body}, joinKeyHash?, byHost?, knock?, waitUntil?}
 * → the joiner's view, or {waiting: true, until} for a lobby room
 */
export const JOIN_ROOM = roomScript(`
local peer, peerJson, tokenHash, announced = A.peer, A.peerJson, A.tokenHash, A.announce
if repeated() == 'replayed' then
  -- The same join again (its reply was lost): the same peer, under this run's token.
  if redis.call('HEXISTS', ROOM, 't:' .. peer) == 1 then redis.call('HSET', ROOM, 't:' .. peer, tokenHash) end
end
if REPLY then return end
local r = load()
if not r then return { status = 'room-missing' } end
local gate = redis.call('HMGET', ROOM, 'lk', 'jk', 'lb')
if not A.byHost then
  if gate[1] == '1' then return { status = 'room-locked' } end
  if gate[2] and not A.joinKeyHash then return { status = 'join-key-required' } end
  if gate[2] and gate[2] ~= A.joinKeyHash then return { status = 'join-key-invalid' } end
end
if r.n >= r.max then return { status = 'room-full' } end
refresh(r)
if gate[3] == '1' and not A.byHost then
  prune(r)
  if redis.call('ZCARD', LOBBY) >= ${LOBBY_MAX} then return { status = 'lobby-full' } end
  -- The host must hear the knock, or nobody would answer it.
  if not deliverTo(r, r.host, 'knock', A.knock, 1) then return { status = 'room-busy' } end
  redis.call('HSET', ROOM, 'w:' .. peer, peerJson, 't:' .. peer, tokenHash)
  redis.call('ZADD', LOBBY, A.waitUntil, peer)
  redis.call('PEXPIREAT', LOBBY, r.exp)
  return { status = 'ok', waiting = true, ['until'] = A.waitUntil }
end
redis.call('HSET', ROOM, 'p:' .. peer, peerJson, 't:' .. peer, tokenHash)
redis.call('HINCRBY', ROOM, 'n', 1)
announce(r, peer, announced.type, announced.body)
-- A star viewer talks only to the host: it gets the host and itself, not the whole room (filling
-- a room would cost O(n^2) bytes). In a mesh everyone connects to everyone: all of it.
local v = view(r, peer)
v.status = 'ok'
return v
`);

/** {caller, tokenHash, target, announce: {type, body}, closed} */
export const LEAVE_ROOM = roomScript(`
local caller, tokenHash, target = A.caller, A.tokenHash, A.target
local r = load(caller, target)
local no = denied(r, caller, tokenHash, target == caller and 'own-mail' or 'peer')
if no then return { status = no } end
if target ~= caller and caller ~= r.host then return { status = 'forbidden' } end
if not r.b then return { status = 'peer-missing' } end
if target == r.host then return { status = 'ok', sessions = close(A.closed) } end
if r.bw then
  -- From the lobby: the host's knock goes with it (a denied peer's is answered already).
  drop(r, target)
  if r.bw ~= '-' then deliverTo(r, r.host, A.announce.type, A.announce.body, 1) end
  return { status = 'ok' }
end
drop(r, target)
redis.call('HINCRBY', ROOM, 'n', -1)
refresh(r)
announce(r, target, A.announce.type, A.announce.body)
return { status = 'ok' }
`);

/** {caller, tokenHash, closed} → {sessions} */
export const CLOSE_ROOM = roomScript(`
local caller, tokenHash = A.caller, A.tokenHash
local r = load(caller)
local no = denied(r, caller, tokenHash, 'host')
if no then return { status = no } end
return { status = 'ok', sessions = close(A.closed) }
`);

/** {caller, tokenHash, to, type, body} → {id} */
export const SEND = roomScript(`
local caller, tokenHash, to = A.caller, A.tokenHash, A.to
local r = load(caller, to)
local no = denied(r, caller, tokenHash, 'peer')
if no then return { status = no } end
if to == caller or not r.b or r.bw then return { status = 'peer-missing' } end
if r.topo == 'star' and caller ~= r.host and to ~= r.host then return { status = 'forbidden' } end
refresh(r)
local id, refused = deliverTo(r, to, A.type, A.body, 1)
if not id then return { status = refused } end
return { status = 'ok', id = id }
`);

/**
 * {caller, tokenHash, after?, from?, batch, mark?} → {messages: [{id, body}]}: acknowledges (deletes)
 * the caller's mail up to `after`, and returns what follows it (or follows `from`, which a stream
 * has sent but the client not yet acknowledged). For CLOSED_NOTICE_MS after the room closed, its
 * peers read status 'closed' with the room-closed message as `body`.
 */
export const READ = roomScript(`
local caller, tokenHash, after, from = A.caller, A.tokenHash, A.after, A.from or A.after
local r = load(caller)
if not r then
  local notice = redis.call('HMGET', CLOSED, 'b', 't:' .. caller)
  if notice[1] and notice[2] == tokenHash then return { status = 'closed', body = notice[1] } end
  return { status = 'room-missing' }
end
local no = denied(r, caller, tokenHash, 'own-mail')
if no then return { status = no } end
markWaiter(caller, A.mark)
if after then
  local acknowledged = {}
  for i, m in ipairs(redis.call('ZRANGEBYLEX', BOX, '[' .. caller .. '|', past(caller, after))) do acknowledged[i] = entry(m) end
  release(r, caller, acknowledged)
end
refresh(r)
local start = from and past(caller, from) or ('[' .. caller .. '|')
local _, messages = mailBetween(caller, start, '(' .. caller .. '}', A.batch)
if not chargedIfMail(caller, messages) then return { status = 'rate-limited' } end
return { status = 'ok', messages = messages }
`);

/**
 * {caller, tokenHash, type, batch, mark?} → {messages}: removes and returns the caller's mail of one
 * type, oldest first; it costs what it takes.
 */
export const TAKE = roomScript(`
local caller, tokenHash, kind = A.caller, A.tokenHash, A.type
local r = load(caller)
local no = denied(r, caller, tokenHash, 'own-mail')
if no then return { status = no } end
markWaiter(caller, A.mark)
refresh(r)
local entries, messages = {}, {}
if TAKEABLE[kind] then
  local first = caller .. '#' .. kind .. '|'
  local members = redis.call('ZRANGEBYLEX', BOX, '[' .. first, '(' .. caller .. '#' .. kind .. '}', 'LIMIT', 0, A.batch)
  local keys = {}
  for i, m in ipairs(members) do
    local sk, ms = string.match(m, '|(%d+)|(%d+)$')
    entries[i] = { sk = sk, ms = ms, kind = kind, shared = false }
    keys[i] = sk
  end
  if #keys > 0 then
    local values = redis.call('HMGET', MAIL, unpack(keys))
    for i, e in ipairs(entries) do messages[i] = { id = e.ms .. '-' .. tonumber(e.sk), body = string.sub(values[i], #kind + 2) } end
    release(r, caller, entries)
  end
end
return { status = 'ok', messages = messages }
`);

/** {caller, tokenHash, sessionId, record, max, expiresAt?}: creates only while fewer than max are live; overwrites always */
export const PUT_SESSION = roomScript(`
local caller, tokenHash, sessionId = A.caller, A.tokenHash, A.sessionId
local r = load(caller)
local no = denied(r, caller, tokenHash, 'host')
if no then return { status = no } end
local field = 's:' .. sessionId
if redis.call('HEXISTS', ROOM, field) == 0 then
  local count = 0
  for _, f in ipairs(redis.call('HKEYS', ROOM)) do
    if string.sub(f, 1, 2) == 's:' then
      local id = string.sub(f, 3)
      local expires = tonumber(redis.call('HGET', ROOM, 'e:' .. id))
      if expires and expires <= NOW then redis.call('HDEL', ROOM, f, 'e:' .. id)
      else count = count + 1 end
    end
  end
  if count >= A.max then return { status = 'limit' } end
end
redis.call('HSET', ROOM, field, A.record)
if A.expiresAt then redis.call('HSET', ROOM, 'e:' .. sessionId, A.expiresAt) end
return { status = 'ok' }
`);

/** {caller, tokenHash, sessionId} → {record?}: removes the record */
export const REMOVE_SESSION = roomScript(`
local caller, tokenHash, sessionId = A.caller, A.tokenHash, A.sessionId
local r = load(caller)
local no = denied(r, caller, tokenHash, 'host')
if no then return { status = no } end
local record = redis.call('HGET', ROOM, 's:' .. sessionId)
if record then redis.call('HDEL', ROOM, 's:' .. sessionId, 'e:' .. sessionId) end
return { status = 'ok', record = record or nil }
`);

/** {sessionId} → {record?}: a session past its deadline ends, whoever asks */
export const END_SESSION = roomScript(`
local field = 's:' .. A.sessionId
local record = redis.call('HGET', ROOM, field)
if record then redis.call('HDEL', ROOM, field, 'e:' .. A.sessionId) end
return { status = 'ok', record = record or nil }
`);

/**
 * {caller, tokenHash, target, allow, admitted, denied, announce: {type, body}, deniedUntil}: the
 * host answers a lobby peer. The same answer twice is 'ok' and does nothing more.
 */
export const ADMIT = roomScript(`
local caller, tokenHash, target = A.caller, A.tokenHash, A.target
local r = load(caller, target)
local no = denied(r, caller, tokenHash, 'host')
if no then return { status = no } end
prune(r)
local waiting = redis.call('HGET', ROOM, 'w:' .. target)
-- The same answer twice does nothing more (a retried request); any other is to no one waiting.
if not waiting then
  if A.allow and r.b and redis.call('HEXISTS', ROOM, 'p:' .. target) == 1 then return { status = 'ok' } end
  return { status = 'peer-missing' }
end
if waiting == '-' then return { status = A.allow and 'peer-missing' or 'ok' } end
if not A.allow then
  redis.call('HSET', ROOM, 'w:' .. target, '-')
  redis.call('ZADD', LOBBY, A.deniedUntil, target)
  deliverTo(r, target, 'denied', A.denied, 1)
  return { status = 'ok' }
end
if r.n >= r.max then return { status = 'room-full' } end
redis.call('HSET', ROOM, 'p:' .. target, waiting)
redis.call('HDEL', ROOM, 'w:' .. target)
redis.call('ZREM', LOBBY, target)
redis.call('HINCRBY', ROOM, 'n', 1)
refresh(r)
announce(r, target, A.announce.type, string.sub(A.announce.body, 1, -2) .. ',"peer":' .. waiting .. '}')
deliverTo(r, target, 'admitted', withView(r, target, A.admitted), 1)
return { status = 'ok' }
`);

/** {caller, tokenHash}: verifies the caller, so that its charge is taken */
export const CHARGE_CALL = roomScript(`
local r = load(A.caller)
return { status = denied(r, A.caller, A.tokenHash, 'own-mail') or 'ok' }
`);

/** {caller, tokenHash, locked} */
export const SET_LOCKED = roomScript(`
local caller, tokenHash = A.caller, A.tokenHash
local r = load(caller)
local no = denied(r, caller, tokenHash, 'host')
if no then return { status = no } end
if A.locked then redis.call('HSET', ROOM, 'lk', '1') else redis.call('HDEL', ROOM, 'lk') end
return { status = 'ok' }
`);

/** {caller, tokenHash, joinKeyHash} */
export const ROTATE_JOIN_KEY = roomScript(`
local caller, tokenHash = A.caller, A.tokenHash
local r = load(caller)
local no = denied(r, caller, tokenHash, 'host')
-- The same request again (its reply was lost): this run's key is the one the host will get.
if no == 'repeated' and string.sub(REPLY, 1, 16) == '{"replayed":true' then redis.call('HSET', ROOM, 'jk', A.joinKeyHash) end
if no then return { status = no } end
if redis.call('HEXISTS', ROOM, 'jk') == 0 then return { status = 'open-room' } end
redis.call('HSET', ROOM, 'jk', A.joinKeyHash)
return { status = 'ok' }
`);

/** {caller, tokenHash, ticketHash, expiresAt}: the peer's previous ticket, if any, stops working */
export const ISSUE_TICKET = roomScript(`
local caller, tokenHash = A.caller, A.tokenHash
local r = load(caller)
local no = denied(r, caller, tokenHash, 'own-mail')
if no then return { status = no } end
redis.call('HSET', ROOM, 'x:' .. caller, A.ticketHash .. ' ' .. A.expiresAt)
return { status = 'ok' }
`);

/** {peerId, ticketHash} → {tokenHash} once; status 'invalid' for any ticket not live */
export const REDEEM_TICKET = roomScript(`
local peer = A.peerId
local f = redis.call('HMGET', ROOM, 'x:' .. peer, 't:' .. peer)
if not f[1] or not f[2] then return { status = 'invalid' } end
local hash, expires = string.match(f[1], '^(%S+) (%d+)$')
-- A wrong ticket leaves the real one alone: guessing must not be a way to burn it.
if hash ~= A.ticketHash then return { status = 'invalid' } end
redis.call('HDEL', ROOM, 'x:' .. peer)
if tonumber(expires) <= NOW then return { status = 'invalid' } end
return { status = 'ok', tokenHash = f[2] }
`);

/**
 * {caller, tokenHash, body (without the sender's name: added here), at (the body's), historyMax,
 * limits?: {perSender, perRoom, windowMs}} → {at, name?, window?} | status 'chat-limited' with {window}
 */
export const CHAT = roomScript(`
local caller, tokenHash, limits = A.caller, A.tokenHash, A.limits
local r = load(caller)
local no = denied(r, caller, tokenHash, 'peer')
if no then return { status = no } end
-- The limits are charged once the token checks out (a forged one spends no room's budget), the
-- sender's first (a sender past its own spends none of the room's).
local tight
if limits then
  for _, limit in ipairs({ { 'c:' .. caller, limits.perSender }, { 'c', limits.perRoom } }) do
    local ok, w = spend(limit[1], limit[2], limits.windowMs)
    if not ok then return { status = 'chat-limited', window = w } end
    if not tight or w.remaining < tight.remaining then tight = w end
  end
end
-- The sender's name, from the peer JSON we wrote.
local name = cjson.decode(redis.call('HGET', ROOM, 'p:' .. caller)).name
local nameJson = name and cjson.encode(name) or 'null'
local body = string.sub(A.body, 1, -2) .. ',"name":' .. nameJson .. '}'
refresh(r)
-- Chat has half the budget: a recipient with half a full inbox is not reading, and misses it
-- (the history keeps it); the room's half full refuses it whole.
local to = {}
for _, id in ipairs(peerIds()) do
  if id ~= caller and unreadCount(id) < r.im / 2 then to[#to + 1] = id end
end
local _, refused = deliver(r, to, 'chat', body, 2)
if refused == 'room-busy' then return { status = 'room-busy' } end
redis.call('RPUSH', CHAT, body)
redis.call('LTRIM', CHAT, -A.historyMax, -1)
redis.call('PEXPIREAT', CHAT, r.exp)
return { status = 'ok', at = A.at, name = name, window = tight }
`);

/** {caller, tokenHash} → {bodies} */
export const CHAT_HISTORY = roomScript(`
local r = load(A.caller)
local no = denied(r, A.caller, A.tokenHash, 'peer')
if no then return { status = no } end
return { status = 'ok', bodies = redis.call('LRANGE', CHAT, 0, -1) }
`);

/** {member: "<roomId>/<sessionId>", at, keepUntil}: the index outlives its last deadline by a day, then goes like every key */
export const SCHEDULE_END = indexScript(`
redis.call('ZADD', INDEX, A.at, A.member)
redis.call('PEXPIREAT', INDEX, A.keepUntil)
return cjson.encode({ status = 'ok' })
`);

/** {now, max} → {members}: the calls past their deadline, soonest first */
export const DUE_SESSIONS = indexScript(`
local members = redis.call('ZRANGEBYSCORE', INDEX, '-inf', A.now, 'LIMIT', 0, A.max)
return cjson.encode({ status = 'ok', members = members })
`);

/** {member} */
export const UNSCHEDULE_END = indexScript(`
redis.call('ZREM', INDEX, A.member)
return cjson.encode({ status = 'ok' })
`);

export const SCRIPTS = {
  CREATE_ROOM, DESCRIBE_ROOM, LIST_PEERS, JOIN_ROOM, LEAVE_ROOM, CLOSE_ROOM, SEND, READ, TAKE, PUT_SESSION, REMOVE_SESSION, END_SESSION,
  ADMIT, CHARGE_CALL, SET_LOCKED, ROTATE_JOIN_KEY, ISSUE_TICKET, REDEEM_TICKET, CHAT, CHAT_HISTORY, SCHEDULE_END, DUE_SESSIONS, UNSCHEDULE_END,
};

/**
 * The same scripts publishing with SPUBLISH (Redis 7): on a cluster a notice then goes to the
 * room's shard only, not to every node. The channel shares the room's slot.
 */
export const SHARDED_SCRIPTS = Object.fromEntries(
  Object.entries(SCRIPTS).map(([name, source]) => [name, source.replace("redis.call('PUBLISH', ", "redis.call('SPUBLISH', ")]),
) as typeof SCRIPTS;
