/**
 * The signaling protocol: rooms, peers, messages and how they are read. Handlers in api/
 * call one function here each; the store (lib/store) makes each step atomic.
 */
import { nanoid } from "nanoid";
import type { Context } from "./context.js";
import { iceServersFor } from "./ice.js";
import { hashToken, newJoinKey, newPeerId, newRoomId, newTicket, newToken, ticketPeerId, tokenPeerId } from "./ids.js";
import { problems } from "./problem.js";
import { rateLimitHeaders, retryAfter } from "./ratelimit.js";
import { LIMITS, type CandidateInput, type CreateRoomInput, type Description, type JoinInput } from "./schemas.js";
import { CLOSED_MESSAGE_ID, LOBBY_MAX, LOBBY_WAIT_MS, StoreUnavailable, type Caller, type Denied, type Outgoing, type PeerInfo, type RoomView, type StoredMessage, type Wake } from "./store/types.js";

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

/** How long a stream ticket lasts: long enough to open the stream it was asked for, and no more. */
export const TICKET_TTL_MS = 60_000;

/** A single-use ticket to open the caller's event stream without the token (EventSource sends no headers). */
export async function issueTicket(ctx: Context, caller: Caller) {
  const now = ctx.now();
  const ticket = newTicket(caller.peerId);
  const issued = await ctx.store.issueTicket(caller, hashToken(ticket), TICKET_TTL_MS, now);
  if (issued !== "ok") deny(issued);
  const url = `/api/events?roomId=${caller.roomId}&ticket=${ticket}`;
  return { ticket, expiresAt: now + TICKET_TTL_MS, url };
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

export async function createRoom(ctx: Context, input: CreateRoomInput) {
  const now = ctx.now();
  const ttlMs = Math.min((input.ttlSeconds ?? ctx.config.roomTtlMs / 1000) * 1000, ctx.config.roomMaxLifetimeMs);
  const maxPeers = Math.min(input.maxPeers ?? LIMITS.maxPeers[input.topology], LIMITS.maxPeersCeiling[input.topology]);
  // A clash of two random 10-character IDs is vanishingly rare; draw again if it happens.
  const joinKey = input.access === "key" ? newJoinKey() : undefined;
  const lobby = input.access === "lobby" || input.lobby === true;
  const access = input.access === "open" && lobby ? "lobby" : input.access;
  for (let attempt = 0; attempt < 3; attempt++) {
    const roomId = newRoomId();
    const host: PeerInfo = { peerId: newPeerId(), role: "host", joinedAt: now, ...(input.name ? { name: input.name } : {}) };
    const token = newToken(host.peerId);
    const room = { roomId, topology: input.topology, maxPeers, hostId: host.peerId, createdAt: now, access, lobby };
    const hostTokenHash = hashToken(token);
    const joinKeyHash = joinKey ? hashToken(joinKey) : undefined;
    const created = await ctx.store.createRoom({ room, ttlMs, capAt: now + ctx.config.roomMaxLifetimeMs, host, hostTokenHash, ...(joinKeyHash ? { joinKeyHash } : {}) }, now);
    if (created === "ok") {
      ctx.verified.add(hostTokenHash);
      const expiresAt = Math.min(now + ttlMs, now + ctx.config.roomMaxLifetimeMs);
      return {
        roomId, peerId: host.peerId, token, expiresAt,
        ...(joinKey ? { joinKey } : {}),
        room: { ...room, expiresAt, locked: false },
        iceServers: iceServersFor(ctx.config, host.peerId, now),
      };
    }
  }
  throw problems.internal();
}

/**
 * Joins, or in a lobby room knocks: then the answer is `{status: "waiting", …}` and the host's
 * mail gets `knock`; the joiner reads its own mail for `admitted` or `denied` (POST /api/admit).
 */
export async function joinRoom(ctx: Context, input: JoinInput) {
  const now = ctx.now();
  const peer: PeerInfo = { peerId: newPeerId(), role: "viewer", joinedAt: now, ...(input.name ? { name: input.name } : {}) };
  const token = newToken(peer.peerId);
  const tokenHash = hashToken(token);
  const until = now + LOBBY_WAIT_MS;
  const knock = outgoing("knock", peer.peerId, now, { peer: { peerId: peer.peerId, name: peer.name ?? null }, expiresAt: until });
  const gate = { ...(input.joinKey ? { joinKeyHash: hashToken(input.joinKey) } : {}), lobby: { knock, until } };
  const joined = await ctx.store.joinRoom(input.roomId, peer, tokenHash, outgoing("peer-joined", peer.peerId, now, { peer }), now, gate);
  switch (joined) {
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
  if ("waiting" in joined) return { status: "waiting" as const, roomId: input.roomId, peerId: peer.peerId, token, expiresAt: joined.expiresAt };
  return {
    roomId: input.roomId,
    peerId: peer.peerId,
    token,
    expiresAt: joined.room.expiresAt,
    ...publicRoom(joined),
    iceServers: iceServersFor(ctx.config, peer.peerId, now),
  };
}

export async function listPeers(ctx: Context, caller: Caller) {
  const view = await ctx.store.listPeers(caller, ctx.now());
  if (typeof view === "string") deny(view);
  return publicRoom(view);
}

/**
 * Leave (peerId is the caller) or remove (the caller is the host). The host leaving closes the
 * room: then the AI session records it held are returned, for their calls to be hung up.
 */
export async function leaveRoom(ctx: Context, caller: Caller, peerId: string): Promise<{ sessions: string[] }> {
  const now = ctx.now();
  const reason = peerId === caller.peerId ? "left" : "removed";
  const left = await ctx.store.leaveRoom(
    caller,
    peerId,
    outgoing("peer-left", peerId, now, { peerId, reason }),
    outgoing("room-closed", caller.peerId, now),
    now,
  );
  if (left === "ok") return { sessions: [] };
  if (typeof left === "object") return left;
  deny(left, { forbidden: "Only the host may remove another peer", to: peerId });
}

/** Closes the room; returns the AI session records it held, for their calls to be hung up. */
export async function closeRoom(ctx: Context, caller: Caller): Promise<{ sessions: string[] }> {
  const now = ctx.now();
  const closed = await ctx.store.closeRoom(caller, outgoing("room-closed", caller.peerId, now), now);
  if (typeof closed === "object") return closed;
  deny(closed, { forbidden: "Only the host may close the room" });
}

async function send(ctx: Context, caller: Caller, to: string, type: MessageType, fields: Record<string, unknown>) {
  const now = ctx.now();
  const sent = await ctx.store.send(caller, to, outgoing(type, caller.peerId, now, fields), now);
  if (typeof sent === "string") {
    deny(sent, { forbidden: "In a star room a viewer may address only the host", to });
  }
  return { id: sent.id };
}

export const sendDescription = (ctx: Context, caller: Caller, to: string, description: Description) =>
  send(ctx, caller, to, description.type, { description });

export const sendCandidates = (ctx: Context, caller: Caller, input: CandidateInput) =>
  send(ctx, caller, input.to, "candidate", { candidates: input.candidates });

/** What a read may do besides reading. */
export interface ReadOptions {
  waitMs: number;
  signal?: AbortSignal;
  /**
   * Charges the caller: a waiting read is charged when it answers at once (it was a plain
   * read: its first read's own step takes the charge, see CallCharge.ifMail) or is superseded
   * (this), never for the waiting itself. Reads without a wait are charged like any request.
   */
  charge?: () => Promise<void>;
}

/**
 * Reads with an optional wait. A waiting read subscribes to the peer's notifications first,
 * then reads (so nothing sent in between is missed), then waits for a wake-up or the deadline
 * and reads again. It costs O(1) store commands however long it waits; it never sleeps and retries.
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
  caller: Caller,
  kind: "poll" | MessageType,
  read: (waiter?: string) => Promise<StoredMessage[] | Denied>,
  { waitMs, signal, charge }: ReadOptions,
  wokenBy?: (wake: Extract<Wake, { kind: "message" }>) => StoredMessage | null,
) {
  const readOrDeny = async (waiter?: string) => {
    const found = await read(waiter);
    if (typeof found === "string") deny(found);
    return found.map(toMessage);
  };
  if (waitMs <= 0) return readOrDeny();

  const deadline = ctx.now() + waitMs;
  const mark = `${kind}.${nanoid(12)}`;
  const listener = await ctx.store.listen(caller.roomId, caller.peerId);
  try {
    const first = await readOrDeny(mark);
    if (first.length > 0) return first;
    let markSeen = false;
    for (;;) {
      const wake = await listener.next(deadline - ctx.now(), signal);
      if (wake.kind === "timeout") return [];
      if (wake.kind === "closed") return [{ id: CLOSED_MESSAGE_ID, ...JSON.parse(wake.body) } as Message];
      if (wake.kind === "lost") throw new StoreUnavailable("subscription lost");
      if (wake.kind === "waiter") {
        if (wake.mark === mark) markSeen = true;
        else if (markSeen && wake.mark.startsWith(`${kind}.`)) return (await charge?.(), []); // a newer read of this kind took over
        continue;
      }
      const delivered = wake.kind === "message" ? wokenBy?.(wake) : null;
      if (delivered) return [toMessage(delivered)];
      const found = await readOrDeny();
      if (found.length > 0) return found;
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
export async function poll(ctx: Context, caller: Caller, after: string | null, options: ReadOptions) {
  const read = (waiter?: string) => ctx.store.read(caller, after, ctx.now(), waiter);
  const messages = await receive(ctx, caller, "poll", read, options, (wake) => wake.message ?? null);
  return { messages, cursor: messages.at(-1)?.id ?? after };
}

/** Single-use read of one type: each message goes to exactly one request. */
export async function take(ctx: Context, caller: Caller, type: MessageType, options: ReadOptions) {
  const messages = await receive(ctx, caller, type, (waiter) => ctx.store.take(caller, type, ctx.now(), waiter), options);
  return { messages };
}

/**
 * Room chat: to every other peer, whatever the topology, and into the room's history, with the
 * sender's name — one step of the store, which charges the limits per sender and per room once
 * the token is verified (a forged token spends no room's budget). The window left rides along
 * for the rate-limit headers.
 */
export async function chat(ctx: Context, caller: Caller, text: string) {
  const r = ctx.config.rateLimits;
  const limits = r.enabled ? { perSender: r.chatPerMinute, perRoom: r.roomChatPerMinute, windowMs: 60_000 } : null;
  const now = ctx.now();
  const sent = await ctx.store.chat(caller, outgoing("chat", caller.peerId, now, { text }), CHAT_HISTORY, now, limits);
  if (typeof sent === "string") deny(sent);
  if (!sent.sent) throw problems.rateLimited(retryAfter(sent.window.reset, now), rateLimitHeaders(sent.window, now));
  return { message: { from: caller.peerId, name: sent.name, text, at: now }, window: sent.window };
}

export async function chatHistory(ctx: Context, caller: Caller) {
  const bodies = await ctx.store.chatHistory(caller);
  if (typeof bodies === "string") deny(bodies);
  return { messages: bodies.map((b) => JSON.parse(b) as Record<string, unknown>) };
}

/**
 * Host: lets a peer waiting in the lobby in, or not. Admitted, its mail gets `admitted` with the
 * room, its peers and ICE servers (what a join answers), and it is announced as a joiner is.
 */
export async function admit(ctx: Context, caller: Caller, peerId: string, allow: boolean) {
  const now = ctx.now();
  const done = await ctx.store.admit(caller, peerId, allow, {
    admitted: outgoing("admitted", caller.peerId, now, { iceServers: iceServersFor(ctx.config, peerId, now) }),
    denied: outgoing("denied", caller.peerId, now),
    announce: outgoing("peer-joined", peerId, now),
  }, now);
  if (done === "room-full") {
    const room = await ctx.store.describeRoom(caller.roomId, now);
    throw problems.roomFull(room?.room.maxPeers ?? 0);
  }
  if (done === "peer-missing") throw problems.peerNotWaiting(peerId);
  if (done !== "ok") deny(done, { forbidden: "Only the host may let peers in" });
}

/** Host: lock or unlock the room to new joins. */
export async function setLocked(ctx: Context, caller: Caller, locked: boolean) {
  const done = await ctx.store.setLocked(caller, locked, ctx.now());
  if (done !== "ok") deny(done, { forbidden: "Only the host may lock or unlock the room" });
}

/** Host of a key room: a new join key; the old one stops working at once (a removed peer's link with it). */
export async function rotateJoinKey(ctx: Context, caller: Caller) {
  const joinKey = newJoinKey();
  const done = await ctx.store.rotateJoinKey(caller, hashToken(joinKey), ctx.now());
  if (done === "open-room") throw problems.openRoom();
  if (done !== "ok") deny(done, { forbidden: "Only the host may replace the join key" });
  return { joinKey };
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
export async function iceServers(ctx: Context, caller: Caller) {
  await listPeers(ctx, caller);
  return { iceServers: iceServersFor(ctx.config, caller.peerId, ctx.now()) };
}
