/**
 * The signaling store: the one interface behind which all state lives. Two implementations
 * (Redis through Upstash REST, and memory) hold to the same contract, tested by one suite
 * (tests/store.contract.test.ts).
 *
 * Each operation is atomic and checks, in the same step, what makes it allowed, so no
 * interleaving of requests can lose a message, deliver one twice, or act on a stale peer list:
 *  - the caller's token: the SHA-256 of the bearer token must equal the one stored for the peer;
 *  - the room's topology: in a `star` room a viewer may address only the host;
 *  - the room's life: every key has the room's expiry, extended by activity (never past its cap).
 */

export type Topology = "star" | "mesh";
/** An `agent` is a server-side participant, such as an AI session answering as a peer. */
export type Role = "host" | "viewer" | "agent";
/** Who may join: anyone with the room ID, only with its join key too, or whom the host lets in from its lobby. */
export type Access = "open" | "key" | "lobby";

export interface RoomInfo {
  roomId: string;
  topology: Topology;
  maxPeers: number;
  hostId: string;
  createdAt: number;
  access: Access;
  /** Joiners wait in a lobby until the host admits them (access "lobby", or a key room asked to). */
  lobby: boolean;
  expiresAt: number;
  /** The host locked the room: no one new may join. */
  locked: boolean;
}

export interface PeerInfo {
  peerId: string;
  role: Role;
  name?: string;
  joinedAt: number;
}

export interface NewRoom {
  room: Omit<RoomInfo, "expiresAt" | "locked">;
  /** A key room: the SHA-256 of its join key. */
  joinKeyHash?: string;
  ttlMs: number;
  /** No activity extends the room past this instant. */
  capAt: number;
  host: PeerInfo;
  hostTokenHash: string;
}

/** Who is asking: the peer a token claims to be, proven by the token's hash. */
export interface Caller {
  roomId: string;
  peerId: string;
  tokenHash: string;
}

/**
 * A caller's request as the store sees it: who asks, what the request costs, and which request
 * it is. A value: the store reads it and answers what came of it (Answer), never writes to it.
 */
export interface Call extends Caller {
  /**
   * Charge this request against the caller's call limit in the step that verifies its token (one
   * round trip, and a forged token spends nothing). Past the limit that step throws RateLimited
   * and does nothing. Give it to one step of a request only.
   */
  readonly charge?: CallCharge;
  /** The request's idempotency key (see Once), for the one step of it that changes something. */
  readonly once?: Once;
}

export interface CallCharge {
  max: number;
  windowMs: number;
  /**
   * Only if the read it rides on returns mail (a waiting read's first read, which is a plain
   * read when it finds some). A read that finds none is free: the waiting after it is.
   */
  ifMail?: boolean;
}

/**
 * Which request this is, so that running it again (a retry after a lost reply, by a transport
 * or a client) answers the first reply instead of acting twice. `key` names the request (the
 * client's Idempotency-Key, scoped to who sent it and where); a different request under the
 * same key (another `fingerprint`) is refused (IdempotencyMismatch). The reply is kept `ttlMs`.
 * A step that changes something without one gets a key of its own, for the transport's retries.
 */
export interface Once {
  key: string;
  fingerprint: string;
  ttlMs: number;
}

/** What a step answered; where the caller's call limit stands if the step charged it; whether it was a repeat. */
export interface Answer<T> {
  value: T;
  window?: Window;
  /** The first reply to this request (Once), given again. */
  replayed?: boolean;
}

/** The same idempotency key came with a different request: nothing was done (422). */
export class IdempotencyMismatch extends Error {
  constructor() {
    super("idempotency key reused for a different request");
  }
}

/** A message as it sits in an inbox: `body` is the JSON the recipient will read, minus `id`. */
export interface StoredMessage {
  id: string;
  body: string;
}

/** A message to deliver: its type (for typed takes) and its serialized body. */
export interface Outgoing {
  type: string;
  body: string;
}

export interface RoomView {
  room: RoomInfo;
  peers: PeerInfo[];
}

/** The caller may not act: no such room, a wrong token, or a peer still waiting in the lobby (it may only read its own mail). */
export type Denied = "room-missing" | "unauthorized" | "not-admitted";

/** Chat's rate limits, charged inside the chat's own step: messages per sender and per room, per window. */
export interface ChatLimits {
  perSender: number;
  perRoom: number;
  windowMs: number;
}

/** Where a rate limit stands: its maximum, what is left of it, and when its window ends (ms since the epoch). */
export interface Window {
  limit: number;
  remaining: number;
  reset: number;
}

/** A chat sent: when (its `at`), the sender's name as the room knows it, and the tighter of its limits (none when unlimited). */
export type ChatSent = { sent: true; at: number; name: string | null; window?: Window } | { sent: false; window: Window };

/** Why a join was refused, besides a missing room. */
export type JoinRefused = "room-full" | "room-locked" | "join-key-required" | "join-key-invalid" | "lobby-full" | "room-busy";

/** What stands between a joiner and the room, besides its size. */
export interface JoinGate {
  /** The SHA-256 of the join key the joiner brought (a key room checks it). */
  joinKeyHash?: string;
  /** In a lobby room the joiner waits: `knock` goes to the host, and the wait ends at `until` (ms). */
  lobby?: { knock: Outgoing; until: number };
  /** Let in by the host itself (its AI peer): no key, lock or lobby applies. */
  byHost?: boolean;
}

/** A joiner now waiting in the lobby, until `expiresAt` (ms). */
export interface Waiting {
  waiting: true;
  expiresAt: number;
}

/** How long a joiner may wait in a lobby for the host to answer (ms). */
export const LOBBY_WAIT_MS = 10 * 60_000;
/** How many may wait in one room's lobby at once: knocks past it are refused (409 lobby_full). */
export const LOBBY_MAX = 20;
/** A denied joiner may still read that it was denied for this long (ms); then its token is dead. */
export const DENIED_NOTICE_MS = 60_000;

/** What a host's answer to a knock delivers; the store adds what only it knows. */
export interface AdmitMessages {
  /** To the admitted peer; the store adds `room` and `peers` (a join's view). */
  admitted: Outgoing;
  denied: Outgoing;
  /** To the host (star) or everyone (mesh), as on a join; the store adds `peer` (as it knocked). */
  announce: Outgoing;
}

/** The mail budget a room is created with (see lib/store/lua.ts). */
export interface MailBudget {
  /** Messages one inbox may hold unread; chat may fill half. */
  inboxMax: number;
  /** Bytes all of a room's unread mail may take; chat may fill half. */
  roomMailMaxBytes: number;
}

/**
 * A closed room tells its peers so for this long after (ms): a reader between polls, or a
 * stream reconnecting, gets the room-closed message rather than a bare 401.
 */
export const CLOSED_NOTICE_MS = 5 * 60_000;

/** The room-closed message's id: it is no cursor (nothing follows it). */
export const CLOSED_MESSAGE_ID = "0-0";

/** What each message counts for in a room's bytes beyond its type and body: about what Redis spends keeping one. */
export const ENTRY_OVERHEAD = 64;
/**
 * What each recipient of a message adds to a room's bytes: about what Redis spends on its place
 * in the recipient's mail (a sorted-set member: measured ~120 bytes). An offer, answer or
 * candidate has two places (by order and by type), so counts it twice.
 */
export const RECIPIENT_OVERHEAD = 128;

/** Over the budget: the recipient's inbox, or the room's bytes. */
export type OverBudget = "inbox-full" | "room-busy";

export type SendResult = { id: string } | Denied | "forbidden" | "peer-missing" | OverBudget;

/** Why a waiting read woke up. */
export type Wake =
  | { kind: "message"; message?: StoredMessage & { type: string } } // the new message, when it fits
  | { kind: "gone" } // this peer left or was removed
  | { kind: "closed"; body: string } // the room was closed; body is the room-closed message
  | { kind: "waiter"; mark: string } // a waiting read of this peer began (its mark)
  | { kind: "lost" } // the subscription broke: the store cannot be reached
  | { kind: "timeout" };

export interface Listener {
  /** Resolves at the next notification for this peer, at the timeout, or when `signal` aborts. */
  next(timeoutMs: number, signal?: AbortSignal): Promise<Wake>;
  close(): void;
}

/** A room just closed, with the session records it held (their calls still need hanging up). */
export interface Closed {
  sessions: string[];
}

/**
 * Every operation that takes a Call answers an Answer (its charge's window, and whether it was a
 * repeat); every one that changes something applies at most once per Once (lib/store/lua.ts).
 */
export interface SignalStore {
  readonly kind: "memory" | "redis";

  /** The room made (a repeat: the one the first request made), or "exists" if the ID is taken (the caller draws a new one). */
  createRoom(room: NewRoom, now: number, once?: Once): Promise<Answer<{ room: RoomInfo } | "exists">>;

  /** Public facts about a room, for diagnostics; no secrets. */
  describeRoom(roomId: string, now: number): Promise<RoomView | null>;

  listPeers(call: Call, now: number): Promise<Answer<RoomView | Denied>>;

  /**
   * Adds the peer unless the room is full; `announce` goes to the host (star) or everyone (mesh).
   * The view holds every peer in a mesh; in a star room only the host and the joiner, whom alone
   * a viewer deals with (so a join costs the same in a full room as in an empty one). A repeat
   * (`once`) answers the first join's view and puts `tokenHash` in place of the first token.
   */
  joinRoom(roomId: string, peer: PeerInfo, tokenHash: string, announce: Outgoing, now: number, gate?: JoinGate, once?: Once): Promise<Answer<RoomView | Waiting | "room-missing" | JoinRefused>>;

  /**
   * Host only: lets a waiting peer in (`allow`) or not. Admitted, it becomes a peer like any
   * joiner (announced with `announce`) and its mail gets `admitted` with `room` and `peers`
   * (as a join's view) added; denied, its mail gets `denied` and its token reads only that, for
   * DENIED_NOTICE_MS. Answering the same way twice is "ok" and does nothing more; a peer not
   * waiting (gone, expired, or answered the other way) is "peer-missing"; a full room, "room-full".
   */
  admit(call: Call, peerId: string, allow: boolean, messages: AdmitMessages, now: number): Promise<Answer<"ok" | Denied | "forbidden" | "peer-missing" | "room-full">>;

  /** Host only: a locked room refuses every join; the peers in it are unaffected. */
  setLocked(call: Call, locked: boolean, now: number): Promise<Answer<"ok" | Denied | "forbidden">>;

  /** Host only, key rooms: a new join key (its hash); the old one stops working at once. */
  rotateJoinKey(call: Call, joinKeyHash: string, now: number): Promise<Answer<"ok" | Denied | "forbidden" | "open-room">>;

  /**
   * Removes `peerId` (the caller itself, or anyone when the caller is the host); the others are
   * told with `announce` as on join. The host leaving closes the room. A peer waiting in the
   * lobby may leave (or the host remove it): then only the host is told, so its knock goes.
   */
  leaveRoom(call: Call, peerId: string, announce: Outgoing, closed: Outgoing, now: number): Promise<Answer<"ok" | Closed | Denied | "forbidden" | "peer-missing">>;

  /** Host only: wakes every waiting peer with `closed`, then deletes every key of the room. */
  closeRoom(call: Call, closed: Outgoing, now: number): Promise<Answer<Closed | Denied | "forbidden">>;

  send(call: Call, to: string, message: Outgoing, now: number): Promise<Answer<SendResult>>;

  /** Verifies the caller (a waiting peer too), only to take its charge. */
  chargeCall(call: Call, now: number): Promise<Answer<"ok" | Denied>>;

  /**
   * Room chat: delivers `message` to every other peer (whatever the topology) and keeps it in the
   * room's history, of which the last `historyMax` stay. Chat has half the mail budget: a peer
   * whose inbox is half full misses it, and a room whose bytes are half spent refuses it. The
   * store adds the sender's `name` to the message, and charges `limits` (per sender first, then
   * per room) once the caller is verified: past either, nothing is sent (`sent: false`).
   */
  chat(call: Call, message: Outgoing & { at: number }, historyMax: number, now: number, limits: ChatLimits | null): Promise<Answer<ChatSent | Denied | "room-busy">>;

  /** The room's kept chat messages, oldest first (bodies as sent). */
  chatHistory(call: Call, now: number): Promise<Answer<string[] | Denied>>;

  /**
   * Acknowledges (deletes) the caller's messages up to and including `after`, returns the rest
   * in order — or, with `from`, those after `from` (an event stream has sent up to it, but the
   * client has not acknowledged them yet). With `waiter`, a waiting read begins: its mark goes
   * to the peer's listeners. For CLOSED_NOTICE_MS after its room closed, a peer of it reads the
   * room-closed message alone, with id CLOSED_MESSAGE_ID. Reading again is reading: it needs no Once.
   */
  read(call: Call, after: string | null, now: number, waiter?: string, from?: string): Promise<Answer<StoredMessage[] | Denied>>;

  /**
   * Removes and returns the caller's messages of one type (offer, answer or candidate); each is
   * taken by exactly one request, at a cost in proportion to what is taken. `waiter` as for read.
   */
  take(call: Call, type: string, now: number, waiter?: string): Promise<Answer<StoredMessage[] | Denied>>;

  /**
   * Host only: records an AI session of the room (creating it only while the room holds fewer
   * than `max`; overwriting an existing one always). Records go with the room. A record given
   * `expiresAt` (ms) stops counting, and is dropped, from then on (a client secret nobody can
   * redeem any more).
   */
  putSession(call: Call, sessionId: string, record: string, max: number, now: number, expiresAt?: number): Promise<Answer<"ok" | "limit" | Denied | "forbidden">>;

  /** Host only: removes a session record and returns it (null if there was none). */
  removeSession(call: Call, sessionId: string, now: number): Promise<Answer<{ record: string | null } | Denied | "forbidden">>;

  /**
   * AI calls have a deadline (OPENAI_MAX_SESSION_SECONDS): `scheduleSessionEnd` enters one in a
   * deadline index, `dueSessions` lists those past due, and `endSession` removes a session's
   * record whoever asks (its deadline passed) and its index entry, returning the record, or
   * null if the session had already ended.
   */
  scheduleSessionEnd(roomId: string, sessionId: string, at: number): Promise<void>;
  dueSessions(now: number, max: number): Promise<{ roomId: string; sessionId: string }[]>;
  endSession(roomId: string, sessionId: string, now: number): Promise<string | null>;

  /**
   * A stream ticket: lets the caller's own event stream be opened once, within `ttlMs`, without
   * the token (a browser's EventSource cannot send headers). Stored only as `ticketHash`.
   */
  issueTicket(call: Call, ticketHash: string, ttlMs: number, now: number): Promise<Answer<"ok" | Denied>>;

  /**
   * The caller a ticket was issued to (the ticket names `peerId`), once: a redeemed, replaced
   * or expired ticket, or one of a peer since gone, gives null. A peer holds one ticket at a time.
   */
  redeemTicket(roomId: string, peerId: string, ticketHash: string, now: number): Promise<Caller | null>;

  /** Subscribes to the peer's notifications; resolves once the subscription is live, throws StoreUnavailable if it cannot be made. */
  listen(roomId: string, peerId: string): Promise<Listener>;

  /** Round-trip time to the store in ms; throws StoreUnavailable. */
  ping(): Promise<number>;

  close(): Promise<void>;
}

/** The store cannot be reached: the HTTP edge answers 503 store_unavailable. */
export class StoreUnavailable extends Error {
  constructor(cause: unknown) {
    super("store unavailable", { cause });
  }
}

/** The caller is past its call limit (Call.charge): the operation did nothing. */
export class RateLimited extends Error {
  constructor(readonly window: Window) {
    super("rate limited");
  }
}

/**
 * The store is reachable but has more commands in flight from this process than it answers:
 * new ones are refused at once (503 store_busy) rather than queued into timeouts and retries.
 */
export class StoreBusy extends StoreUnavailable {
  constructor() {
    super("too many store commands in flight");
  }
}

/** Reads return at most this many messages; the rest follow on the next read. */
export const READ_BATCH = 100;
