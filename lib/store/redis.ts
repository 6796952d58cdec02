/**
 * The production store: Redis, through Upstash's REST API or over TCP (lib/store/transport.ts).
 * Every operation is one Lua script (lib/store/lua.ts), so one round trip, through the typed
 * boundary of lib/store/scripts.ts; a waiting read subscribes to the peer's channel (Upstash
 * serves SUBSCRIBE as server-sent events, lib/store/rest-subscription.ts; TCP shares one
 * subscriber connection per process).
 */
import { nanoid } from "nanoid";
import type { z } from "zod";
import { channelName, replyKey, roomKeys, SESSION_ENDS_KEY } from "./keys.js";
import * as S from "./scripts.js";
import type { Script } from "./scripts.js";
import type { RedisTransport } from "./transport.js";
import { parseWake, WakeQueue } from "./wake-queue.js";
import {
  CLOSED_MESSAGE_ID,
  DENIED_NOTICE_MS,
  IdempotencyMismatch,
  READ_BATCH,
  RateLimited,
  StoreBusy,
  StoreUnavailable,
  type AdmitMessages,
  type Answer,
  type Call,
  type ChatLimits,
  type Denied,
  type JoinGate,
  type Listener,
  type MailBudget,
  type NewRoom,
  type Once,
  type Outgoing,
  type PeerInfo,
  type RoomInfo,
  type RoomView,
  type SignalStore,
} from "./types.js";

const DAY_MS = 86_400_000;

/**
 * How long a step keeps its reply when its request brought no idempotency key: long enough for
 * the transport's own retries (@upstash/redis resends within a second of a network error) to find it.
 */
export const RETRY_WINDOW_MS = 10_000;

/** A room's info as stored (JSON); rooms made before access existed are open. */
function roomInfo(json: string): Omit<RoomInfo, "expiresAt" | "locked"> {
  const info: Omit<RoomInfo, "expiresAt" | "locked"> = JSON.parse(json);
  return { ...info, access: info.access ?? "open", lobby: info.lobby ?? false };
}

/** A room as the scripts answer it (lib/store/scripts.ts: View). */
function viewFrom(v: { info: string; exp: number; locked: boolean; peers: string[] }): RoomView {
  const peers: PeerInfo[] = v.peers.map((p) => JSON.parse(p));
  peers.sort((a, b) => a.joinedAt - b.joinedAt);
  return { room: { ...roomInfo(v.info), expiresAt: v.exp, locked: v.locked }, peers };
}

/** Why the store is unreachable, in words for an operator (the start-up check): never a secret. */
export function explainUnavailable(error: unknown, where = "UPSTASH_REDIS_REST_URL (or KV_REST_API_URL)"): string {
  const cause = String((error as Error)?.cause ?? error);
  if (/unauthori[sz]ed|WRONGPASS|invalid.*token/i.test(cause)) return "Upstash rejected the token: check UPSTASH_REDIS_REST_TOKEN (or KV_REST_API_TOKEN)";
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|fetch failed|timeout|aborted|did not answer/i.test(cause)) return `Redis cannot be reached at ${where}: check the URL, and that it is up`;
  return `Redis answered with an error: ${cause.split(", command was:")[0]}`;
}

type Reply = { status: string; charged?: { limit: number; remaining: number; reset: number; ok: boolean }; replayed?: boolean };

/** A verified caller's reply as an Answer: past its call limit, RateLimited (the step did nothing). */
function answer<R extends Reply, T>(reply: R, value: (reply: R) => T): Answer<T> {
  const { charged, replayed } = reply;
  const window = charged ? { limit: charged.limit, remaining: charged.remaining, reset: charged.reset } : undefined;
  if (charged && !charged.ok) throw new RateLimited(window!);
  return { value: value(reply), ...(window ? { window } : {}), ...(replayed ? { replayed } : {}) };
}

/** Whether a reply answers its request (not a mismatch: the same key with another request). */
const answers = <R extends Reply>(reply: R): reply is Exclude<R, z.infer<typeof S.Mismatch>> => reply.status !== "idempotency-mismatch";

/** The refusals every verified-caller script shares, as the store's interface names them. */
const denial = (status: string): Denied | null => (status === "room-missing" || status === "unauthorized" || status === "not-admitted" ? status : null);

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

  async createRoom(r: NewRoom, now: number, once?: Once) {
    const reply = await this.run(S.CREATE_ROOM, r.room.roomId, now, {
      roomJson: JSON.stringify(r.room), hostJson: JSON.stringify(r.host), hostId: r.host.peerId, maxPeers: r.room.maxPeers,
      topology: r.room.topology, lobby: r.room.lobby || undefined, ttlMs: r.ttlMs, capAt: r.capAt, hostTokenHash: r.hostTokenHash,
      inboxMax: this.budget.inboxMax, mailMaxBytes: this.budget.roomMailMaxBytes, joinKeyHash: r.joinKeyHash,
    }, once);
    return answer(reply, (x) => (x.status === "ok" ? { room: { ...roomInfo(x.info), expiresAt: x.exp, locked: false } } : ("exists" as const)));
  }

  async describeRoom(roomId: string, now: number): Promise<RoomView | null> {
    const reply = await this.run(S.DESCRIBE_ROOM, roomId, now, {});
    return reply.status === "ok" ? viewFrom(reply) : null;
  }

  async listPeers(c: Call, now: number) {
    const reply = await this.run(S.LIST_PEERS, c.roomId, now, this.verified(c), undefined, c);
    return answer(reply, (x) => (x.status === "ok" ? viewFrom(x) : this.denied(x.status)));
  }

  async joinRoom(roomId: string, peer: PeerInfo, tokenHash: string, announce: Outgoing, now: number, gate: JoinGate = {}, once?: Once) {
    const reply = await this.run(S.JOIN_ROOM, roomId, now, {
      peer: peer.peerId, peerJson: JSON.stringify(peer), tokenHash, announce, joinKeyHash: gate.joinKeyHash, byHost: gate.byHost || undefined,
      knock: gate.lobby?.knock.body, waitUntil: gate.lobby?.until,
    }, once);
    return answer(reply, (x) => {
      if (x.status !== "ok") return x.status;
      return "waiting" in x ? { waiting: true as const, expiresAt: x.until } : viewFrom(x);
    });
  }

  async leaveRoom(c: Call, peerId: string, announce: Outgoing, closed: Outgoing, now: number) {
    const reply = await this.run(S.LEAVE_ROOM, c.roomId, now, { ...this.verified(c), target: peerId, announce, closed: closed.body }, c.once, c);
    return answer(reply, (x) => {
      if (x.status === "ok") return x.sessions ? { sessions: x.sessions } : ("ok" as const);
      return x.status === "forbidden" || x.status === "peer-missing" ? x.status : this.denied(x.status);
    });
  }

  async closeRoom(c: Call, closed: Outgoing, now: number) {
    const reply = await this.run(S.CLOSE_ROOM, c.roomId, now, { ...this.verified(c), closed: closed.body }, c.once, c);
    return answer(reply, (x) => (x.status === "ok" ? { sessions: x.sessions } : x.status === "forbidden" ? x.status : this.denied(x.status)));
  }

  async send(c: Call, to: string, message: Outgoing, now: number) {
    const reply = await this.run(S.SEND, c.roomId, now, { ...this.verified(c), to, type: message.type, body: message.body }, c.once, c);
    return answer(reply, (x) => {
      if (x.status === "ok") return { id: x.id };
      if (x.status === "forbidden" || x.status === "peer-missing" || x.status === "inbox-full" || x.status === "room-busy") return x.status;
      return this.denied(x.status);
    });
  }

  async read(c: Call, after: string | null, now: number, waiter?: string, from?: string) {
    const reply = await this.run(S.READ, c.roomId, now, { ...this.verified(c), after: after ?? undefined, from, batch: READ_BATCH, mark: waiter }, undefined, c);
    return answer(reply, (x) => {
      if (x.status === "closed") return [{ id: CLOSED_MESSAGE_ID, body: x.body }];
      return x.status === "ok" ? x.messages : this.denied(x.status);
    });
  }

  async take(c: Call, type: string, now: number, waiter?: string) {
    const reply = await this.run(S.TAKE, c.roomId, now, { ...this.verified(c), type, batch: READ_BATCH, mark: waiter }, c.once, c);
    return answer(reply, (x) => (x.status === "ok" ? x.messages : this.denied(x.status)));
  }

  async putSession(c: Call, sessionId: string, record: string, max: number, now: number, expiresAt?: number) {
    const reply = await this.run(S.PUT_SESSION, c.roomId, now, { ...this.verified(c), sessionId, record, max, expiresAt }, c.once, c);
    return answer(reply, (x) => (x.status === "ok" || x.status === "forbidden" || x.status === "limit" ? x.status : this.denied(x.status)));
  }

  async removeSession(c: Call, sessionId: string, now: number) {
    const reply = await this.run(S.REMOVE_SESSION, c.roomId, now, { ...this.verified(c), sessionId }, c.once, c);
    return answer(reply, (x) => (x.status === "ok" ? { record: x.record ?? null } : x.status === "forbidden" ? x.status : this.denied(x.status)));
  }

  async endSession(roomId: string, sessionId: string, now: number) {
    const { record } = await this.run(S.END_SESSION, roomId, now, { sessionId });
    await this.run(S.UNSCHEDULE_END, null, now, { member: `${roomId}/${sessionId}` });
    return record ?? null;
  }

  async admit(c: Call, peerId: string, allow: boolean, messages: AdmitMessages, now: number) {
    const reply = await this.run(S.ADMIT, c.roomId, now, {
      ...this.verified(c), target: peerId, allow, admitted: messages.admitted.body, denied: messages.denied.body, announce: messages.announce,
      deniedUntil: now + DENIED_NOTICE_MS,
    }, c.once, c);
    return answer(reply, (x) => (x.status === "ok" || x.status === "forbidden" || x.status === "peer-missing" || x.status === "room-full" ? x.status : this.denied(x.status)));
  }

  async chargeCall(c: Call, now: number) {
    const reply = await this.run(S.CHARGE_CALL, c.roomId, now, this.verified(c), undefined, c);
    return answer(reply, (x) => (x.status === "ok" ? x.status : this.denied(x.status)));
  }

  async setLocked(c: Call, locked: boolean, now: number) {
    const reply = await this.run(S.SET_LOCKED, c.roomId, now, { ...this.verified(c), locked }, c.once, c);
    return answer(reply, (x) => (x.status === "ok" || x.status === "forbidden" ? x.status : this.denied(x.status)));
  }

  async rotateJoinKey(c: Call, joinKeyHash: string, now: number) {
    const reply = await this.run(S.ROTATE_JOIN_KEY, c.roomId, now, { ...this.verified(c), joinKeyHash }, c.once, c);
    return answer(reply, (x) => (x.status === "ok" || x.status === "forbidden" || x.status === "open-room" ? x.status : this.denied(x.status)));
  }

  async issueTicket(c: Call, ticketHash: string, ttlMs: number, now: number) {
    const reply = await this.run(S.ISSUE_TICKET, c.roomId, now, { ...this.verified(c), ticketHash, expiresAt: now + ttlMs }, c.once, c);
    return answer(reply, (x) => (x.status === "ok" ? x.status : this.denied(x.status)));
  }

  async redeemTicket(roomId: string, peerId: string, ticketHash: string, now: number) {
    const reply = await this.run(S.REDEEM_TICKET, roomId, now, { peerId, ticketHash });
    return reply.status === "ok" ? { roomId, peerId, tokenHash: reply.tokenHash } : null;
  }

  async chat(c: Call, message: Outgoing & { at: number }, historyMax: number, now: number, limits: ChatLimits | null) {
    const reply = await this.run(S.CHAT, c.roomId, now, { ...this.verified(c), body: message.body, at: message.at, historyMax, limits: limits ?? undefined }, c.once, c);
    return answer(reply, (x) => {
      if (x.status === "ok") return { sent: true as const, at: x.at, name: x.name ?? null, ...(x.window ? { window: x.window } : {}) };
      if (x.status === "chat-limited") return { sent: false as const, window: x.window };
      return x.status === "room-busy" ? x.status : this.denied(x.status);
    });
  }

  async chatHistory(c: Call, now: number) {
    const reply = await this.run(S.CHAT_HISTORY, c.roomId, now, this.verified(c), undefined, c);
    return answer(reply, (x) => (x.status === "ok" ? x.bodies : this.denied(x.status)));
  }

  async scheduleSessionEnd(roomId: string, sessionId: string, at: number) {
    await this.run(S.SCHEDULE_END, null, at, { member: `${roomId}/${sessionId}`, at, keepUntil: at + DAY_MS });
  }

  async dueSessions(now: number, max: number) {
    const { members } = await this.run(S.DUE_SESSIONS, null, now, { max });
    return members.map((m) => ({ roomId: m.slice(0, m.indexOf("/")), sessionId: m.slice(m.indexOf("/") + 1) }));
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

  /** What every verified-caller script takes; the charge, if any, rides in `run`. */
  private verified(c: Call) {
    return { caller: c.peerId, tokenHash: c.tokenHash };
  }

  /** A refusal every verified-caller script shares; anything else there would be a script's bug. */
  private denied(status: string): Denied {
    const known = denial(status);
    if (!known) throw new Error(`unexpected store reply: ${status}`);
    return known;
  }

  /**
   * Runs a script on `roomId`'s keys (null: the AI deadline index) with `args` as its one JSON
   * argument, and decodes its reply. A script that changes something declares the request's
   * reply key too: `once`, or one of its own for a transport that retries. A caller's charge
   * goes to the script only if the caller gives one.
   */
  private async run<A, R extends Reply>(script: Script<A, R>, roomId: string | null, now: number, args: A, once?: Once, call?: Call): Promise<Exclude<R, z.infer<typeof S.Mismatch>>> {
    let keys = [SESSION_ENDS_KEY];
    let op: Once | undefined;
    if (roomId !== null) {
      keys = roomKeys(roomId);
      // A step without the request's key gets one of its own if the transport may retry it.
      op = script.changes ? (once ?? (this.transport.retries ? { key: nanoid(), fingerprint: "", ttlMs: RETRY_WINDOW_MS } : undefined)) : undefined;
      if (op) keys.push(replyKey(roomId, op.key, script.name));
    }
    const argument = JSON.stringify({ ...args, now, ...(call?.charge ? { charge: call.charge } : {}), ...(op ? { once: { fingerprint: op.fingerprint, ttlMs: op.ttlMs } } : {}) });
    const raw = await this.guard(() => this.transport.script(script.name, keys, [argument]));
    if (typeof raw !== "string") throw new Error(`${script.name} answered ${JSON.stringify(raw)}`);
    const reply = script.reply.parse(JSON.parse(raw));
    if (!answers(reply)) throw new IdempotencyMismatch();
    return reply;
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
