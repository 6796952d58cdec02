/**
 * The embedded store: the default when no Redis is configured, so `npm start` needs nothing.
 * Same semantics as the Redis store (tokens, topology rule, TTLs, single-use takes, waiting
 * reads, the mail budget, idempotent repeats) within one process. Each method runs
 * synchronously to completion, which is what makes it atomic here. Its methods mirror the
 * scripts of lib/store/lua.ts, in the same order, each naming the script it mirrors.
 */
import { EventEmitter } from "node:events";
import { timingSafeEqual } from "node:crypto";
import { MemoryLimiter } from "../ratelimit.js";
import { messageId } from "./message-id.js";
import { messagePayload, parseWake, WakeQueue } from "./wake-queue.js";
import {
  CLOSED_MESSAGE_ID,
  CLOSED_NOTICE_MS,
  DENIED_NOTICE_MS,
  ENTRY_OVERHEAD,
  IdempotencyMismatch,
  LOBBY_MAX,
  RateLimited,
  READ_BATCH,
  RECIPIENT_OVERHEAD,
  type AdmitMessages,
  type Answer,
  type Call,
  type Caller,
  type ChatLimits,
  type ChatSent,
  type Closed,
  type Denied,
  type JoinGate,
  type JoinRefused,
  type Listener,
  type MailBudget,
  type NewRoom,
  type Once,
  type Outgoing,
  type OverBudget,
  type PeerInfo,
  type RoomInfo,
  type RoomView,
  type SendResult,
  type SignalStore,
  type StoredMessage,
  type Waiting,
  type Window,
} from "./types.js";

/** A message, kept once however many peers it goes to (MAIL), until the last of them is done with it. */
interface Mail {
  id: string;
  type: string;
  body: string;
  recipients: number;
}

/** A peer's unread mail (its part of BOX): by id, oldest first (ids only grow in a room). */
interface Inbox {
  entries: Map<string, Mail>;
  /** Ids of offers, answers and candidates, oldest first; ids acknowledged since are skipped when met. */
  takeable: Map<string, string[]>;
}

const TAKEABLE = new Set(["offer", "answer", "candidate"]);
const mailSize = (m: { type: string; body: string }) => Buffer.byteLength(m.type) + Buffer.byteLength(m.body) + ENTRY_OVERHEAD;
/** What a message's places in one recipient's mail count (lib/store/lua.ts: by order, and by type for takes). */
const places = (type: string) => (TAKEABLE.has(type) ? 2 : 1) * RECIPIENT_OVERHEAD;

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
  /** Each peer's calls (Call.charge). */
  calls?: MemoryLimiter;
  budget: MailBudget;
  /** Bytes of unread mail. */
  bytes: number;
  /** The last message id's parts. */
  lastMs: number;
  seq: number;
}

/** A step's reply kept for repeats of its request (Once): until when, the request's fingerprint, and the reply. */
interface Kept {
  until: number;
  fingerprint: string;
  answer: Answer<unknown>;
}

const withFields = (m: Outgoing, fields: Record<string, unknown>): Outgoing => ({ type: m.type, body: JSON.stringify({ ...JSON.parse(m.body), ...fields }) });

function hashesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** What a verified caller's step may act with: the room, and the caller's conditional charge. */
interface Verified {
  room: Room;
  /** A read's conditional charge (CallCharge.ifMail), once it knows whether it found mail. */
  chargeIfMail(found: unknown[]): void;
}

/** Why a step refuses its caller before acting. */
type Refusal = Denied | "forbidden";

interface StepOptions<T> {
  /** Whether the step did something (its reply is then kept for repeats): by default, a value not a refusal, or "ok". */
  succeeded?: (value: T) => boolean;
  /** What a repeat of the request does before it answers the first reply. */
  onRepeat?: (room: Room) => void;
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
  /** Replies kept for repeats (OP keys), by "<roomId>\n<once key>\n<step>". */
  private readonly kept = new Map<string, Kept>();

  constructor(private readonly budget: MailBudget) {
    this.sweeper = setInterval(() => this.sweep(Date.now()), 60_000).unref();
  }

  /** Mirrors CREATE_ROOM. */
  async createRoom(r: NewRoom, now: number, once?: Once): Promise<Answer<{ room: RoomInfo } | "exists">> {
    const id = r.room.roomId;
    const repeat = this.repeat<{ room: RoomInfo }>(id, once, "CREATE_ROOM", now);
    if (repeat) {
      // The same request again (its reply was lost): the same room, under this run's secrets.
      const room = this.live(id, now);
      const host = room?.peers.get(r.host.peerId);
      if (host) host.tokenHash = r.hostTokenHash;
      if (room && r.joinKeyHash) room.joinKeyHash = r.joinKeyHash;
      return repeat;
    }
    if (this.live(id, now)) return { value: "exists" };
    this.closedRooms.delete(id);
    const room: Room = {
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
      lastMs: 0,
      seq: 0,
    };
    this.rooms.set(id, room);
    return this.keep(id, once, "CREATE_ROOM", now, { value: { room: this.view(room).room } });
  }

  /** Mirrors DESCRIBE_ROOM. */
  async describeRoom(roomId: string, now: number): Promise<RoomView | null> {
    const room = this.live(roomId, now);
    return room ? this.view(room) : null;
  }

  /** Mirrors LIST_PEERS. */
  async listPeers(call: Call, now: number) {
    return this.step(call, now, "LIST_PEERS", "peer", ({ room }) => this.view(room));
  }

  /** Mirrors JOIN_ROOM. */
  async joinRoom(roomId: string, peer: PeerInfo, tokenHash: string, announce: Outgoing, now: number, gate: JoinGate = {}, once?: Once) {
    type Joined = RoomView | Waiting | "room-missing" | JoinRefused;
    const repeat = this.repeat<Joined>(roomId, once, "JOIN_ROOM", now);
    if (repeat) {
      // The same join again (its reply was lost): the same peer, under this run's token.
      const room = this.live(roomId, now);
      const member = room?.peers.get(peer.peerId) ?? room?.lobby.get(peer.peerId);
      if (member) member.tokenHash = tokenHash;
      return repeat;
    }
    const joined = ((): Joined => {
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
        if (typeof this.deliverTo(room, room.info.hostId, gate.lobby.knock, now, 1) === "string") return "room-busy";
        room.lobby.set(peer.peerId, { info: peer, tokenHash, until: gate.lobby.until, denied: false });
        return { waiting: true, expiresAt: gate.lobby.until };
      }
      room.peers.set(peer.peerId, { info: peer, tokenHash });
      this.announce(room, peer.peerId, announce, now);
      return this.joinView(room, peer.peerId);
    })();
    return typeof joined === "string" ? { value: joined } : this.keep(roomId, once, "JOIN_ROOM", now, { value: joined });
  }

  /** Mirrors LEAVE_ROOM. */
  async leaveRoom(call: Call, peerId: string, announce: Outgoing, closed: Outgoing, now: number) {
    return this.step(call, now, "LEAVE_ROOM", peerId === call.peerId ? "own-mail" : "peer", ({ room }): "ok" | Closed | "forbidden" | "peer-missing" => {
      if (peerId !== call.peerId && call.peerId !== room.info.hostId) return "forbidden";
      const waiter = room.lobby.get(peerId);
      if (waiter) {
        // From the lobby: the host's knock goes with it (a denied peer's is answered already).
        this.drop(room, peerId);
        if (!waiter.denied) this.deliverTo(room, room.info.hostId, announce, now, 1);
        return "ok";
      }
      if (!room.peers.has(peerId)) return "peer-missing";
      if (peerId === room.info.hostId) return this.discard(room, closed, now);
      this.drop(room, peerId);
      this.refresh(room, now);
      this.announce(room, peerId, announce, now);
      return "ok";
    });
  }

  /** Mirrors CLOSE_ROOM. */
  async closeRoom(call: Call, closed: Outgoing, now: number) {
    return this.step(call, now, "CLOSE_ROOM", "host", ({ room }) => this.discard(room, closed, now));
  }

  /** Mirrors SEND. */
  async send(call: Call, to: string, message: Outgoing, now: number): Promise<Answer<SendResult>> {
    return this.step(call, now, "SEND", "peer", ({ room }): { id: string } | "forbidden" | "peer-missing" | OverBudget => {
      if (!room.peers.has(to) || to === call.peerId) return "peer-missing";
      if (room.info.topology === "star" && call.peerId !== room.info.hostId && to !== room.info.hostId) return "forbidden";
      this.refresh(room, now);
      return this.deliverTo(room, to, message, now, 1);
    });
  }

  /** Mirrors READ (which keeps no reply: reading again is reading). */
  async read(call: Call, after: string | null, now: number, waiter?: string, from?: string): Promise<Answer<StoredMessage[] | Denied>> {
    const notice = this.closedRooms.get(call.roomId);
    if (!this.live(call.roomId, now) && notice && notice.until > now && hashesEqual(notice.tokens.get(call.peerId) ?? "", call.tokenHash)) {
      return { value: [{ id: CLOSED_MESSAGE_ID, body: notice.body }] };
    }
    return this.step(call, now, null, "own-mail", ({ room, chargeIfMail }) => {
      if (waiter) this.notify(room.info.roomId, call.peerId, `w:${waiter}`);
      const inbox = room.inboxes.get(call.peerId);
      if (inbox && after) {
        const acknowledged: Mail[] = [];
        for (const [id, m] of inbox.entries) {
          if (messageId.compare(id, after) > 0) break;
          acknowledged.push(m);
        }
        this.release(room, inbox, acknowledged);
      }
      this.refresh(room, now);
      const unread: StoredMessage[] = [];
      const start = from ?? after;
      for (const [id, m] of inbox?.entries ?? []) {
        if (unread.length >= READ_BATCH) break;
        if (start && messageId.compare(id, start) <= 0) continue;
        unread.push({ id, body: m.body });
      }
      chargeIfMail(unread);
      return unread;
    });
  }

  /** Mirrors TAKE. */
  async take(call: Call, type: string, now: number, waiter?: string): Promise<Answer<StoredMessage[] | Denied>> {
    return this.step(call, now, "TAKE", "own-mail", ({ room }) => {
      if (waiter) this.notify(room.info.roomId, call.peerId, `w:${waiter}`);
      this.refresh(room, now);
      const inbox = room.inboxes.get(call.peerId);
      const ids = inbox?.takeable.get(type);
      if (!inbox || !ids) return [];
      const taken: Mail[] = [];
      let used = 0;
      while (taken.length < READ_BATCH && used < ids.length) {
        const entry = inbox.entries.get(ids[used++]);
        if (entry) taken.push(entry); // else acknowledged since
      }
      ids.splice(0, used);
      this.release(room, inbox, taken);
      return taken.map((m) => ({ id: m.id, body: m.body }));
    });
  }

  /** Mirrors PUT_SESSION. */
  async putSession(call: Call, sessionId: string, record: string, max: number, now: number, expiresAt?: number) {
    return this.step(call, now, "PUT_SESSION", "host", ({ room }) => {
      if (!room.sessions.has(sessionId)) {
        for (const [id, s] of room.sessions) if (s.expiresAt !== undefined && s.expiresAt <= now) room.sessions.delete(id);
        if (room.sessions.size >= max) return "limit" as const;
      }
      room.sessions.set(sessionId, { record, expiresAt });
      return "ok" as const;
    });
  }

  /** Mirrors REMOVE_SESSION. */
  async removeSession(call: Call, sessionId: string, now: number) {
    return this.step(call, now, "REMOVE_SESSION", "host", ({ room }) => {
      const record = room.sessions.get(sessionId)?.record ?? null;
      room.sessions.delete(sessionId);
      return { record };
    });
  }

  /** Mirrors END_SESSION, then UNSCHEDULE_END. */
  async endSession(roomId: string, sessionId: string, now: number) {
    this.sessionEnds.delete(`${roomId}/${sessionId}`);
    const room = this.live(roomId, now);
    const record = room?.sessions.get(sessionId)?.record ?? null;
    room?.sessions.delete(sessionId);
    return record;
  }

  /** Mirrors ADMIT. */
  async admit(call: Call, peerId: string, allow: boolean, messages: AdmitMessages, now: number) {
    return this.step(call, now, "ADMIT", "host", ({ room }): "ok" | "peer-missing" | "room-full" => {
      this.prune(room, now);
      const waiter = room.lobby.get(peerId);
      // The same answer twice does nothing more (a retried request); any other is to no one waiting.
      if (!waiter) return allow && room.peers.has(peerId) ? "ok" : "peer-missing";
      if (waiter.denied) return allow ? "peer-missing" : "ok";
      if (!allow) {
        waiter.denied = true;
        waiter.until = now + DENIED_NOTICE_MS;
        this.deliverTo(room, peerId, messages.denied, now, 1);
        return "ok";
      }
      if (room.peers.size >= room.info.maxPeers) return "room-full";
      room.lobby.delete(peerId);
      room.peers.set(peerId, { info: waiter.info, tokenHash: waiter.tokenHash, ...(waiter.ticket ? { ticket: waiter.ticket } : {}) });
      this.refresh(room, now);
      this.announce(room, peerId, withFields(messages.announce, { peer: waiter.info }), now);
      const view = this.joinView(room, peerId);
      this.deliverTo(room, peerId, withFields(messages.admitted, { room: view.room, peers: view.peers }), now, 1);
      return "ok";
    });
  }

  /** Mirrors CHARGE_CALL. */
  async chargeCall(call: Call, now: number) {
    return this.step(call, now, null, "own-mail", () => "ok" as const);
  }

  /** Mirrors SET_LOCKED. */
  async setLocked(call: Call, locked: boolean, now: number) {
    return this.step(call, now, "SET_LOCKED", "host", ({ room }) => ((room.locked = locked), "ok" as const));
  }

  /** Mirrors ROTATE_JOIN_KEY. */
  async rotateJoinKey(call: Call, joinKeyHash: string, now: number) {
    const act = ({ room }: Verified) => {
      if (!room.joinKeyHash) return "open-room" as const;
      room.joinKeyHash = joinKeyHash;
      return "ok" as const;
    };
    // A repeat: this run's key is the one the host will get.
    return this.step(call, now, "ROTATE_JOIN_KEY", "host", act, { onRepeat: (room) => (room.joinKeyHash = joinKeyHash) });
  }

  /** Mirrors ISSUE_TICKET. */
  async issueTicket(call: Call, ticketHash: string, ttlMs: number, now: number) {
    return this.step(call, now, null, "own-mail", ({ room }) => {
      (room.peers.get(call.peerId) ?? room.lobby.get(call.peerId))!.ticket = { hash: ticketHash, expiresAt: now + ttlMs };
      return "ok" as const;
    });
  }

  /** Mirrors REDEEM_TICKET. */
  async redeemTicket(roomId: string, peerId: string, ticketHash: string, now: number): Promise<Caller | null> {
    const room = this.live(roomId, now);
    const peer = room?.peers.get(peerId) ?? room?.lobby.get(peerId);
    if (!peer?.ticket || !hashesEqual(peer.ticket.hash, ticketHash)) return null;
    const { expiresAt } = peer.ticket;
    delete peer.ticket;
    return expiresAt > now ? { roomId, peerId, tokenHash: peer.tokenHash } : null;
  }

  /** Mirrors CHAT. */
  async chat(call: Call, message: Outgoing & { at: number }, historyMax: number, now: number, limits: ChatLimits | null) {
    const sent = (v: ChatSent | "room-busy") => typeof v === "object" && v.sent;
    return this.step(
      call,
      now,
      "CHAT",
      "peer",
      ({ room }): ChatSent | "room-busy" => {
        let window: Window | undefined;
        if (limits) {
          room.chatLimits ??= { perSender: new MemoryLimiter(limits.perSender, limits.windowMs), perRoom: new MemoryLimiter(limits.perRoom, limits.windowMs) };
          for (const [limiter, key] of [[room.chatLimits.perSender, call.peerId], [room.chatLimits.perRoom, ""]] as const) {
            const { success, limit, remaining, reset } = limiter.limitSync(key, now);
            if (!success) return { sent: false, window: { limit, remaining, reset } };
            if (!window || remaining < window.remaining) window = { limit, remaining, reset };
          }
        }
        const name = room.peers.get(call.peerId)?.info.name ?? null;
        const named = withFields(message, { name });
        this.refresh(room, now);
        // Chat has half the budget (see lib/store/lua.ts).
        const to = [...room.peers.keys()].filter((id) => id !== call.peerId && this.unread(room, id) < room.budget.inboxMax / 2);
        if (this.deliver(room, to, named, now, 2) === "room-busy") return "room-busy";
        room.chat.push(named.body);
        room.chat.splice(0, Math.max(0, room.chat.length - historyMax));
        return { sent: true, at: message.at, name, ...(window ? { window } : {}) };
      },
      { succeeded: sent },
    );
  }

  /** Mirrors CHAT_HISTORY. */
  async chatHistory(call: Call, now: number) {
    return this.step(call, now, null, "peer", ({ room }) => [...room.chat]);
  }

  /** Mirrors SCHEDULE_END. */
  async scheduleSessionEnd(roomId: string, sessionId: string, at: number) {
    this.sessionEnds.set(`${roomId}/${sessionId}`, at);
  }

  /** Mirrors DUE_SESSIONS. */
  async dueSessions(now: number, max: number) {
    return [...this.sessionEnds]
      .filter(([, at]) => at <= now)
      .sort((a, b) => a[1] - b[1])
      .slice(0, max)
      .map(([m]) => ({ roomId: m.slice(0, m.indexOf("/")), sessionId: m.slice(m.indexOf("/") + 1) }));
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
   * A verified caller's step, as lib/store/lua.ts's `denied` and script wrapper run it: the room
   * and the caller's token; a repeat of the request answers its first reply (`step` names the
   * script, null for one that keeps none); the call is charged; the lobby and `need` are
   * checked ('host', 'peer', or 'own-mail': a lobby peer too, until its wait ends); then `act`,
   * whose reply is kept for repeats when `succeeded` says it did something.
   */
  private step<T>(call: Call, now: number, step: string | null, need: "host", act: (verified: Verified) => T, options?: StepOptions<T>): Answer<T | Denied | "forbidden">;
  private step<T>(call: Call, now: number, step: string | null, need: "peer" | "own-mail", act: (verified: Verified) => T, options?: StepOptions<T>): Answer<T | Denied>;
  private step<T>(
    call: Call,
    now: number,
    step: string | null,
    need: "host" | "peer" | "own-mail",
    act: (verified: Verified) => T,
    { succeeded = (v) => typeof v !== "string" || v === "ok", onRepeat }: StepOptions<T> = {},
  ): Answer<T | Refusal> {
    const room = this.live(call.roomId, now);
    if (!room) {
      // The request's first run closed the room: its peer, as the closed notice knows it, gets that reply again.
      const notice = this.closedRooms.get(call.roomId);
      const known = step && notice && notice.until > now && hashesEqual(notice.tokens.get(call.peerId) ?? "", call.tokenHash);
      return (known && this.repeat<T>(call.roomId, call.once, step, now)) || { value: "room-missing" };
    }
    const peer = room.peers.get(call.peerId);
    const waiter = room.lobby.get(call.peerId);
    const member = peer ?? waiter;
    // A peer whose request's first run took its token away (it left) gets that reply, nothing secret, again.
    if (!member) return (step && this.repeat<T>(call.roomId, call.once, step, now)) || { value: "unauthorized" };
    if (!hashesEqual(member.tokenHash, call.tokenHash)) return { value: "unauthorized" };
    const repeat = step ? this.repeat<T>(call.roomId, call.once, step, now) : null;
    if (repeat) return (onRepeat?.(room), repeat);
    let window: Window | undefined;
    const charge = () => {
      if (!call.charge) return;
      room.calls ??= new MemoryLimiter(call.charge.max, call.charge.windowMs);
      const { success, limit, remaining, reset } = room.calls.limitSync(call.peerId, now);
      window = { limit, remaining, reset };
      if (!success) throw new RateLimited(window);
    };
    // Verified: charge the call, whether or not what it asks is allowed.
    if (!call.charge?.ifMail) charge();
    const refused = ((): Refusal | null => {
      if (waiter && !peer) {
        if (need !== "own-mail") return "not-admitted";
        if (waiter.until <= now) return "unauthorized";
      }
      return need === "host" && call.peerId !== room.info.hostId ? "forbidden" : null;
    })();
    const answered = (value: T | Refusal): Answer<T | Refusal> => ({ value, ...(window ? { window } : {}) });
    if (refused) return answered(refused);
    const value = act({ room, chargeIfMail: (found) => found.length > 0 && call.charge?.ifMail && charge() });
    return step && succeeded(value) ? this.keep(call.roomId, call.once, step, now, answered(value)) : answered(value);
  }

  /** A repeat of a request whose reply is kept (OP), answered again; a different request under its key is refused. */
  private repeat<T>(roomId: string, once: Once | undefined, step: string, now: number): Answer<T> | null {
    if (!once) return null;
    const kept = this.kept.get(`${roomId}\n${once.key}\n${step}`);
    if (!kept || kept.until <= now) return null;
    if (kept.fingerprint !== once.fingerprint) throw new IdempotencyMismatch();
    return { ...(kept.answer as Answer<T>), replayed: true };
  }

  /** Keeps a step's reply for repeats of its request (nothing to keep without a Once: no transport retries here). */
  private keep<T>(roomId: string, once: Once | undefined, step: string, now: number, answer: Answer<T>): Answer<T> {
    if (once) this.kept.set(`${roomId}\n${once.key}\n${step}`, { until: now + once.ttlMs, fingerprint: once.fingerprint, answer });
    return answer;
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
    const inbox = room.inboxes.get(peerId);
    if (inbox) this.release(room, inbox, [...inbox.entries.values()]);
    room.inboxes.delete(peerId);
    this.notify(room.info.roomId, peerId, "gone");
  }

  /** Lobby peers whose wait (or denial notice) is over go. */
  private prune(room: Room, now: number) {
    for (const [peerId, waiter] of room.lobby) if (waiter.until <= now) this.drop(room, peerId);
  }

  /**
   * Who hears of a peer joining or leaving: in a star room only the host, in a mesh everyone
   * else; a recipient whose inbox is full misses the notice rather than fail the join or leave.
   */
  private announce(room: Room, about: string, message: Outgoing, now: number) {
    const others = [...room.peers.keys()].filter((id) => id !== about && (room.info.topology === "mesh" || id === room.info.hostId));
    this.deliver(room, others.filter((id) => this.unread(room, id) < room.budget.inboxMax), message, now, 1);
  }

  private refresh(room: Room, now: number) {
    if (room.exp - now >= room.ttlMs / 2) return;
    room.exp = Math.max(room.exp, Math.min(now + room.ttlMs, room.capAt));
  }

  private unread(room: Room, peerId: string) {
    return room.inboxes.get(peerId)?.entries.size ?? 0;
  }

  /** Delivers to one peer, if its inbox has room (share 2: half of it, for chat): the id, or why not. */
  private deliverTo(room: Room, to: string, message: Outgoing, now: number, share: 1 | 2): { id: string } | OverBudget {
    if (this.unread(room, to) >= room.budget.inboxMax / share) return "inbox-full";
    const delivered = this.deliver(room, [to], message, now, share);
    return delivered === "no-one" ? "room-busy" : delivered;
  }

  /**
   * Stores one message for every peer in `to` (once), within the room's bytes (share 1: all of
   * them; 2: half, for chat), and wakes each one's waiting reads: the id, or why not.
   */
  private deliver(room: Room, to: string[], message: Outgoing, now: number, share: 1 | 2): { id: string } | "room-busy" | "no-one" {
    if (to.length === 0) return "no-one";
    const bytes = mailSize(message) + to.length * places(message.type);
    if (room.bytes + bytes > room.budget.roomMailMaxBytes / share) return "room-busy";
    room.lastMs = Math.max(now, room.lastMs);
    room.seq++;
    room.bytes += bytes;
    const mail: Mail = { id: messageId.format(room.lastMs, room.seq), type: message.type, body: message.body, recipients: to.length };
    for (const peerId of to) {
      let inbox = room.inboxes.get(peerId);
      if (!inbox) room.inboxes.set(peerId, (inbox = { entries: new Map(), takeable: new Map() }));
      inbox.entries.set(mail.id, mail);
      if (TAKEABLE.has(mail.type)) {
        const ids = inbox.takeable.get(mail.type) ?? [];
        ids.push(mail.id);
        // Live ids are always the newest of their type, and an inbox holds at most inboxMax.
        if (ids.length > room.budget.inboxMax) ids.splice(0, ids.length - room.budget.inboxMax);
        inbox.takeable.set(mail.type, ids);
      }
      this.notify(room.info.roomId, peerId, messagePayload(mail.id, mail.type, mail.body));
    }
    return { id: mail.id };
  }

  /** A recipient is done with these of its mail: they leave its inbox, and a message goes with its last recipient. */
  private release(room: Room, inbox: Inbox, done: Mail[]) {
    for (const mail of done) {
      inbox.entries.delete(mail.id);
      room.bytes -= places(mail.type);
      if (--mail.recipients === 0) room.bytes -= mailSize(mail);
    }
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
    for (const [key, kept] of this.kept) if (kept.until <= now) this.kept.delete(key);
  }
}
