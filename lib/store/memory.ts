/**
 * The embedded store: the default when no Redis is configured, so `npm start` needs nothing.
 * Same semantics as the Redis store (tokens, topology rule, TTLs, single-use takes, waiting
 * reads) within one process. Each method runs synchronously to completion, which is what
 * makes it atomic here.
 */
import { EventEmitter } from "node:events";
import { timingSafeEqual } from "node:crypto";
import { MemoryLimiter } from "../ratelimit.js";
import { messagePayload, parseWake, WakeQueue } from "./wake-queue.js";
import {
  CLOSED_MESSAGE_ID,
  CLOSED_NOTICE_MS,
  DENIED_NOTICE_MS,
  ENTRY_OVERHEAD,
  READ_BATCH,
  LOBBY_MAX,
  RateLimited,
  type AdmitMessages,
  type Caller,
  type ChatLimits,
  type ChatSent,
  type JoinGate,
  type JoinRefused,
  type Closed,
  type Denied,
  type Listener,
  type MailBudget,
  type NewRoom,
  type Outgoing,
  type OverBudget,
  type PeerInfo,
  type RoomInfo,
  type RoomView,
  type SendResult,
  type SignalStore,
  type StoredMessage,
  type Waiting,
} from "./types.js";

interface Entry {
  ms: number;
  seq: number;
  type: string;
  body: string;
}

interface Inbox {
  /** By id, oldest first (ids only grow). */
  entries: Map<string, Entry>;
  /** Ids of offers, answers and candidates, oldest first; ids acknowledged since are skipped when met. */
  takeable: Map<string, string[]>;
  lastMs: number;
  lastSeq: number;
}

const TAKEABLE = new Set(["offer", "answer", "candidate"]);
const entrySize = (e: { type: string; body: string }) => Buffer.byteLength(e.type) + Buffer.byteLength(e.body) + ENTRY_OVERHEAD;

interface Member {
  info: PeerInfo;
  tokenHash: string;
  ticket?: { hash: string; expiresAt: number };
}

/** A peer in the lobby: waiting until `until`, or denied (its notice readable until `until`). */
interface Waiter extends Member {
  until: number;
  denied: boolean;
}

interface Room {
  info: Omit<RoomInfo, "expiresAt" | "locked">;
  joinKeyHash?: string;
  locked: boolean;
  exp: number;
  ttlMs: number;
  capAt: number;
  peers: Map<string, Member>;
  lobby: Map<string, Waiter>;
  inboxes: Map<string, Inbox>;
  sessions: Map<string, { record: string; expiresAt?: number }>;
  chat: string[];
  /** Chat's rate windows (Upstash's sliding window, as the Redis store keeps them in the room), per sender and for the room. */
  chatLimits?: { perSender: MemoryLimiter; perRoom: MemoryLimiter };
  /** Each peer's calls (Caller.charge). */
  calls?: MemoryLimiter;
  budget: MailBudget;
  /** Bytes of unread mail in all inboxes. */
  bytes: number;
}

const entryId = (e: Entry) => `${e.ms}-${e.seq}`;

function parseId(id: string): [number, number] {
  const [ms, seq] = id.split("-").map(Number);
  return [ms, seq];
}

const atOrBefore = (e: Entry, [ms, seq]: [number, number]) => e.ms < ms || (e.ms === ms && e.seq <= seq);

const withFields = (m: Outgoing, fields: Record<string, unknown>): Outgoing => ({ type: m.type, body: JSON.stringify({ ...JSON.parse(m.body), ...fields }) });

function hashesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class MemoryStore implements SignalStore {
  readonly kind = "memory" as const;
  private readonly rooms = new Map<string, Room>();
  private readonly events = new EventEmitter().setMaxListeners(0);
  private readonly sweeper: NodeJS.Timeout;
  /** "<roomId>/<sessionId>" → the AI call's deadline. */
  private readonly sessionEnds = new Map<string, number>();
  /** Rooms closed within CLOSED_NOTICE_MS: the room-closed message, and who may read it. */
  private readonly closedRooms = new Map<string, { body: string; tokens: Map<string, string>; until: number }>();

  constructor(private readonly budget: MailBudget) {
    this.sweeper = setInterval(() => this.sweep(Date.now()), 60_000).unref();
  }

  async createRoom(r: NewRoom, now: number): Promise<"ok" | "exists"> {
    if (this.live(r.room.roomId, now)) return "exists";
    this.closedRooms.delete(r.room.roomId);
    this.rooms.set(r.room.roomId, {
      info: r.room,
      ...(r.joinKeyHash ? { joinKeyHash: r.joinKeyHash } : {}),
      locked: false,
      exp: Math.min(now + r.ttlMs, r.capAt),
      ttlMs: r.ttlMs,
      capAt: r.capAt,
      peers: new Map([[r.host.peerId, { info: r.host, tokenHash: r.hostTokenHash }]]),
      lobby: new Map(),
      inboxes: new Map(),
      sessions: new Map(),
      chat: [],
      budget: this.budget,
      bytes: 0,
    });
    return "ok";
  }

  async describeRoom(roomId: string, now: number): Promise<RoomView | null> {
    const room = this.live(roomId, now);
    return room ? this.view(room) : null;
  }

  async listPeers(caller: Caller, now: number): Promise<RoomView | Denied> {
    const room = this.authorize(caller, now);
    return typeof room === "string" ? room : this.view(room);
  }

  async joinRoom(roomId: string, peer: PeerInfo, tokenHash: string, announce: Outgoing, now: number, gate: JoinGate = {}): Promise<RoomView | Waiting | "room-missing" | JoinRefused> {
    const room = this.live(roomId, now);
    if (!room) return "room-missing";
    const { joinKeyHash, byHost } = gate;
    if (!byHost && room.locked) return "room-locked";
    if (!byHost && room.joinKeyHash && !joinKeyHash) return "join-key-required";
    if (!byHost && room.joinKeyHash && !hashesEqual(room.joinKeyHash, joinKeyHash!)) return "join-key-invalid";
    if (room.peers.size >= room.info.maxPeers) return "room-full";
    this.refresh(room, now);
    if (room.info.lobby && !byHost) {
      this.prune(room, now);
      if (room.lobby.size >= LOBBY_MAX || !gate.lobby) return "lobby-full";
      // The host must hear the knock, or nobody would answer it.
      const knocked = this.deliver(room, room.info.hostId, gate.lobby.knock, now, 1);
      if (knocked === "inbox-full" || knocked === "room-busy") return "room-busy";
      room.lobby.set(peer.peerId, { info: peer, tokenHash, until: gate.lobby.until, denied: false });
      return { waiting: true, expiresAt: gate.lobby.until };
    }
    room.peers.set(peer.peerId, { info: peer, tokenHash });
    for (const to of this.audience(room, peer.peerId)) this.deliver(room, to, announce, now, 1);
    return this.joinView(room, peer.peerId);
  }

  async admit(caller: Caller, peerId: string, allow: boolean, messages: AdmitMessages, now: number) {
    const room = this.authorize(caller, now);
    if (typeof room === "string") return room;
    if (caller.peerId !== room.info.hostId) return "forbidden" as const;
    this.prune(room, now);
    const waiter = room.lobby.get(peerId);
    // The same answer twice does nothing more (a retried request); any other is to no one waiting.
    if (!waiter) return allow && room.peers.has(peerId) ? ("ok" as const) : ("peer-missing" as const);
    if (waiter.denied) return allow ? ("peer-missing" as const) : ("ok" as const);
    if (!allow) {
      waiter.denied = true;
      waiter.until = now + DENIED_NOTICE_MS;
      this.deliver(room, peerId, messages.denied, now, 1);
      return "ok" as const;
    }
    if (room.peers.size >= room.info.maxPeers) return "room-full" as const;
    room.lobby.delete(peerId);
    room.peers.set(peerId, { info: waiter.info, tokenHash: waiter.tokenHash, ...(waiter.ticket ? { ticket: waiter.ticket } : {}) });
    this.refresh(room, now);
    const announce = withFields(messages.announce, { peer: waiter.info });
    for (const to of this.audience(room, peerId)) this.deliver(room, to, announce, now, 1);
    const view = this.joinView(room, peerId);
    this.deliver(room, peerId, withFields(messages.admitted, { room: view.room, peers: view.peers }), now, 1);
    return "ok" as const;
  }

  async setLocked(caller: Caller, locked: boolean, now: number): Promise<"ok" | Denied | "forbidden"> {
    const room = this.authorize(caller, now);
    if (typeof room === "string") return room;
    if (caller.peerId !== room.info.hostId) return "forbidden";
    room.locked = locked;
    return "ok";
  }

  async rotateJoinKey(caller: Caller, joinKeyHash: string, now: number): Promise<"ok" | Denied | "forbidden" | "open-room"> {
    const room = this.authorize(caller, now);
    if (typeof room === "string") return room;
    if (caller.peerId !== room.info.hostId) return "forbidden";
    if (!room.joinKeyHash) return "open-room";
    room.joinKeyHash = joinKeyHash;
    return "ok";
  }

  async leaveRoom(caller: Caller, peerId: string, announce: Outgoing, closed: Outgoing, now: number) {
    const room = this.authorize(caller, now, peerId === caller.peerId);
    if (typeof room === "string") return room;
    if (peerId !== caller.peerId && caller.peerId !== room.info.hostId) return "forbidden" as const;
    const waiter = room.lobby.get(peerId);
    if (waiter) {
      // From the lobby: the host's knock goes with it (a denied peer's is answered already).
      this.drop(room, peerId);
      if (!waiter.denied) this.deliver(room, room.info.hostId, announce, now, 1);
      return "ok" as const;
    }
    if (!room.peers.has(peerId)) return "peer-missing" as const;
    if (peerId === room.info.hostId) return this.discard(room, closed, now);
    this.drop(room, peerId);
    this.refresh(room, now);
    for (const to of this.audience(room, peerId)) this.deliver(room, to, announce, now, 1);
    return "ok" as const;
  }

  async closeRoom(caller: Caller, closed: Outgoing, now: number) {
    const room = this.authorize(caller, now);
    if (typeof room === "string") return room;
    if (caller.peerId !== room.info.hostId) return "forbidden" as const;
    return this.discard(room, closed, now);
  }

  async send(caller: Caller, to: string, message: Outgoing, now: number): Promise<SendResult> {
    const room = this.authorize(caller, now);
    if (typeof room === "string") return room;
    if (!room.peers.has(to) || to === caller.peerId) return "peer-missing";
    if (room.info.topology === "star" && caller.peerId !== room.info.hostId && to !== room.info.hostId) return "forbidden";
    this.refresh(room, now);
    const id = this.deliver(room, to, message, now, 1);
    return id === "inbox-full" || id === "room-busy" ? (id as OverBudget) : { id };
  }

  async read(caller: Caller, after: string | null, now: number, waiter?: string, from?: string): Promise<StoredMessage[] | Denied> {
    const room = this.authorize(caller, now, true);
    if (room === "room-missing") {
      const notice = this.closedRooms.get(caller.roomId);
      const known = notice && notice.until > now && hashesEqual(notice.tokens.get(caller.peerId) ?? "", caller.tokenHash);
      return known ? [{ id: CLOSED_MESSAGE_ID, body: notice.body }] : room;
    }
    if (typeof room === "string") return room;
    if (waiter) this.notify(room.info.roomId, caller.peerId, `w:${waiter}`);
    this.refresh(room, now);
    const inbox = room.inboxes.get(caller.peerId);
    if (!inbox) return this.chargeIfMail(room, caller, []);
    if (after) {
      const upTo = parseId(after);
      const acknowledged: Entry[] = [];
      for (const [id, e] of inbox.entries) {
        if (!atOrBefore(e, upTo)) break;
        inbox.entries.delete(id);
        acknowledged.push(e);
      }
      this.forget(room, acknowledged);
    }
    const unread: StoredMessage[] = [];
    const skip = from ? parseId(from) : null;
    for (const [id, e] of inbox.entries) {
      if (unread.length >= READ_BATCH) break;
      if (skip && atOrBefore(e, skip)) continue;
      unread.push({ id, body: e.body });
    }
    return this.chargeIfMail(room, caller, unread);
  }

  async take(caller: Caller, type: string, now: number, waiter?: string): Promise<StoredMessage[] | Denied> {
    const room = this.authorize(caller, now, true);
    if (typeof room === "string") return room;
    if (waiter) this.notify(room.info.roomId, caller.peerId, `w:${waiter}`);
    this.refresh(room, now);
    const inbox = room.inboxes.get(caller.peerId);
    const ids = inbox?.takeable.get(type);
    if (!inbox || !ids) return [];
    const taken: Entry[] = [];
    let used = 0;
    while (taken.length < READ_BATCH && used < ids.length) {
      const id = ids[used++];
      const entry = inbox.entries.get(id);
      if (!entry) continue; // acknowledged since
      inbox.entries.delete(id);
      taken.push(entry);
    }
    ids.splice(0, used);
    this.forget(room, taken);
    return taken.map((e) => ({ id: entryId(e), body: e.body }));
  }

  async chat(caller: Caller, message: Outgoing, historyMax: number, now: number, limits: ChatLimits | null): Promise<ChatSent | Denied | "room-busy"> {
    const room = this.authorize(caller, now);
    if (typeof room === "string") return room;
    let window: ChatSent["window"];
    if (limits) {
      room.chatLimits ??= { perSender: new MemoryLimiter(limits.perSender, limits.windowMs), perRoom: new MemoryLimiter(limits.perRoom, limits.windowMs) };
      for (const [limiter, key] of [[room.chatLimits.perSender, caller.peerId], [room.chatLimits.perRoom, ""]] as const) {
        const { success, limit, remaining, reset } = limiter.limitSync(key, now);
        if (!success) return { sent: false, window: { limit, remaining, reset } };
        if (!window || remaining < window.remaining) window = { limit, remaining, reset };
      }
    }
    const name = room.peers.get(caller.peerId)?.info.name ?? null;
    message = withFields(message, { name });
    this.refresh(room, now);
    // Chat has half the budget (see lib/store/lua.ts).
    const { inboxMax, roomMailMaxBytes } = room.budget;
    const to = [...room.peers.keys()].filter((id) => id !== caller.peerId && (room.inboxes.get(id)?.entries.size ?? 0) < inboxMax / 2);
    if (room.bytes + to.length * entrySize(message) > roomMailMaxBytes / 2) return "room-busy" as const;
    for (const id of to) this.deliver(room, id, message, now, 2);
    room.chat.push(message.body);
    room.chat.splice(0, Math.max(0, room.chat.length - historyMax));
    return { sent: true, name, window };
  }

  async chargeCall(caller: Caller, now: number) {
    const room = this.authorize(caller, now, true);
    return typeof room === "string" ? room : ("ok" as const);
  }

  async chatHistory(caller: Caller) {
    const room = this.authorize(caller, Date.now());
    return typeof room === "string" ? room : [...room.chat];
  }

  async putSession(caller: Caller, sessionId: string, record: string, max: number, now: number, expiresAt?: number) {
    const room = this.authorize(caller, Date.now());
    if (typeof room === "string") return room;
    if (caller.peerId !== room.info.hostId) return "forbidden" as const;
    for (const [id, s] of room.sessions) if (s.expiresAt !== undefined && s.expiresAt <= now) room.sessions.delete(id);
    if (!room.sessions.has(sessionId) && room.sessions.size >= max) return "limit" as const;
    room.sessions.set(sessionId, { record, expiresAt });
    return "ok" as const;
  }

  async removeSession(caller: Caller, sessionId: string) {
    const room = this.authorize(caller, Date.now());
    if (typeof room === "string") return room;
    if (caller.peerId !== room.info.hostId) return "forbidden" as const;
    const record = room.sessions.get(sessionId)?.record ?? null;
    room.sessions.delete(sessionId);
    return { record };
  }

  async scheduleSessionEnd(roomId: string, sessionId: string, at: number) {
    this.sessionEnds.set(`${roomId}/${sessionId}`, at);
  }

  async dueSessions(now: number, max: number) {
    return [...this.sessionEnds]
      .filter(([, at]) => at <= now)
      .sort((a, b) => a[1] - b[1])
      .slice(0, max)
      .map(([m]) => ({ roomId: m.slice(0, m.indexOf("/")), sessionId: m.slice(m.indexOf("/") + 1) }));
  }

  async endSession(roomId: string, sessionId: string) {
    this.sessionEnds.delete(`${roomId}/${sessionId}`);
    const room = this.live(roomId, Date.now());
    const record = room?.sessions.get(sessionId)?.record ?? null;
    room?.sessions.delete(sessionId);
    return record;
  }

  async issueTicket(caller: Caller, ticketHash: string, ttlMs: number, now: number): Promise<"ok" | Denied> {
    const room = this.authorize(caller, now, true);
    if (typeof room === "string") return room;
    (room.peers.get(caller.peerId) ?? room.lobby.get(caller.peerId))!.ticket = { hash: ticketHash, expiresAt: now + ttlMs };
    return "ok";
  }

  async redeemTicket(roomId: string, peerId: string, ticketHash: string, now: number): Promise<Caller | null> {
    const room = this.live(roomId, now);
    const peer = room?.peers.get(peerId) ?? room?.lobby.get(peerId);
    if (!peer?.ticket || !hashesEqual(peer.ticket.hash, ticketHash)) return null;
    const { expiresAt } = peer.ticket;
    delete peer.ticket;
    return expiresAt > now ? { roomId, peerId, tokenHash: peer.tokenHash } : null;
  }

  async listen(roomId: string, peerId: string): Promise<Listener> {
    const channel = `${roomId}/${peerId}`;
    const onNotify = (payload: string) => queue.push(parseWake(payload));
    const queue = new WakeQueue(() => this.events.off(channel, onNotify));
    this.events.on(channel, onNotify);
    return queue;
  }

  async ping(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.rooms.clear();
  }

  private live(roomId: string, now: number): Room | null {
    const room = this.rooms.get(roomId);
    if (room && room.exp <= now) this.rooms.delete(roomId);
    return room && room.exp > now ? room : null;
  }

  /**
   * The caller's room if its token is right, or why not; `ownMail`: a peer in the lobby may act
   * too (read its own mail, leave) until its wait ends. A verified caller's charge is taken here
   * (see Caller.charge).
   */
  private authorize(caller: Caller, now: number, ownMail = false): Room | Denied {
    const room = this.live(caller.roomId, now);
    if (!room) return "room-missing";
    const peer = room.peers.get(caller.peerId);
    const waiter = room.lobby.get(caller.peerId);
    const member = peer ?? waiter;
    if (!member || !hashesEqual(member.tokenHash, caller.tokenHash)) return "unauthorized";
    // Verified: charge the call, whether or not what it asks is allowed.
    if (!caller.charge?.ifMail) this.charge(room, caller);
    if (peer) return room;
    if (!ownMail) return "not-admitted";
    return waiter!.until > now ? room : "unauthorized";
  }

  /** A read's conditional charge (CallCharge.ifMail): taken if it found mail, else dropped. */
  private chargeIfMail(room: Room, caller: Caller, found: StoredMessage[]) {
    if (!caller.charge?.ifMail) return found;
    if (found.length > 0) this.charge(room, caller);
    else caller.charge = undefined;
    return found;
  }

  private charge(room: Room, caller: Caller) {
    const charge = caller.charge;
    if (!charge || charge.window) return;
    room.calls ??= new MemoryLimiter(charge.max, charge.windowMs);
    const { success, limit, remaining, reset } = room.calls.limitSync(caller.peerId, Date.now());
    charge.window = { limit, remaining, reset };
    if (!success) throw new RateLimited(charge.window);
  }

  /** What a joiner gets: the room, and the peers it deals with (in a star room the host and itself, in a mesh everyone). */
  private joinView(room: Room, peerId: string): RoomView {
    const view = this.view(room);
    if (room.info.topology === "mesh") return view;
    return { ...view, peers: view.peers.filter((p) => p.peerId === room.info.hostId || p.peerId === peerId) };
  }

  /** A peer (in the room or in the lobby) leaves no trace; its reads end. */
  private drop(room: Room, peerId: string) {
    room.peers.delete(peerId);
    room.lobby.delete(peerId);
    this.forget(room, [...(room.inboxes.get(peerId)?.entries.values() ?? [])]);
    room.inboxes.delete(peerId);
    this.notify(room.info.roomId, peerId, "gone");
  }

  /** Lobby peers whose wait (or denial notice) is over go. */
  private prune(room: Room, now: number) {
    for (const [peerId, waiter] of room.lobby) if (waiter.until <= now) this.drop(room, peerId);
  }

  /** Who hears of a peer joining or leaving: in a star room only the host, in a mesh everyone. */
  private audience(room: Room, about: string): string[] {
    const others = [...room.peers.keys()].filter((id) => id !== about);
    return room.info.topology === "star" ? others.filter((id) => id === room.info.hostId) : others;
  }

  private refresh(room: Room, now: number) {
    if (room.exp - now >= room.ttlMs / 2) return;
    room.exp = Math.max(room.exp, Math.min(now + room.ttlMs, room.capAt));
  }

  /** Appends within the budget (share 1: all of it; 2: half, for chat): the id, or why not. */
  private deliver(room: Room, to: string, message: Outgoing, now: number, share: 1 | 2): string {
    let inbox = room.inboxes.get(to);
    if (!inbox) {
      inbox = { entries: new Map(), takeable: new Map(), lastMs: 0, lastSeq: -1 };
      room.inboxes.set(to, inbox);
    }
    const bytes = entrySize(message);
    if (inbox.entries.size >= room.budget.inboxMax / share) return "inbox-full";
    if (room.bytes + bytes > room.budget.roomMailMaxBytes / share) return "room-busy";
    const ms = Math.max(now, inbox.lastMs);
    const seq = ms === inbox.lastMs ? inbox.lastSeq + 1 : 0;
    inbox.lastMs = ms;
    inbox.lastSeq = seq;
    const entry = { ms, seq, type: message.type, body: message.body };
    const id = entryId(entry);
    inbox.entries.set(id, entry);
    room.bytes += bytes;
    if (TAKEABLE.has(message.type)) {
      const ids = inbox.takeable.get(message.type) ?? [];
      ids.push(id);
      // Live ids are always the newest of their type, and an inbox holds at most inboxMax.
      if (ids.length > room.budget.inboxMax) ids.splice(0, ids.length - room.budget.inboxMax);
      inbox.takeable.set(message.type, ids);
    }
    this.notify(room.info.roomId, to, messagePayload(id, message.type, message.body));
    return id;
  }

  private forget(room: Room, entries: Entry[]) {
    for (const e of entries) room.bytes -= entrySize(e);
  }

  private discard(room: Room, closed: Outgoing, now: number): Closed {
    this.rooms.delete(room.info.roomId);
    const everyone = [...room.peers, ...room.lobby];
    const tokens = new Map(everyone.map(([peerId, peer]) => [peerId, peer.tokenHash]));
    this.closedRooms.set(room.info.roomId, { body: closed.body, tokens, until: now + CLOSED_NOTICE_MS });
    for (const [peerId] of everyone) this.notify(room.info.roomId, peerId, `closed:${closed.body}`);
    return { sessions: [...room.sessions.values()].map((s) => s.record) };
  }

  private notify(roomId: string, peerId: string, payload: string) {
    this.events.emit(`${roomId}/${peerId}`, payload);
  }

  private view(room: Room): RoomView {
    return {
      room: { ...room.info, expiresAt: room.exp, locked: room.locked },
      peers: [...room.peers.values()].map((p) => p.info),
    };
  }

  private sweep(now: number) {
    for (const roomId of this.rooms.keys()) this.live(roomId, now);
    for (const [roomId, notice] of this.closedRooms) if (notice.until <= now) this.closedRooms.delete(roomId);
  }
}
