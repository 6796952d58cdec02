/**
 * The signaling protocol: rooms, peers, messages and how they are read. Handlers in api/
 * call one function here each; the store (lib/store) makes each step atomic.
 */
import { nanoid } from "nanoid";
import type { Context } from "./context.js";
import { iceServersFor } from "./ice.js";
import { hashToken, idFor, newJoinKey, newPeerId, newRoomId, newTicket, newToken, ticketPeerId, tokenPeerId } from "./ids.js";
import { problems } from "./problem.js";
import { rateLimitHeaders, retryAfter } from "./ratelimit.js";
import { LIMITS, type CandidateInput, type CreateRoomInput, type Description, type JoinInput } from "./schemas.js";
import {
  CLOSED_MESSAGE_ID,
  LOBBY_MAX,
  LOBBY_WAIT_MS,
  StoreUnavailable,
  type Answer,
  type Call,
  type Caller,
  type Denied,
  type Once,
  type Outgoing,
  type PeerInfo,
  type RoomView,
  type StoredMessage,
  type Wake,
} from "./store/types.js";

export type MessageType = "offer" | "answer" | "candidate" | "peer-joined" | "peer-left" | "room-closed" | "chat" | "knock" | "admitted" | "denied";

/** How many chat messages a room keeps for late joiners. */
export const CHAT_HISTORY = 50;

/** A message as a peer reads it. */
export interface Message {
  id: string;
  type: MessageType;
  from: string;
  at: number;
  [field: string]: unknown;
}

function outgoing(type: MessageType, from: string, at: number, fields: Record<string, unknown> = {}): Outgoing {
  return { type, body: JSON.stringify({ type, from, at, ...fields }) };
}

export const toMessage = (m: StoredMessage): Message => ({ id: m.id, ...JSON.parse(m.body) });

/**
 * Throws the problem for a store's refusal. A missing room is an invalid token: a caller
 * whose token the room could not verify must not learn whether the room exists (only the
 * budgeted join and lookup say so).
 */
export function deny(status: Denied | "forbidden" | "peer-missing" | "inbox-full" | "room-busy", detail: { forbidden?: string; to?: string } = {}): never {
  switch (status) {
    case "room-missing":
    case "unauthorized":
      throw problems.invalidToken();
    case "not-admitted":
      throw problems.notAdmitted();
    case "forbidden":
      throw problems.forbidden(detail.forbidden ?? "Not allowed");
    case "peer-missing":
      throw problems.peerNotFound(detail.to ?? "");
    case "inbox-full":
      throw problems.inboxFull(detail.to ?? "");
    case "room-busy":
      throw problems.roomBusy();
  }
}

/** The caller a bearer token claims to be, in the named room. */
export function callerFor(roomId: string, token: string | null): Caller {
  if (!token) throw problems.missingToken();
  const peerId = tokenPeerId(token);
  if (!peerId) throw problems.invalidToken();
  return { roomId, peerId, tokenHash: hashToken(token) };
}

/** The same caller, for a request's further steps: its charge and its idempotency key went with its first. */
export const uncharged = ({ roomId, peerId, tokenHash }: Caller): Call => ({ roomId, peerId, tokenHash });

/** What a step answered the caller — a refusal (a status) thrown in words by `refused` — with its charge's window. */
function expect<V>(answer: Answer<V>, refused: (status: Extract<V, string>) => never): Answer<Exclude<V, string>> {
  const { value } = answer;
  if (typeof value === "string") refused(value as Extract<V, string>);
  return { ...answer, value: value as Exclude<V, string> };
}

/** An answer with another value: the window and the repeat stay. */
const answered = <T, U>(answer: Answer<T>, value: U): Answer<U> => ({ ...answer, value });

/** How long a stream ticket lasts: long enough to open the stream it was asked for, and no more. */
export const TICKET_TTL_MS = 60_000;

/** A single-use ticket to open the caller's event stream without the token (EventSource sends no headers). */
export async function issueTicket(ctx: Context, call: Call) {
  const now = ctx.now();
  const ticket = newTicket(call.peerId);
  const issued = await ctx.store.issueTicket(call, hashToken(ticket), TICKET_TTL_MS, now);
  if (issued.value !== "ok") deny(issued.value);
  const url = `/api/events?roomId=${call.roomId}&ticket=${ticket}`;
  return answered(issued, { ticket, expiresAt: now + TICKET_TTL_MS, url });
}

/** The caller a stream ticket was issued to; it works once. */
export async function callerForTicket(ctx: Context, roomId: string, ticket: string): Promise<Caller> {
  const peerId = ticketPeerId(ticket);
  const caller = peerId ? await ctx.store.redeemTicket(roomId, peerId, hashToken(ticket), ctx.now()) : null;
  if (!caller) throw problems.invalidTicket();
  return caller;
}

function publicRoom(view: RoomView) {
  return { room: view.room, peers: view.peers };
}

/**
 * Creates a room. With `once` (the client's Idempotency-Key) the room's and its host's IDs are
 * derived from it, so a repeat finds the room the first request made and answers it again (with
 * new secrets: only their hashes are kept, so the first ones cannot be given twice).
 */
export async function createRoom(ctx: Context, input: CreateRoomInput, once?: Once) {
  const now = ctx.now();
  const ttlMs = Math.min((input.ttlSeconds ?? ctx.config.roomTtlMs / 1000) * 1000, ctx.config.roomMaxLifetimeMs);
  const maxPeers = Math.min(input.maxPeers ?? LIMITS.maxPeers[input.topology], LIMITS.maxPeersCeiling[input.topology]);
  const joinKey = input.access === "key" ? newJoinKey() : undefined;
  const lobby = input.access === "lobby" || input.lobby === true;
  const access = input.access === "open" && lobby ? "lobby" : input.access;
  // A clash of two random 10-character IDs is vanishingly rare; draw again if it happens.
  for (let attempt = 0; attempt < 3; attempt++) {
    const seeded = attempt === 0 ? once : undefined;
    const roomId = seeded ? idFor(seeded.key, "room") : newRoomId();
    const host: PeerInfo = { peerId: seeded ? idFor(seeded.key, "host") : newPeerId(), role: "host", joinedAt: now, ...(input.name ? { name: input.name } : {}) };
    const token = newToken(host.peerId);
    const room = { roomId, topology: input.topology, maxPeers, hostId: host.peerId, createdAt: now, access, lobby };
    const hostTokenHash = hashToken(token);
    const joinKeyHash = joinKey ? hashToken(joinKey) : undefined;
    const created = await ctx.store.createRoom({ room, ttlMs, capAt: now + ctx.config.roomMaxLifetimeMs, host, hostTokenHash, ...(joinKeyHash ? { joinKeyHash } : {}) }, now, seeded);
    if (created.value === "exists") continue;
    ctx.verified.add(hostTokenHash);
    const made = created.value.room;
    return answered(created, {
      roomId, peerId: host.peerId, token, expiresAt: made.expiresAt,
      ...(joinKey ? { joinKey } : {}),
      room: made,
      iceServers: iceServersFor(ctx.config, host.peerId, now),
    });
  }
  throw problems.internal();
}

/**
 * Joins, or in a lobby room knocks: then the answer is `{status: "waiting", …}` and the host's
 * mail gets `knock`; the joiner reads its own mail for `admitted` or `denied` (POST /api/admit).
 * With `once`, the joiner's ID is derived from it: a repeat is the same peer, under a new token.
 */
export async function joinRoom(ctx: Context, input: JoinInput, once?: Once) {
  const now = ctx.now();
  const peer: PeerInfo = { peerId: once ? idFor(once.key, "peer") : newPeerId(), role: "viewer", joinedAt: now, ...(input.name ? { name: input.name } : {}) };
  const token = newToken(peer.peerId);
  const tokenHash = hashToken(token);
  const until = now + LOBBY_WAIT_MS;
  const knock = outgoing("knock", peer.peerId, now, { peer: { peerId: peer.peerId, name: peer.name ?? null }, expiresAt: until });
  const gate = { ...(input.joinKey ? { joinKeyHash: hashToken(input.joinKey) } : {}), lobby: { knock, until } };
  const joined = await ctx.store.joinRoom(input.roomId, peer, tokenHash, outgoing("peer-joined", peer.peerId, now, { peer }), now, gate, once);
  switch (joined.value) {
    case "room-missing":
      throw problems.roomNotFound(input.roomId);
    case "room-locked":
      throw problems.roomLocked();
    case "join-key-required":
      throw problems.joinKeyRequired();
    case "join-key-invalid":
      throw problems.joinKeyInvalid();
    case "lobby-full":
      throw problems.lobbyFull(LOBBY_MAX);
    case "room-busy":
      throw problems.roomBusy();
    case "room-full": {
      const room = await ctx.store.describeRoom(input.roomId, now);
      throw problems.roomFull(room?.room.maxPeers ?? 0);
    }
  }
  ctx.verified.add(tokenHash);
  const view = joined.value;
  if ("waiting" in view) return answered(joined, { status: "waiting" as const, roomId: input.roomId, peerId: peer.peerId, token, expiresAt: view.expiresAt });
  return answered(joined, {
    roomId: input.roomId,
    peerId: peer.peerId,
    token,
    expiresAt: view.room.expiresAt,
    ...publicRoom(view),
    iceServers: iceServersFor(ctx.config, peer.peerId, now),
  });
}

export async function listPeers(ctx: Context, call: Call) {
  const view = expect(await ctx.store.listPeers(call, ctx.now()), deny);
  return answered(view, publicRoom(view.value));
}

/**
 * Leave (peerId is the caller) or remove (the caller is the host). The host leaving closes the
 * room: then the AI session records it held are returned, for their calls to be hung up.
 */
export async function leaveRoom(ctx: Context, call: Call, peerId: string): Promise<Answer<{ sessions: string[] }>> {
  const now = ctx.now();
  const reason = peerId === call.peerId ? "left" : "removed";
  const left = await ctx.store.leaveRoom(
    call,
    peerId,
    outgoing("peer-left", peerId, now, { peerId, reason }),
    outgoing("room-closed", call.peerId, now),
    now,
  );
  if (left.value === "ok") return answered(left, { sessions: [] });
  if (typeof left.value === "object") return answered(left, left.value);
  deny(left.value, { forbidden: "Only the host may remove another peer", to: peerId });
}

/** Closes the room; returns the AI session records it held, for their calls to be hung up. */
export async function closeRoom(ctx: Context, call: Call) {
  const now = ctx.now();
  return expect(await ctx.store.closeRoom(call, outgoing("room-closed", call.peerId, now), now), (status) =>
    deny(status, { forbidden: "Only the host may close the room" }),
  );
}

async function send(ctx: Context, call: Call, to: string, type: MessageType, fields: Record<string, unknown>) {
  const now = ctx.now();
  return expect(await ctx.store.send(call, to, outgoing(type, call.peerId, now, fields), now), (status) =>
    deny(status, { forbidden: "In a star room a viewer may address only the host", to }),
  );
}

export const sendDescription = (ctx: Context, call: Call, to: string, description: Description) =>
  send(ctx, call, to, description.type, { description });

export const sendCandidates = (ctx: Context, call: Call, input: CandidateInput) =>
  send(ctx, call, input.to, "candidate", { candidates: input.candidates });

/** What a read may do besides reading. */
export interface ReadOptions {
  waitMs: number;
  signal?: AbortSignal;
}

/**
 * Reads with an optional wait. A waiting read subscribes to the peer's notifications first,
 * then reads (so nothing sent in between is missed), then waits for a wake-up or the deadline
 * and reads again. It costs O(1) store commands however long it waits; it never sleeps and retries.
 *
 * Its first read takes the call's charge. A waiting poll's charge is if-mail (CallCharge.ifMail):
 * taken when the first read finds mail (it was a plain read), or when a newer read of its kind
 * supersedes it; never for the waiting itself.
 *
 * A peer holds at most one waiting read of each kind (a poll, a take of each type: four at
 * most): each one's first read publishes its waiter mark (in the store's step, once the token
 * is verified), and a waiting read that hears another mark of its kind after its own ends at
 * once with nothing. Marks reach every subscriber in publish order, so of any number of racing
 * reads exactly the last to read stays. (Kinds apart, so the older systems' clients, which wait
 * for offers and candidates side by side, keep working.)
 */
async function receive(
  ctx: Context,
  call: Call,
  kind: "poll" | MessageType,
  read: (call: Call, waiter?: string) => Promise<Answer<StoredMessage[] | Denied>>,
  { waitMs, signal }: ReadOptions,
  wokenBy?: (wake: Extract<Wake, { kind: "message" }>) => StoredMessage | null,
): Promise<Answer<Message[]>> {
  const readOrDeny = async (step: Call, waiter?: string) => {
    const found = expect(await read(step, waiter), deny);
    return answered(found, found.value.map(toMessage));
  };
  if (waitMs <= 0) return readOrDeny(call);

  const deadline = ctx.now() + waitMs;
  const mark = `${kind}.${nanoid(12)}`;
  const later = uncharged(call);
  const listener = await ctx.store.listen(call.roomId, call.peerId);
  try {
    const first = await readOrDeny(call, mark);
    if (first.value.length > 0) return first;
    let markSeen = false;
    for (;;) {
      const wake = await listener.next(deadline - ctx.now(), signal);
      if (wake.kind === "timeout") return { value: [] };
      if (wake.kind === "closed") return { value: [{ id: CLOSED_MESSAGE_ID, ...JSON.parse(wake.body) } as Message] };
      if (wake.kind === "lost") throw new StoreUnavailable("subscription lost");
      if (wake.kind === "waiter") {
        if (wake.mark === mark) markSeen = true;
        else if (markSeen && wake.mark.startsWith(`${kind}.`)) {
          // A newer read of this kind took over: this one did work, and is charged for it (if
          // its first read, finding nothing, did not take its charge).
          const charge = call.charge?.ifMail ? { max: call.charge.max, windowMs: call.charge.windowMs } : undefined;
          const charged = charge ? await ctx.store.chargeCall({ ...later, charge }, ctx.now()) : undefined;
          return { value: [], ...(charged?.window ? { window: charged.window } : {}) };
        }
        continue;
      }
      const delivered = wake.kind === "message" ? wokenBy?.(wake) : null;
      if (delivered) return { value: [toMessage(delivered)] };
      const found = await readOrDeny(later);
      if (found.value.length > 0) return found;
    }
  } finally {
    listener.close();
  }
}

/**
 * Everything addressed to the caller after `after`, which it thereby acknowledges. A waiting
 * poll woken by a new message answers with that message as published (it stays in the inbox
 * until acknowledged, like any other), saving a read.
 */
export async function poll(ctx: Context, call: Call, after: string | null, options: ReadOptions) {
  const read = (step: Call, waiter?: string) => ctx.store.read(step, after, ctx.now(), waiter);
  const messages = await receive(ctx, call, "poll", read, options, (wake) => wake.message ?? null);
  return answered(messages, { messages: messages.value, cursor: messages.value.at(-1)?.id ?? after });
}

/** Single-use read of one type: each message goes to exactly one request. */
export async function take(ctx: Context, call: Call, type: MessageType, options: ReadOptions) {
  const messages = await receive(ctx, call, type, (step, waiter) => ctx.store.take(step, type, ctx.now(), waiter), options);
  return answered(messages, { messages: messages.value });
}

/**
 * Room chat: to every other peer, whatever the topology, and into the room's history, with the
 * sender's name — one step of the store, which charges the limits per sender and per room once
 * the token is verified (a forged token spends no room's budget). The tighter window rides
 * along for the rate-limit headers.
 */
export async function chat(ctx: Context, call: Call, text: string): Promise<Answer<{ from: string; name: string | null; text: string; at: number }>> {
  const r = ctx.config.rateLimits;
  const limits = r.enabled ? { perSender: r.chatPerMinute, perRoom: r.roomChatPerMinute, windowMs: 60_000 } : null;
  const now = ctx.now();
  const sent = expect(await ctx.store.chat(call, { ...outgoing("chat", call.peerId, now, { text }), at: now }, CHAT_HISTORY, now, limits), deny);
  if (!sent.value.sent) throw problems.rateLimited(retryAfter(sent.value.window.reset, now), rateLimitHeaders(sent.value.window, now));
  // `at` as the store has it: a repeat's is the first request's.
  const { name, window, at } = sent.value;
  return { value: { from: call.peerId, name, text, at }, ...(window ? { window } : {}), ...(sent.replayed ? { replayed: true } : {}) };
}

export async function chatHistory(ctx: Context, call: Call) {
  const bodies = expect(await ctx.store.chatHistory(call, ctx.now()), deny);
  return answered(bodies, { messages: bodies.value.map((b) => JSON.parse(b) as Record<string, unknown>) });
}

/**
 * Host: lets a peer waiting in the lobby in, or not. Admitted, its mail gets `admitted` with the
 * room, its peers and ICE servers (what a join answers), and it is announced as a joiner is.
 */
export async function admit(ctx: Context, call: Call, peerId: string, allow: boolean): Promise<Answer<void>> {
  const now = ctx.now();
  const done = await ctx.store.admit(call, peerId, allow, {
    admitted: outgoing("admitted", call.peerId, now, { iceServers: iceServersFor(ctx.config, peerId, now) }),
    denied: outgoing("denied", call.peerId, now),
    announce: outgoing("peer-joined", peerId, now),
  }, now);
  if (done.value === "room-full") {
    const room = await ctx.store.describeRoom(call.roomId, now);
    throw problems.roomFull(room?.room.maxPeers ?? 0);
  }
  if (done.value === "peer-missing") throw problems.peerNotWaiting(peerId);
  if (done.value !== "ok") deny(done.value, { forbidden: "Only the host may let peers in" });
  return answered(done, undefined);
}

/** Host: lock or unlock the room to new joins. */
export async function setLocked(ctx: Context, call: Call, locked: boolean) {
  const done = await ctx.store.setLocked(call, locked, ctx.now());
  if (done.value !== "ok") deny(done.value, { forbidden: "Only the host may lock or unlock the room" });
  return answered(done, undefined);
}

/** Host of a key room: a new join key; the old one stops working at once (a removed peer's link with it). */
export async function rotateJoinKey(ctx: Context, call: Call) {
  const joinKey = newJoinKey();
  const done = await ctx.store.rotateJoinKey(call, hashToken(joinKey), ctx.now());
  if (done.value === "open-room") throw problems.openRoom();
  if (done.value !== "ok") deny(done.value, { forbidden: "Only the host may replace the join key" });
  return answered(done, { joinKey });
}

export async function describeRoom(ctx: Context, roomId: string) {
  const view = await ctx.store.describeRoom(roomId, ctx.now());
  if (!view) throw problems.roomNotFound(roomId);
  const { room } = view;
  return {
    room: {
      roomId: room.roomId,
      topology: room.topology,
      peers: view.peers.length,
      maxPeers: room.maxPeers,
      hostPresent: view.peers.some((p) => p.role === "host"),
      expiresAt: room.expiresAt,
      // Whether a viewer page must ask for a key, will wait for the host, or will be refused: nothing more.
      access: room.access,
      lobby: room.lobby,
      locked: room.locked,
    },
  };
}

/** Fresh ICE servers (TURN credentials renewed), for a peer whose session outlives them. */
export async function iceServers(ctx: Context, call: Call) {
  const peers = await listPeers(ctx, call);
  return answered(peers, { iceServers: iceServersFor(ctx.config, call.peerId, ctx.now()) });
}
