/**
 * The production store: Redis, through Upstash's REST API or over TCP (lib/store/transport.ts).
 * Every operation is one Lua script (lib/store/lua.ts), so one round trip; a waiting read
 * subscribes to the peer's channel (Upstash serves SUBSCRIBE as server-sent events,
 * lib/store/rest-subscription.ts; TCP shares one subscriber connection per process).
 */
import type { RedisTransport, ScriptName } from "./transport.js";
import { parseWake, WakeQueue } from "./wake-queue.js";
import {
  CLOSED_MESSAGE_ID,
  DENIED_NOTICE_MS,
  READ_BATCH,
  StoreBusy,
  StoreUnavailable,
  type AdmitMessages,
  RateLimited,
  type Caller,
  type ChatLimits,
  type ChatSent,
  type Denied,
  type JoinGate,
  type JoinRefused,
  type Listener,
  type MailBudget,
  type NewRoom,
  type Outgoing,
  type PeerInfo,
  type RoomInfo,
  type RoomView,
  type SendResult,
  type SignalStore,
  type StoredMessage,
  type Waiting,
} from "./types.js";

export const roomKey = (roomId: string) => `sb:{${roomId}}`;
export const inboxKey = (roomId: string, peerId: string) => `${roomKey(roomId)}:in:${peerId}`;
export const chatKey = (roomId: string) => `${roomKey(roomId)}:chat`;
export const channelName = (roomId: string, peerId: string) => `${roomKey(roomId)}:ch:${peerId}`;
export const SESSION_ENDS_KEY = "sb:ai:ends";
const DAY_MS = 86_400_000;

type Reply = string | number | null | Reply[];

/** The message id just past `id`: trimming below it acknowledges `id` and everything before. */
export function idAfter(id: string): string {
  const [ms, seq] = id.split("-");
  return `${ms}-${BigInt(seq) + 1n}`;
}

/** A room as HGETALL returns its hash (field, value, field, value, …). */
function viewFrom(fields: Reply): RoomView {
  const flat = fields as string[];
  let info: Omit<RoomInfo, "expiresAt" | "locked"> | null = null;
  let expiresAt = 0;
  let locked = false;
  const peers: PeerInfo[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    if (flat[i] === "info") info = JSON.parse(flat[i + 1]);
    else if (flat[i] === "exp") expiresAt = Number(flat[i + 1]);
    else if (flat[i] === "lk") locked = flat[i + 1] === "1";
    else if (flat[i].startsWith("p:")) peers.push(JSON.parse(flat[i + 1]));
  }
  if (!info) throw new Error("room hash without info");
  peers.sort((a, b) => a.joinedAt - b.joinedAt);
  // Rooms made before access existed are open.
  return { room: { ...info, access: info.access ?? "open", lobby: info.lobby ?? false, expiresAt, locked }, peers };
}

function messagesFrom(entries: Reply): StoredMessage[] {
  return (entries as [string, string[]][]).map(([id, fields]) => ({ id, body: fields[3] }));
}

/** Why the store is unreachable, in words for an operator (the start-up check): never a secret. */
export function explainUnavailable(error: unknown, where = "UPSTASH_REDIS_REST_URL (or KV_REST_API_URL)"): string {
  const cause = String((error as Error)?.cause ?? error);
  if (/unauthori[sz]ed|WRONGPASS|invalid.*token/i.test(cause)) return "Upstash rejected the token: check UPSTASH_REDIS_REST_TOKEN (or KV_REST_API_TOKEN)";
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|fetch failed|timeout|aborted|did not answer/i.test(cause)) return `Redis cannot be reached at ${where}: check the URL, and that it is up`;
  return `Redis answered with an error: ${cause.split(", command was:")[0]}`;
}

export class RedisStore implements SignalStore {
  readonly kind = "redis" as const;

  /** Commands of this process waiting for Redis now. */
  private inFlight = 0;

  constructor(
    readonly transport: RedisTransport,
    private readonly budget: MailBudget,
    /** Past this many commands in flight, new ones fail at once (503 store_busy): a slow store sheds load. */
    private readonly maxInFlight = 256,
  ) {}

  async createRoom(r: NewRoom, now: number): Promise<"ok" | "exists"> {
    const exp = Math.min(now + r.ttlMs, r.capAt);
    return (await this.run("CREATE_ROOM", [roomKey(r.room.roomId)], [
      JSON.stringify(r.room), exp, r.ttlMs, r.capAt, r.room.maxPeers, r.room.hostId, r.room.topology,
      JSON.stringify(r.host), r.hostTokenHash, this.budget.inboxMax, this.budget.roomMailMaxBytes, r.joinKeyHash ?? "",
      r.room.lobby ? "1" : "",
    ])) as "ok" | "exists";
  }

  async describeRoom(roomId: string): Promise<RoomView | null> {
    const fields = (await this.guard(() => this.transport.command(roomKey(roomId), ["HGETALL", roomKey(roomId)]))) as Reply;
    return Array.isArray(fields) && fields.length > 0 ? viewFrom(fields) : null;
  }

  async listPeers(c: Caller): Promise<RoomView | Denied> {
    const [status, fields] = (await this.run("LIST_PEERS", [roomKey(c.roomId)], [c.peerId, c.tokenHash], c)) as Reply[];
    return status === "ok" ? viewFrom(fields) : (status as Denied);
  }

  async joinRoom(roomId: string, peer: PeerInfo, tokenHash: string, announce: Outgoing, now: number, gate: JoinGate = {}): Promise<RoomView | Waiting | "room-missing" | JoinRefused> {
    const [status, fields] = (await this.run("JOIN_ROOM", [roomKey(roomId)], [
      now, peer.peerId, JSON.stringify(peer), tokenHash, announce.type, announce.body, gate.joinKeyHash ?? "",
      gate.byHost ? "1" : "", gate.lobby?.knock.body ?? "", gate.lobby?.until ?? 0,
    ])) as Reply[];
    if (status === "waiting") return { waiting: true, expiresAt: Number(fields) };
    return status === "ok" ? viewFrom(fields) : (status as "room-missing" | JoinRefused);
  }

  async admit(c: Caller, peerId: string, allow: boolean, messages: AdmitMessages, now: number) {
    return (await this.run("ADMIT", [roomKey(c.roomId)], [
      now, c.peerId, c.tokenHash, peerId, allow ? "1" : "0", messages.admitted.body, messages.denied.body,
      messages.announce.type, messages.announce.body, now + DENIED_NOTICE_MS,
    ], c)) as "ok" | Denied | "forbidden" | "peer-missing" | "room-full";
  }

  async setLocked(c: Caller, locked: boolean) {
    return (await this.run("SET_LOCKED", [roomKey(c.roomId)], [c.peerId, c.tokenHash, locked ? "1" : "0"], c)) as "ok" | Denied | "forbidden";
  }

  async rotateJoinKey(c: Caller, joinKeyHash: string) {
    return (await this.run("ROTATE_JOIN_KEY", [roomKey(c.roomId)], [c.peerId, c.tokenHash, joinKeyHash], c)) as "ok" | Denied | "forbidden" | "open-room";
  }

  async leaveRoom(c: Caller, peerId: string, announce: Outgoing, closed: Outgoing, now: number) {
    const [status, ...sessions] = (await this.run("LEAVE_ROOM", [roomKey(c.roomId)], [
      now, c.peerId, c.tokenHash, peerId, announce.type, announce.body, closed.body,
    ], c)) as string[];
    return status === "closed" ? { sessions } : (status as "ok" | Denied | "forbidden" | "peer-missing");
  }

  async closeRoom(c: Caller, closed: Outgoing) {
    const [status, ...sessions] = (await this.run("CLOSE_ROOM", [roomKey(c.roomId)], [c.peerId, c.tokenHash, closed.body], c)) as string[];
    return status === "closed" ? { sessions } : (status as Denied | "forbidden");
  }

  async send(c: Caller, to: string, message: Outgoing, now: number): Promise<SendResult> {
    const [status, id] = (await this.run("SEND", [roomKey(c.roomId), inboxKey(c.roomId, to)], [
      now, c.peerId, c.tokenHash, to, message.type, message.body,
    ], c)) as string[];
    return status === "ok" ? { id } : (status as SendResult);
  }

  async chargeCall(c: Caller, now: number) {
    return (await this.run("CHARGE_CALL", [roomKey(c.roomId)], [now, c.peerId, c.tokenHash], c)) as "ok" | Denied;
  }

  async read(c: Caller, after: string | null, now: number, waiter = "", from?: string): Promise<StoredMessage[] | Denied> {
    const [status, entries] = (await this.run("READ", [roomKey(c.roomId), inboxKey(c.roomId, c.peerId)], [
      now, c.peerId, c.tokenHash, after ?? "", after ? idAfter(after) : "", READ_BATCH, waiter, from ?? after ?? "",
    ], c)) as Reply[];
    if (status === "closed") return [{ id: CLOSED_MESSAGE_ID, body: entries as string }];
    return status === "ok" ? messagesFrom(entries) : (status as Denied);
  }

  async take(c: Caller, type: string, now: number, waiter = ""): Promise<StoredMessage[] | Denied> {
    const [status, entries] = (await this.run("TAKE", [roomKey(c.roomId), inboxKey(c.roomId, c.peerId)], [
      now, c.peerId, c.tokenHash, type, READ_BATCH, waiter,
    ], c)) as Reply[];
    return status === "ok" ? messagesFrom(entries) : (status as Denied);
  }

  async chat(c: Caller, message: Outgoing, historyMax: number, now: number, limits: ChatLimits | null): Promise<ChatSent | Denied | "room-busy"> {
    const { perSender = 0, perRoom = 0, windowMs = 0 } = limits ?? {};
    const reply = (await this.run("CHAT", [roomKey(c.roomId), chatKey(c.roomId)], [now, c.peerId, c.tokenHash, message.body, historyMax, perSender, perRoom, windowMs], c)) as Reply[];
    const [status, ...rest] = reply;
    if (status === "rate-limited") return { sent: false, window: { limit: Number(rest[0]), remaining: 0, reset: Number(rest[1]) } };
    if (status !== "ok") return status as Denied | "room-busy";
    const [name, limit, remaining, reset] = rest;
    return { sent: true, name: JSON.parse(name as string), ...(limits ? { window: { limit: Number(limit), remaining: Number(remaining), reset: Number(reset) } } : {}) };
  }

  async chatHistory(c: Caller) {
    const [status, bodies] = (await this.run("CHAT_HISTORY", [roomKey(c.roomId), chatKey(c.roomId)], [c.peerId, c.tokenHash], c)) as Reply[];
    return status === "ok" ? (bodies as string[]) : (status as Denied);
  }

  async putSession(c: Caller, sessionId: string, record: string, max: number, now: number, expiresAt?: number) {
    return (await this.run("PUT_SESSION", [roomKey(c.roomId)], [c.peerId, c.tokenHash, sessionId, record, max, now, expiresAt ?? ""], c)) as "ok" | "limit" | Denied | "forbidden";
  }

  async removeSession(c: Caller, sessionId: string) {
    const [status, record] = (await this.run("REMOVE_SESSION", [roomKey(c.roomId)], [c.peerId, c.tokenHash, sessionId], c)) as Reply[];
    return status === "ok" ? { record: typeof record === "string" ? record : null } : (status as Denied | "forbidden");
  }

  async scheduleSessionEnd(roomId: string, sessionId: string, at: number) {
    await this.run("SCHEDULE_END", [SESSION_ENDS_KEY], [`${roomId}/${sessionId}`, at, at + DAY_MS]);
  }

  async dueSessions(now: number, max: number) {
    const members = (await this.guard(() => this.transport.command(SESSION_ENDS_KEY, ["ZRANGE", SESSION_ENDS_KEY, "-inf", String(now), "BYSCORE", "LIMIT", "0", String(max)]))) as string[];
    return members.map((m) => ({ roomId: m.slice(0, m.indexOf("/")), sessionId: m.slice(m.indexOf("/") + 1) }));
  }

  async endSession(roomId: string, sessionId: string) {
    const record = (await this.run("END_SESSION", [roomKey(roomId)], [sessionId])) as string | null;
    await this.guard(() => this.transport.command(SESSION_ENDS_KEY, ["ZREM", SESSION_ENDS_KEY, `${roomId}/${sessionId}`]));
    return typeof record === "string" ? record : null;
  }

  async issueTicket(c: Caller, ticketHash: string, ttlMs: number, now: number) {
    return (await this.run("ISSUE_TICKET", [roomKey(c.roomId)], [c.peerId, c.tokenHash, ticketHash, now + ttlMs, now], c)) as "ok" | Denied;
  }

  async redeemTicket(roomId: string, peerId: string, ticketHash: string, now: number): Promise<Caller | null> {
    const tokenHash = await this.run("REDEEM_TICKET", [roomKey(roomId)], [peerId, ticketHash, now]);
    return typeof tokenHash === "string" ? { roomId, peerId, tokenHash } : null;
  }

  async listen(roomId: string, peerId: string): Promise<Listener> {
    const subscription = this.transport.subscribe(
      channelName(roomId, peerId),
      (payload) => queue.push(parseWake(payload)),
      () => queue.push({ kind: "lost" }),
    );
    const queue = new WakeQueue(() => subscription.close());
    let timer: NodeJS.Timeout | undefined;
    // A subscription Redis does not confirm in time is a command it did not answer: 503.
    const timeoutMs = this.transport.timeoutMs;
    try {
      await Promise.race([
        subscription.ready,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`subscription not confirmed within ${timeoutMs} ms`)), timeoutMs))),
      ]);
    } catch (error) {
      queue.close();
      throw new StoreUnavailable(error);
    } finally {
      clearTimeout(timer);
    }
    return queue;
  }

  async ping(): Promise<number> {
    const started = performance.now();
    await this.guard(() => this.transport.ping());
    return performance.now() - started;
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  /**
   * Runs a script; for a caller with a charge not yet taken, the script charges it once it has
   * verified the caller (lib/store/lua.ts), and the charge's window is recorded on it.
   */
  private async run(name: ScriptName, keys: string[], args: (string | number)[], caller?: Caller): Promise<unknown> {
    const due = caller?.charge && !caller.charge.window ? caller.charge : undefined;
    const charge = due ? `${due.max} ${due.windowMs} ${Date.now()}${due.ifMail ? " if-mail" : ""}` : "";
    const [charged, reply] = (await this.guard(() => this.transport.script(name, keys, [...args.map(String), charge]))) as [Reply, Reply?];
    if (Array.isArray(charged) && due) {
      const [limit, remaining, reset, ok] = charged.map(Number);
      due.window = { limit, remaining, reset };
      if (!ok) throw new RateLimited(due.window);
    } else if (due?.ifMail) caller!.charge = undefined;
    return reply ?? null;
  }

  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    if (this.inFlight >= this.maxInFlight) throw new StoreBusy();
    this.inFlight++;
    try {
      return await operation();
    } catch (error) {
      throw new StoreUnavailable(error);
    } finally {
      this.inFlight--;
    }
  }
}
