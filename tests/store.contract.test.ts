/**
 * The store contract: what both stores promise (lib/store/types.ts), run against each —
 * the memory store, and the Redis store through the Upstash REST bridge to redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashToken, newPeerId, newRoomId } from "../lib/ids.js";
import { MemoryStore } from "../lib/store/memory.js";
import { RedisStore } from "../lib/store/redis.js";
import { RestTransport } from "../lib/store/transport.js";
import { CLOSED_MESSAGE_ID, DENIED_NOTICE_MS, ENTRY_OVERHEAD, RECIPIENT_OVERHEAD, LOBBY_MAX, LOBBY_WAIT_MS, RateLimited, type Access, type Answer, type Call, type Caller, type Outgoing, type RoomView, type Waiting, type PeerInfo, type SignalStore, type Topology } from "../lib/store/types.js";
import { startUpstashBridge, type Bridge } from "../scripts/upstash-bridge.js";
import { createClient } from "redis";
import { ALL_STORES, available as isAvailable, clusterUrl, redisUrl } from "./support/harness.js";
import { TcpTransport } from "../lib/store/tcp.js";

/** A step's value (most cases look at that alone; the charge cases at the whole Answer). */
const value = <T>(answer: Promise<Answer<T>>) => answer.then((a) => a.value);

/** Message ids in order: by millisecond, then sequence. */
const byId = (a: string, b: string) => {
  const [[ma, sa], [mb, sb]] = [a.split("-").map(Number), b.split("-").map(Number)];
  return ma - mb || sa - sb;
};

/** The store's operations whose first argument is the caller. */
type CallerOp = {
  [K in keyof SignalStore]: SignalStore[K] extends (...args: never[]) => unknown ? (Parameters<SignalStore[K]>[0] extends Caller ? K : never) : never;
}[keyof SignalStore];

const INBOX_MAX = 20;
const MAIL_MAX_BYTES = 64 * 1024;
const BUDGET = { inboxMax: INBOX_MAX, roomMailMaxBytes: MAIL_MAX_BYTES };
const HOUR = 3_600_000;

const msg = (type: string, n = 0) => ({ type, body: JSON.stringify({ type, n }), at: 0 });
/** What a host's answer to a knock delivers (the store adds the room, peers and joiner). */
const ANSWERS = { admitted: msg("admitted"), denied: msg("denied"), announce: msg("peer-joined") };
const bodyN = (m: { body: string }) => JSON.parse(m.body).n as number;

/** A join that got in (not refused, not waiting in a lobby). */
function inRoom(joined: RoomView | Waiting | string): RoomView {
  if (typeof joined === "string" || "waiting" in joined) throw new Error(`not in the room: ${JSON.stringify(joined)}`);
  return joined;
}

/**
 * `npm run check:upstash` runs this suite against a real Upstash database instead (its URL and
 * token in UPSTASH_REDIS_REST_URL/_TOKEN): an operator's check of what the bridge stands in for.
 */
const upstash = process.env.SIGNALBOX_CHECK_UPSTASH === "1" ? { url: process.env.UPSTASH_REDIS_REST_URL!, token: process.env.UPSTASH_REDIS_REST_TOKEN! } : null;

describe.each(upstash ? (["upstash"] as const) : ALL_STORES)("store contract [%s]", (kind) => {
  let store: SignalStore;
  let bridge: Bridge | undefined;
  const available = (k: typeof kind) => k === "upstash" || isAvailable(k);

  beforeAll(async () => {
    if (!available(kind)) return;
    if (kind === "upstash") {
      store = new RedisStore(new RestTransport(upstash!), BUDGET);
    } else if (kind === "redis") {
      bridge = await startUpstashBridge({ redisUrl: redisUrl() });
      store = new RedisStore(new RestTransport({ url: bridge.url, token: bridge.token }), BUDGET);
    } else if (kind !== "memory") {
      const cluster = kind === "redis-cluster";
      store = new RedisStore(new TcpTransport({ url: cluster ? clusterUrl() : redisUrl(), cluster, commandTimeoutMs: 3000 }), BUDGET);
    } else {
      store = new MemoryStore(BUDGET);
    }
  });
  afterAll(async () => {
    await store?.close();
    await bridge?.close();
  });

  interface Made {
    roomId: string;
    host: Caller;
    viewers: Caller[];
  }

  /** A room with a host and `viewers` joined peers; tokens are stand-ins, as the store sees only hashes. */
  async function makeRoom(opts: { topology?: Topology; viewers?: number; maxPeers?: number; ttlMs?: number; capMs?: number; joinKeyHash?: string; lobby?: boolean; access?: Access } = {}): Promise<Made> {
    const now = Date.now();
    const roomId = newRoomId();
    const hostId = newPeerId();
    const host: PeerInfo = { peerId: hostId, role: "host", joinedAt: now };
    const ttlMs = opts.ttlMs ?? HOUR;
    const created = await value(store.createRoom(
      {
        room: { roomId, topology: opts.topology ?? "star", maxPeers: opts.maxPeers ?? 10, hostId, createdAt: now, access: opts.access ?? (opts.joinKeyHash ? "key" : "open"), lobby: opts.lobby ?? false },
        ...(opts.joinKeyHash ? { joinKeyHash: opts.joinKeyHash } : {}),
        ttlMs,
        capAt: now + (opts.capMs ?? 24 * HOUR),
        host,
        hostTokenHash: hashToken(`token-${hostId}`),
      },
      now,
    ));
    expect(created).toEqual({ room: expect.objectContaining({ roomId, hostId, expiresAt: now + ttlMs, locked: false }) });
    const viewers: Caller[] = [];
    for (let i = 0; i < (opts.viewers ?? 0); i++) viewers.push(await join(roomId));
    return { roomId, host: { roomId, peerId: hostId, tokenHash: hashToken(`token-${hostId}`) }, viewers };
  }

  /** Join times that never tie (peers are listed by join time; over TCP two joins often share a millisecond). */
  let lastJoin = 0;
  async function join(roomId: string, name?: string): Promise<Caller> {
    const peerId = newPeerId();
    lastJoin = Math.max(Date.now() + 1, lastJoin + 1);
    const peer: PeerInfo = { peerId, role: "viewer", joinedAt: lastJoin, ...(name ? { name } : {}) };
    const joined = await value(store.joinRoom(roomId, peer, hashToken(`token-${peerId}`), msg("peer-joined"), Date.now()));
    if (typeof joined === "string") throw new Error(joined);
    return { roomId, peerId, tokenHash: hashToken(`token-${peerId}`) };
  }

  const send = (from: Caller, to: Caller, m: Outgoing) => value(store.send(from, to.peerId, m, Date.now()));
  const read = (c: Caller, after: string | null = null) => value(store.read(c, after, Date.now()));
  const take = (c: Caller, type: string) => value(store.take(c, type, Date.now()));
  /** Reads and acknowledges everything pending. */
  async function ackAll(c: Caller) {
    const pending = (await read(c)) as { id: string }[];
    if (pending.length) await read(c, pending.at(-1)!.id);
  }

  it.skipIf(!available(kind))("creates a room once per ID and describes it without secrets", async () => {
    const { roomId, host } = await makeRoom();
    const view = await store.describeRoom(roomId, Date.now());
    expect(view?.room).toMatchObject({ roomId, topology: "star", maxPeers: 10, hostId: host.peerId });
    expect(view?.room.expiresAt).toBeGreaterThan(Date.now() + HOUR - 60_000);
    expect(view?.peers).toEqual([expect.objectContaining({ peerId: host.peerId, role: "host" })]);
    expect(JSON.stringify(view)).not.toContain(host.tokenHash);
    const again = await value(store.createRoom(
      { room: { roomId, topology: "mesh", maxPeers: 2, hostId: "x", createdAt: 0, access: "open", lobby: false }, ttlMs: HOUR, capAt: Date.now() + HOUR, host: { peerId: "x", role: "host", joinedAt: 0 }, hostTokenHash: "h" },
      Date.now(),
    ));
    expect(again).toBe("exists");
    expect((await store.describeRoom(roomId, Date.now()))?.room.topology).toBe("star");
    expect(await store.describeRoom(newRoomId(), Date.now())).toBeNull();
  });

  it.skipIf(!available(kind))("a star viewer's join carries the host and itself, however full the room; a mesh join carries everyone", async () => {
    const star = await makeRoom({ viewers: 5 });
    const peer = { peerId: newPeerId(), role: "viewer" as const, joinedAt: Date.now() };
    const joined = inRoom(await value(store.joinRoom(star.roomId, peer, "h", msg("peer-joined"), Date.now())));
    expect(joined.peers.map((p) => p.peerId)).toEqual([star.host.peerId, peer.peerId]);
    expect(joined.room).toMatchObject({ roomId: star.roomId, topology: "star", hostId: star.host.peerId, expiresAt: expect.any(Number) });
    const mesh = await makeRoom({ topology: "mesh", viewers: 3 });
    const other = { peerId: newPeerId(), role: "viewer" as const, joinedAt: Math.max(Date.now(), lastJoin) + 1 };
    const meshJoined = inRoom(await value(store.joinRoom(mesh.roomId, other, "h", msg("peer-joined"), Date.now())));
    expect(meshJoined.peers.map((p) => p.peerId)).toEqual([mesh.host.peerId, ...mesh.viewers.map((v) => v.peerId), other.peerId]);
  });

  it.skipIf(!available(kind))("a key room lets in only who has its key, the current one; a locked room no one new", async () => {
    const { roomId, host, viewers } = await makeRoom({ joinKeyHash: hashToken("key-1"), viewers: 0 });
    const newcomer = () => ({ peerId: newPeerId(), role: "viewer" as const, joinedAt: Date.now() });
    const joinWith = (key?: string) => value(store.joinRoom(roomId, newcomer(), "h", msg("peer-joined"), Date.now(), key ? { joinKeyHash: hashToken(key) } : {}));
    expect(await joinWith()).toBe("join-key-required");
    expect(await joinWith("key-0")).toBe("join-key-invalid");
    const joined = inRoom(await joinWith("key-1"));
    expect(joined.room).toMatchObject({ access: "key", locked: false });
    expect(JSON.stringify(joined)).not.toContain(hashToken("key-1"));

    expect(await value(store.rotateJoinKey(host, hashToken("key-2"), Date.now()))).toBe("ok");
    expect(await joinWith("key-1"), "the replaced key").toBe("join-key-invalid");
    expect(typeof (await joinWith("key-2"))).toBe("object");

    const viewer = { roomId, peerId: joined.peers.at(-1)!.peerId, tokenHash: "h" };
    expect(await value(store.setLocked(viewer, true, Date.now())), "a viewer").toBe("forbidden");
    expect(await value(store.rotateJoinKey(viewer, hashToken("mine"), Date.now())), "a viewer").toBe("forbidden");
    expect(await value(store.setLocked(host, true, Date.now()))).toBe("ok");
    expect(await joinWith("key-2"), "locked").toBe("room-locked");
    expect((await store.describeRoom(roomId, Date.now()))!.room).toMatchObject({ access: "key", locked: true });
    expect(await value(store.listPeers(viewer, Date.now())), "the peers inside are unaffected").toMatchObject({ room: { locked: true } });
    expect(await value(store.setLocked(host, false, Date.now()))).toBe("ok");
    expect(typeof (await joinWith("key-2"))).toBe("object");
    expect(viewers).toEqual([]);

    const open = await makeRoom();
    expect(await value(store.rotateJoinKey(open.host, hashToken("k"), Date.now()))).toBe("open-room");
    expect(typeof (await value(store.joinRoom(open.roomId, newcomer(), "h", msg("peer-joined"), Date.now(), { joinKeyHash: hashToken("any") })))).toBe("object");
    expect((await store.describeRoom(open.roomId, Date.now()))!.room).toMatchObject({ access: "open", locked: false });
  });

  it.skipIf(!available(kind))("joins up to maxPeers and lists peers in join order", async () => {
    const { roomId, host } = await makeRoom({ maxPeers: 3 });
    const a = await join(roomId, "Ada");
    const b = await join(roomId);
    const peer = { peerId: newPeerId(), role: "viewer" as const, joinedAt: Date.now() };
    expect(await value(store.joinRoom(roomId, peer, "h", msg("peer-joined"), Date.now()))).toBe("room-full");
    expect(await value(store.joinRoom(newRoomId(), peer, "h", msg("peer-joined"), Date.now()))).toBe("room-missing");
    const view = await value(store.listPeers(a, Date.now()));
    if (typeof view === "string") throw new Error(view);
    expect(view.peers.map((p) => p.peerId)).toEqual([host.peerId, a.peerId, b.peerId]);
    expect(view.peers[1]).toMatchObject({ name: "Ada", role: "viewer" });
  });

  describe("the lobby", () => {
    const skip = !available(kind);
    /** Knocks on a lobby room: the caller (its token stand-in) and what the store answered. */
    async function knock(roomId: string, opts: { name?: string; now?: number; until?: number; joinKeyHash?: string } = {}) {
      const now = opts.now ?? Date.now();
      const peerId = newPeerId();
      // (After the host's join time: peers are listed by it.)
      const peer: PeerInfo = { peerId, role: "viewer", joinedAt: now + 1, ...(opts.name ? { name: opts.name } : {}) };
      const until = opts.until ?? now + LOBBY_WAIT_MS;
      const knocked = { type: "knock", body: JSON.stringify({ type: "knock", peer: { peerId, name: opts.name ?? null }, expiresAt: until }) };
      const joined = await value(store.joinRoom(roomId, peer, hashToken(`token-${peerId}`), msg("peer-joined"), now, {
        lobby: { knock: knocked, until },
        ...(opts.joinKeyHash ? { joinKeyHash: opts.joinKeyHash } : {}),
      }));
      return { caller: { roomId, peerId, tokenHash: hashToken(`token-${peerId}`) } as Caller, joined };
    }
    const bodies = async (c: Caller, now = Date.now()) => {
      const found = await value(store.read(c, null, now));
      return typeof found === "string" ? found : found.map((m) => JSON.parse(m.body) as Record<string, unknown>);
    };
    const lobbyRoom = (opts: Parameters<typeof makeRoom>[0] = {}) => makeRoom({ access: "lobby", lobby: true, ...opts });

    it.skipIf(skip)("a joiner waits, out of sight, reading only its own mail, until the host lets it in; then it has what a join gives", async () => {
      const { roomId, host } = await lobbyRoom();
      const now = Date.now();
      const { caller: w, joined } = await knock(roomId, { name: "Ada", now });
      expect(joined).toEqual({ waiting: true, expiresAt: now + LOBBY_WAIT_MS });
      expect(await bodies(host)).toEqual([{ type: "knock", peer: { peerId: w.peerId, name: "Ada" }, expiresAt: now + LOBBY_WAIT_MS }]);
      await ackAll(host);
      // Out of sight: in no list, not addressable, no count.
      expect((await store.describeRoom(roomId, Date.now()))!.peers.map((p) => p.peerId)).toEqual([host.peerId]);
      expect(await value(store.send(host, w.peerId, msg("offer"), Date.now()))).toBe("peer-missing");
      // Its own mail only.
      expect(await read(w)).toEqual([]);
      expect(await take(w, "offer")).toEqual([]);
      expect(await value(store.issueTicket(w, hashToken("t"), 60_000, Date.now()))).toBe("ok");
      expect(await store.redeemTicket(roomId, w.peerId, hashToken("t"), Date.now())).toEqual(w);
      for (const [name, op] of Object.entries(callerOps({ roomId, host, viewers: [host] }))) {
        if (["read", "take", "issueTicket", "leaveRoom", "chargeCall"].includes(name)) continue;
        expect(await op(w), name).toBe("not-admitted");
      }
      expect(await bodies(host), "nothing reached the host").toEqual([]);

      const listener = await store.listen(roomId, w.peerId);
      expect(await value(store.admit(host, w.peerId, true, ANSWERS, Date.now()))).toBe("ok");
      expect((await listener.next(2000)).kind).toBe("message");
      listener.close();
      const [admitted, ...rest] = (await bodies(w)) as Record<string, unknown>[];
      expect(rest).toEqual([]);
      expect(admitted).toMatchObject({ type: "admitted", n: 0, room: { roomId, hostId: host.peerId, access: "lobby", lobby: true, locked: false, expiresAt: expect.any(Number) } });
      expect((admitted.peers as PeerInfo[]).map((p) => p.peerId)).toEqual([host.peerId, w.peerId]);
      expect(await bodies(host)).toEqual([{ type: "peer-joined", n: 0, peer: expect.objectContaining({ peerId: w.peerId, name: "Ada", role: "viewer" }) }]);
      expect(await send(w, host, msg("answer"))).toEqual({ id: expect.any(String) });
      expect((await value(store.listPeers(host, Date.now())) as RoomView).peers.map((p) => p.peerId)).toEqual([host.peerId, w.peerId]);

      // The same answer again (a retried request) does nothing more; the other one is to no one waiting.
      expect(await value(store.admit(host, w.peerId, true, ANSWERS, Date.now()))).toBe("ok");
      expect(await value(store.admit(host, w.peerId, false, ANSWERS, Date.now()))).toBe("peer-missing");
      expect(await bodies(w)).toHaveLength(1);
      expect(await bodies(host)).toHaveLength(2); // peer-joined and the answer: no second peer-joined
      // Only the host answers knocks.
      const { caller: next } = await knock(roomId);
      expect(await value(store.admit(w, next.peerId, true, ANSWERS, Date.now()))).toBe("forbidden");
      expect(await value(store.admit(host, newPeerId(), true, ANSWERS, Date.now()))).toBe("peer-missing");
    });

    it.skipIf(skip)("a mesh room's admitted joiner gets everyone, and everyone hears of it", async () => {
      const { roomId, host, viewers } = await lobbyRoom({ topology: "mesh" });
      expect(viewers).toEqual([]);
      const { caller: a } = await knock(roomId);
      await value(store.admit(host, a.peerId, true, ANSWERS, Date.now()));
      const { caller: b } = await knock(roomId);
      await value(store.admit(host, b.peerId, true, ANSWERS, Date.now()));
      const admittedB = (await bodies(b))[0] as { peers: PeerInfo[] };
      expect(admittedB.peers.map((p) => p.peerId).sort()).toEqual([host.peerId, a.peerId, b.peerId].sort());
      expect(((await bodies(a)) as { type: string }[]).map((m) => m.type)).toEqual(["admitted", "peer-joined"]);
    });

    it.skipIf(skip)("a denied joiner reads that it was, and can do nothing else; after the notice its token is dead", async () => {
      const { roomId, host } = await lobbyRoom();
      const { caller: w } = await knock(roomId);
      const now = Date.now();
      expect(await value(store.admit(host, w.peerId, false, ANSWERS, now))).toBe("ok");
      expect(await value(store.admit(host, w.peerId, false, ANSWERS, now)), "again").toBe("ok");
      expect(await value(store.admit(host, w.peerId, true, ANSWERS, now)), "then let in").toBe("peer-missing");
      expect(await bodies(w)).toEqual([{ type: "denied", n: 0 }]);
      expect(await value(store.send(w, host.peerId, msg("offer"), now))).toBe("not-admitted");
      expect(await value(store.read(w, null, now + DENIED_NOTICE_MS + 1))).toBe("unauthorized");
      expect((await store.describeRoom(roomId, now))!.peers).toHaveLength(1);
    });

    it.skipIf(skip)("a joiner the host never answers: its wait ends, its token stops and its place frees; the lobby holds LOBBY_MAX", async () => {
      const { roomId, host } = await lobbyRoom();
      const now = Date.now();
      const soon = await knock(roomId, { now, until: now + 1000 });
      for (let i = 1; i < LOBBY_MAX; i++) expect((await knock(roomId, { now })).joined).toMatchObject({ waiting: true });
      expect((await knock(roomId, { now })).joined).toBe("lobby-full");
      const listener = await store.listen(roomId, soon.caller.peerId);
      expect(await value(store.read(soon.caller, null, now + 999))).toEqual([]);
      expect(await value(store.read(soon.caller, null, now + 1000)), "its wait is over").toBe("unauthorized");
      expect(await value(store.admit(host, soon.caller.peerId, true, ANSWERS, now + 1000))).toBe("peer-missing");
      expect(await listener.next(2000), "pruned by the host's answer: its reads end").toEqual({ kind: "gone" });
      listener.close();
      await ackAll(host); // (the host's inbox holds INBOX_MAX knocks here: a knock it cannot hear is refused)
      expect((await knock(roomId, { now: now + 1001 })).joined, "its place").toMatchObject({ waiting: true });
      expect((await knock(roomId, { now: now + 1002 })).joined, "full again").toBe("lobby-full");
      await ackAll(host);
      expect((await knock(roomId, { now: now + LOBBY_WAIT_MS + 1002 })).joined, "once the others' waits end, a knock clears them").toMatchObject({ waiting: true });
      expect(await value(store.read(soon.caller, null, now)), "gone, whatever the clock says").toBe("unauthorized");
    });

    it.skipIf(skip)("a joiner may leave the lobby (its knock goes with it), or the host remove it; an answer after that finds no one", async () => {
      const { roomId, host } = await lobbyRoom();
      const { caller: w } = await knock(roomId);
      await ackAll(host);
      expect(await value(store.leaveRoom(w, w.peerId, msg("peer-left", 1), msg("room-closed"), Date.now()))).toBe("ok");
      expect(await bodies(host)).toEqual([{ type: "peer-left", n: 1 }]);
      expect(await read(w)).toBe("unauthorized");
      expect(await value(store.admit(host, w.peerId, true, ANSWERS, Date.now()))).toBe("peer-missing");
      await ackAll(host);
      const { caller: x } = await knock(roomId);
      expect(await value(store.leaveRoom(x, host.peerId, msg("peer-left"), msg("room-closed"), Date.now())), "not the host").toBe("not-admitted");
      expect(await value(store.leaveRoom(host, x.peerId, msg("peer-left", 2), msg("room-closed"), Date.now()))).toBe("ok");
      expect(await read(x)).toBe("unauthorized");
      expect(((await bodies(host)) as { type: string }[]).map((m) => m.type)).toEqual(["knock", "peer-left"]);
      expect(await value(store.listPeers(host, Date.now()))).toMatchObject({ peers: [{ peerId: host.peerId }] });
    });

    it.skipIf(skip)("a lock, a full room or a missing key refuse before anyone knocks; the host's own AI peer walks past every gate", async () => {
      const keyed = await makeRoom({ access: "key", lobby: true, joinKeyHash: hashToken("k"), maxPeers: 3 });
      expect((await knock(keyed.roomId)).joined).toBe("join-key-required");
      expect((await knock(keyed.roomId, { joinKeyHash: hashToken("x") })).joined).toBe("join-key-invalid");
      const a = await knock(keyed.roomId, { joinKeyHash: hashToken("k") });
      const b = await knock(keyed.roomId, { joinKeyHash: hashToken("k") });
      expect(b.joined).toMatchObject({ waiting: true });
      expect(await value(store.admit(keyed.host, a.caller.peerId, true, ANSWERS, Date.now()))).toBe("ok");
      expect(await value(store.setLocked(keyed.host, true, Date.now()))).toBe("ok");
      expect((await knock(keyed.roomId, { joinKeyHash: hashToken("k") })).joined).toBe("room-locked");
      // Locked or not, who waits may still be let in: the host chooses.
      const agent = { peerId: newPeerId(), role: "agent" as const, joinedAt: Date.now() };
      expect(inRoom(await value(store.joinRoom(keyed.roomId, agent, "h", msg("peer-joined"), Date.now(), { byHost: true }))).room.hostId).toBe(keyed.host.peerId);
      expect(await value(store.admit(keyed.host, b.caller.peerId, true, ANSWERS, Date.now())), "3 peers already").toBe("room-full");
      expect(await read(b.caller), "still waiting").toEqual([]);
      await value(store.setLocked(keyed.host, false, Date.now()));
      expect((await knock(keyed.roomId, { joinKeyHash: hashToken("k") })).joined).toBe("room-full");
      expect((await store.describeRoom(keyed.roomId, Date.now()))!.room).toMatchObject({ access: "key", lobby: true });
    });

    it.skipIf(skip)("closing the room wakes its lobby, which reads that it closed", async () => {
      const { roomId, host } = await lobbyRoom();
      const { caller: w } = await knock(roomId);
      const listener = await store.listen(roomId, w.peerId);
      expect(await value(store.closeRoom(host, msg("room-closed", 7), Date.now()))).toEqual({ sessions: [] });
      expect(await listener.next(2000)).toMatchObject({ kind: "closed" });
      listener.close();
      expect(await read(w)).toEqual([{ id: CLOSED_MESSAGE_ID, body: msg("room-closed", 7).body }]);
    });
  });

  /**
   * Every operation that takes a caller, with arguments that would succeed for the right one.
   * The type lists the interface's caller operations itself: a new one cannot be left out.
   */
  const callerOps = (room: Made): Record<CallerOp, (c: Caller) => Promise<unknown>> => {
    const now = Date.now();
    const [viewer] = room.viewers;
    return {
      listPeers: (c) => value(store.listPeers(c, now)),
      leaveRoom: (c) => value(store.leaveRoom(c, viewer.peerId, msg("peer-left"), msg("room-closed"), now)),
      closeRoom: (c) => value(store.closeRoom(c, msg("room-closed"), now)),
      send: (c) => value(store.send(c, c.peerId === room.host.peerId ? viewer.peerId : room.host.peerId, msg("offer"), now)),
      chat: (c) => value(store.chat(c, msg("chat"), 50, now, null)),
      chatHistory: (c) => value(store.chatHistory(c, Date.now())),
      chargeCall: (c) => value(store.chargeCall(c, now)),
      read: (c) => value(store.read(c, null, now, "mark")),
      take: (c) => value(store.take(c, "offer", now, "mark")),
      putSession: (c) => value(store.putSession(c, "ses_x", "{}", 5, now)),
      removeSession: (c) => value(store.removeSession(c, "ses_x", Date.now())),
      issueTicket: (c) => value(store.issueTicket(c, hashToken("ticket"), 60_000, now)),
      setLocked: (c) => value(store.setLocked(c, true, now)),
      rotateJoinKey: (c) => value(store.rotateJoinKey(c, hashToken("key"), now)),
      admit: (c) => value(store.admit(c, viewer.peerId, true, ANSWERS, now)),
    };
  };

  it.skipIf(!available(kind))("refuses a wrong token hash, and a missing room, on every operation that takes a caller, changing nothing", async () => {
    const room = await makeRoom({ viewers: 1 });
    const before = { peers: await value(store.listPeers(room.host, Date.now())), mail: await read(room.host) };
    const listener = await store.listen(room.roomId, room.viewers[0].peerId);
    for (const who of [room.host, room.viewers[0]]) {
      const forged = { ...who, tokenHash: hashToken("guess") };
      const missing = { ...who, roomId: newRoomId() };
      for (const [name, op] of Object.entries(callerOps(room))) {
        expect(await op(forged), `${name}, forged`).toBe("unauthorized");
        expect(await op(missing), `${name}, no room`).toBe("room-missing");
      }
    }
    expect(await value(store.listPeers(room.host, Date.now()))).toEqual(before.peers);
    expect(await read(room.host)).toEqual(before.mail);
    expect(await value(store.chatHistory(room.host, Date.now()))).toEqual([]);
    expect(await value(store.removeSession(room.host, "ses_x", Date.now()))).toEqual({ record: null });
    expect(await listener.next(200)).toEqual({ kind: "timeout" }); // no mark, no mail reached the viewer
    listener.close();
  });

  it.skipIf(!available(kind))("a caller's charge is taken in the step that verifies it: once a request, per peer; past the limit the step does nothing", async () => {
    const { host, viewers } = await makeRoom({ viewers: 1 });
    const [viewer] = viewers;
    const charged = (c: Caller): Call => ({ ...c, charge: { max: 2, windowMs: 3_600_000 } });
    const now = Date.now();
    const first = await store.send(charged(host), viewer.peerId, msg("offer", 1), now);
    expect(first).toEqual({ value: { id: expect.any(String) }, window: { limit: 2, remaining: 1, reset: expect.any(Number) } });
    // The window is the hour the step's own clock falls in.
    const reset = first.window!.reset;
    expect(reset).toBe(now - (now % 3_600_000) + 3_600_000);
    // A step given no charge (a request's further steps) is not charged.
    expect(await store.listPeers(host, now)).toEqual({ value: expect.objectContaining({ peers: expect.any(Array) }) });
    // A forged token spends nothing.
    expect(await store.send(charged({ ...host, tokenHash: hashToken("guess") }), viewer.peerId, msg("offer"), now)).toEqual({ value: "unauthorized" });
    expect(await store.send(charged(host), viewer.peerId, msg("offer", 2), now)).toEqual({ value: { id: expect.any(String) }, window: { limit: 2, remaining: 0, reset } });
    await expect(store.send(charged(host), viewer.peerId, msg("offer", 3), now)).rejects.toEqual(new RateLimited({ limit: 2, remaining: 0, reset }));
    await expect(store.chargeCall(charged(host), now)).rejects.toBeInstanceOf(RateLimited);
    expect(((await read(viewer)) as { body: string }[]).map(bodyN)).toEqual([1, 2]);
    // Another peer has its own; what it is refused is charged too (else refusals would be free to repeat).
    expect(await store.chargeCall(charged(viewer), now)).toMatchObject({ value: "ok", window: { remaining: 1 } });
    expect(await store.setLocked(charged(viewer), true, now)).toEqual({ value: "forbidden", window: { limit: 2, remaining: 0, reset } });
  });

  it.skipIf(!available(kind))("a caller's call limit is a sliding window on the step's clock: just past an hour's edge the hour before still counts", async () => {
    const { host, viewers } = await makeRoom({ viewers: 1, ttlMs: 3 * HOUR });
    const charged: Call = { ...host, charge: { max: 4, windowMs: 3_600_000 } };
    const edge = Math.floor(Date.now() / 3_600_000) * 3_600_000 + 3_600_000;
    const sendAt = (ms: number) => store.send(charged, viewers[0].peerId, msg("candidate"), ms);
    for (let n = 0; n < 4; n++) await sendAt(edge - 60_000);
    await expect(sendAt(edge - 60_000)).rejects.toBeInstanceOf(RateLimited);
    // A minute past the edge, 59/60 of the hour before is still covered: 4 × 59/60 counts as 3.
    expect(await sendAt(edge + 60_000)).toMatchObject({ window: { limit: 4, remaining: 0, reset: edge + 3_600_000 } });
    await expect(sendAt(edge + 60_000), "a budget and a half just past the edge").rejects.toBeInstanceOf(RateLimited);
    // Late in the hour it hardly counts: 4 × 1/60 is nothing, and the hour's own one leaves three.
    expect(await sendAt(edge + 3_540_000), "refused too early late in the hour").toMatchObject({ window: { remaining: 2 } });
  });

  it.skipIf(!available(kind))("a waiting read's first read takes its charge only if it finds mail, in the same step; finding none, it is free", async () => {
    const { host, viewers } = await makeRoom({ viewers: 1 });
    const [viewer] = viewers;
    const firstRead: Call = { ...viewer, charge: { max: 1, windowMs: 3_600_000, ifMail: true } };
    expect(await store.read(firstRead, null, Date.now(), "poll.mark1")).toEqual({ value: [] }); // free: no window
    expect(await send(host, viewer, msg("offer", 1))).toEqual({ id: expect.any(String) });
    const found = await store.read(firstRead, null, Date.now(), "poll.mark2");
    expect((found.value as { body: string }[]).map(bodyN)).toEqual([1]);
    expect(found.window).toMatchObject({ limit: 1, remaining: 0 });
    // Past the limit, a read that finds mail is refused; one that finds none still is not.
    await expect(store.read(firstRead, null, Date.now(), "poll.mark3")).rejects.toBeInstanceOf(RateLimited);
    const [{ id }] = (await value(store.read(viewer, null, Date.now()))) as { id: string }[];
    expect(await store.read(firstRead, id, Date.now(), "poll.mark4")).toEqual({ value: [] });
  });

  it.skipIf(!available(kind))("in a star room a viewer may address only the host; the host anyone", async () => {
    const { host, viewers } = await makeRoom({ viewers: 2 });
    const [a, b] = viewers;
    expect(await send(a, b, msg("offer"))).toBe("forbidden");
    expect(await send(a, host, msg("answer"))).toEqual({ id: expect.any(String) });
    expect(await send(host, b, msg("offer"))).toEqual({ id: expect.any(String) });
    expect(await send(a, a, msg("offer"))).toBe("peer-missing");
    expect(await value(store.send(a, newPeerId(), msg("offer"), Date.now()))).toBe("peer-missing");
    expect(await read(b)).toHaveLength(1);
  });

  it.skipIf(!available(kind))("in a mesh room anyone may address anyone, and everyone hears of joins", async () => {
    const { host, viewers } = await makeRoom({ topology: "mesh", viewers: 2 });
    const [a, b] = viewers;
    expect(await send(a, b, msg("offer"))).toEqual({ id: expect.any(String) });
    const types = async (c: Caller) => ((await read(c)) as { body: string }[]).map((m) => JSON.parse(m.body).type);
    expect(await types(host)).toEqual(["peer-joined", "peer-joined"]);
    expect(await types(a)).toEqual(["peer-joined"]); // b joined after a
    expect(await types(b)).toEqual(["offer"]);
  });

  it.skipIf(!available(kind))("in a star room only the host hears of joins", async () => {
    const { host, viewers } = await makeRoom({ viewers: 2 });
    expect(await read(host)).toHaveLength(2);
    expect(await read(viewers[0])).toEqual([]);
  });

  it.skipIf(!available(kind))("reads in order and keeps messages until acknowledged by id", async () => {
    const { host, viewers } = await makeRoom({ viewers: 1 });
    const [v] = viewers;
    const ids: string[] = [];
    for (let n = 0; n < 5; n++) {
      const sent = await send(host, v, msg("candidate", n));
      if (typeof sent === "string") throw new Error(sent);
      ids.push(sent.id);
    }
    const first = (await read(v)) as { id: string; body: string }[];
    expect(first.map((m) => m.id)).toEqual(ids);
    expect(first.map(bodyN)).toEqual([0, 1, 2, 3, 4]);
    // Ids increase: by millisecond, then by sequence within one.
    const order = (id: string) => id.split("-").map(Number) as [number, number];
    for (let i = 1; i < ids.length; i++) {
      const [[ms0, seq0], [ms1, seq1]] = [order(ids[i - 1]), order(ids[i])];
      expect(ms1 > ms0 || (ms1 === ms0 && seq1 > seq0), `${ids[i - 1]} < ${ids[i]}`).toBe(true);
    }
    // Reading again without acknowledging returns the same messages, same ids.
    expect(await read(v)).toEqual(first);
    // Acknowledging up to the third returns the last two; repeating the same cursor changes nothing.
    const rest = await read(v, ids[2]);
    expect(rest).toEqual(first.slice(3));
    expect(await read(v, ids[2])).toEqual(first.slice(3));
    expect(await read(v, ids[4])).toEqual([]);
    expect(await read(v)).toEqual([]);
  });

  it.skipIf(!available(kind))("a cursor acknowledges exactly up to itself, within one millisecond too", async () => {
    const { host, viewers } = await makeRoom({ viewers: 1 });
    const [v] = viewers;
    // Messages sent at once share a millisecond (ms-0, ms-1, …): look for two that do.
    for (let round = 0; round < 10; round++) {
      const now = Date.now();
      const sent = (await Promise.all(Array.from({ length: 10 }, (_, n) => value(store.send(host, v.peerId, msg("candidate", n), now))))) as { id: string }[];
      const ids = sent.map((s) => s.id).sort(byId);
      const i = ids.findIndex((id, k) => k + 1 < ids.length && id.split("-")[0] === ids[k + 1].split("-")[0]);
      if (i < 0) {
        await ackAll(v);
        continue;
      }
      const rest = (await read(v, ids[i])) as { id: string }[];
      expect(rest.map((m) => m.id)).toEqual(ids.slice(i + 1));
      return;
    }
    throw new Error("no two messages shared a millisecond in 10 rounds");
  });

  it.skipIf(!available(kind))("reads from past what a stream sent, acknowledging only what the client did", async () => {
    const { host, viewers } = await makeRoom({ viewers: 1 });
    const [v] = viewers;
    const ids: string[] = [];
    for (let n = 0; n < 4; n++) ids.push(((await send(host, v, msg("candidate", n))) as { id: string }).id);
    // Sent up to the second, acknowledged nothing: the last two come back, and all four stay.
    expect(((await value(store.read(v, null, Date.now(), undefined, ids[1]))) as { id: string }[]).map((m) => m.id)).toEqual(ids.slice(2));
    expect(((await read(v)) as unknown[]).length).toBe(4);
    // Acknowledged the first, sent up to the third: the fourth comes back; the first is gone.
    expect(((await value(store.read(v, ids[0], Date.now(), undefined, ids[2]))) as { id: string }[]).map((m) => m.id)).toEqual([ids[3]]);
    expect(((await read(v)) as { id: string }[]).map((m) => m.id)).toEqual(ids.slice(1));
  });

  it.skipIf(!available(kind))("a closed room's peers read that it closed, and nothing else; nobody else learns it", async () => {
    const { roomId, host, viewers } = await makeRoom({ viewers: 2 });
    const [a, b] = viewers;
    await send(host, a, msg("offer", 1));
    await value(store.leaveRoom(b, b.peerId, msg("peer-left"), msg("room-closed"), Date.now()));
    expect(await value(store.closeRoom(host, msg("room-closed", 9), Date.now()))).toEqual({ sessions: [] });
    for (const peer of [host, a]) {
      expect(await read(peer), peer === host ? "the host" : "a viewer").toEqual([{ id: CLOSED_MESSAGE_ID, body: msg("room-closed", 9).body }]);
    }
    expect(await read(b), "a peer that had left").toBe("room-missing");
    expect(await read({ ...a, tokenHash: hashToken("guess") }), "a forged token").toBe("room-missing");
    expect(await value(store.listPeers(a, Date.now())), "only reads carry the notice").toBe("room-missing");
    // A room made again under the ID (vanishingly rare) starts without it.
    await value(store.createRoom({ room: { roomId, topology: "star", maxPeers: 2, hostId: host.peerId, createdAt: 0, access: "open", lobby: false }, ttlMs: HOUR, capAt: Date.now() + HOUR, host: { peerId: host.peerId, role: "host", joinedAt: 0 }, hostTokenHash: "other" }, Date.now()));
    await value(store.leaveRoom({ ...host, tokenHash: "other" }, host.peerId, msg("peer-left"), msg("room-closed"), Date.now()));
    expect(await read(a)).toBe("room-missing");
  });

  it.skipIf(!available(kind))("a stream ticket opens once, for its own peer, until it expires or is replaced", async () => {
    const { roomId, host, viewers } = await makeRoom({ viewers: 2 });
    const [a, b] = viewers;
    const now = Date.now();
    expect(await value(store.issueTicket(a, hashToken("t1"), 60_000, now))).toBe("ok");
    expect(await store.redeemTicket(roomId, b.peerId, hashToken("t1"), now), "another peer's name").toBeNull();
    expect(await store.redeemTicket(roomId, a.peerId, hashToken("guess"), now), "a wrong ticket").toBeNull();
    expect(await store.redeemTicket(roomId, a.peerId, hashToken("t1"), now), "the real one, after a wrong guess").toEqual(a);
    expect(await store.redeemTicket(roomId, a.peerId, hashToken("t1"), now), "twice").toBeNull();

    await value(store.issueTicket(a, hashToken("t2"), 60_000, now));
    await value(store.issueTicket(a, hashToken("t3"), 60_000, now));
    expect(await store.redeemTicket(roomId, a.peerId, hashToken("t2"), now), "replaced").toBeNull();
    expect(await store.redeemTicket(roomId, a.peerId, hashToken("t3"), now + 59_000)).toEqual(a);

    await value(store.issueTicket(b, hashToken("t4"), 1_000, now));
    expect(await store.redeemTicket(roomId, b.peerId, hashToken("t4"), now + 1_000), "expired").toBeNull();
    await value(store.issueTicket(b, hashToken("t5"), 60_000, now));
    await value(store.leaveRoom(b, b.peerId, msg("peer-left"), msg("room-closed"), now));
    expect(await store.redeemTicket(roomId, b.peerId, hashToken("t5"), now), "its peer left").toBeNull();
    await value(store.issueTicket(host, hashToken("t6"), 60_000, now));
    expect(await store.redeemTicket(newRoomId(), host.peerId, hashToken("t6"), now), "another room").toBeNull();
  });

  it.skipIf(!available(kind))("takes one type atomically; the rest stays for reads", async () => {
    const { host, viewers } = await makeRoom({ viewers: 1 });
    const [v] = viewers;
    await send(host, v, msg("offer", 1));
    await send(host, v, msg("candidate", 2));
    await send(host, v, msg("candidate", 3));
    const [offers, again] = await Promise.all([take(v, "offer"), take(v, "offer")]);
    expect([offers, again].map((r) => (r as unknown[]).length).sort()).toEqual([0, 1]);
    const left = (await read(v)) as { body: string }[];
    expect(left.map(bodyN)).toEqual([2, 3]);
    expect(((await take(v, "candidate")) as { body: string }[]).map(bodyN)).toEqual([2, 3]);
    expect(await read(v)).toEqual([]);
  });

  it.skipIf(!available(kind))("refuses to overfill an inbox instead of dropping messages", async () => {
    const { host, viewers } = await makeRoom({ viewers: 1 });
    const [v] = viewers;
    for (let n = 0; n < INBOX_MAX; n++) expect(await send(host, v, msg("candidate", n))).toEqual({ id: expect.any(String) });
    expect(await send(host, v, msg("candidate", INBOX_MAX))).toBe("inbox-full");
    const all = (await read(v)) as { id: string; body: string }[];
    expect(all.map(bodyN)).toEqual([...Array(INBOX_MAX).keys()]);
    await read(v, all.at(-1)!.id);
    expect(await send(host, v, msg("candidate", 99))).toEqual({ id: expect.any(String) });
  });

  it.skipIf(!available(kind))("every kind of mail counts against the inbox cap: notices of joins and leaves stop at it for a peer not reading", async () => {
    const { roomId, host } = await makeRoom({ maxPeers: INBOX_MAX + 10 });
    const joined: Caller[] = [];
    for (let n = 0; n < INBOX_MAX - 5; n++) joined.push(await join(roomId));
    for (const v of joined.slice(0, 3)) expect(await value(store.leaveRoom(v, v.peerId, msg("peer-left"), msg("room-closed"), Date.now()))).toBe("ok");
    for (let n = 0; n < 10; n++) await join(roomId);
    // The host read nothing: it holds the first INBOX_MAX notices, and no more.
    const held = (await read(host)) as { body: string }[];
    expect(held.map((m) => JSON.parse(m.body).type)).toEqual([...Array(INBOX_MAX - 5).fill("peer-joined"), ...Array(3).fill("peer-left"), "peer-joined", "peer-joined"]);
  });

  it.skipIf(!available(kind))("knocks count against the host's inbox cap: a knock it has no room to hear is refused", async () => {
    const { roomId, host } = await makeRoom({ access: "lobby", lobby: true });
    const knocked = async () => {
      const peerId = newPeerId();
      const now = Date.now();
      const knock = { type: "knock", body: JSON.stringify({ type: "knock", peerId }) };
      const joined = await value(store.joinRoom(roomId, { peerId, role: "viewer", joinedAt: now + 1 }, hashToken(`token-${peerId}`), msg("peer-joined"), now, { lobby: { knock, until: now + LOBBY_WAIT_MS } }));
      return { joined, caller: { roomId, peerId, tokenHash: hashToken(`token-${peerId}`) } };
    };
    const first = await knocked();
    expect(await value(store.admit(host, first.caller.peerId, true, ANSWERS, Date.now()))).toBe("ok"); // the host: a knock and a peer-joined
    for (let n = 0; n < INBOX_MAX - 4; n++) expect(await send(first.caller, host, msg("candidate", n))).toEqual({ id: expect.any(String) });
    expect((await knocked()).joined).toMatchObject({ waiting: true });
    expect((await knocked()).joined).toMatchObject({ waiting: true });
    expect((await knocked()).joined, "the host's inbox holds INBOX_MAX").toBe("room-busy");
    expect((await read(host)) as unknown[]).toHaveLength(INBOX_MAX);
  });

  it.skipIf(!available(kind))("chat fills at most half of an inbox, and never keeps an offer out", async () => {
    const { host, viewers } = await makeRoom({ viewers: 1 });
    const [v] = viewers;
    await ackAll(host);
    for (let n = 0; n < INBOX_MAX; n++) expect(await value(store.chat(v, msg("chat", n), 50, Date.now(), null))).toMatchObject({ sent: true });
    // The host is not reading: it got half an inbox of chat, the rest only went to the history.
    expect(((await read(host)) as { body: string }[]).map(bodyN)).toEqual([...Array(INBOX_MAX / 2).keys()]);
    expect(((await value(store.chatHistory(host, Date.now()))) as string[])).toHaveLength(INBOX_MAX);
    // Its inbox still takes answers and candidates, up to the whole cap, fan-out included.
    for (let n = 0; n < INBOX_MAX / 2; n++) expect(await send(v, host, msg("candidate", n))).toEqual({ id: expect.any(String) });
    expect(await send(v, host, msg("answer"))).toBe("inbox-full");
    expect(((await take(host, "candidate")) as unknown[]).length).toBe(INBOX_MAX / 2);
    expect(await send(v, host, msg("answer"))).toEqual({ id: expect.any(String) });
  });

  it.skipIf(!available(kind))("a room's unread mail stays within its byte budget, and chat gets at most half", async () => {
    const { host, viewers } = await makeRoom({ topology: "mesh", viewers: 3 });
    for (const c of [host, ...viewers]) await ackAll(c);
    const big = (type: string, n: number) => ({ type, body: JSON.stringify({ type, n, pad: "x".repeat(3000) }), at: 0 });
    const size = ENTRY_OVERHEAD + "chat".length + big("chat", 0).body.length;
    // A chat is kept once, with a place in each of its three recipients' mail; an offer has two
    // places in its one recipient's (in order, and by type). The room refuses the chat that would
    // pass half the budget.
    const chatCost = size + 3 * RECIPIENT_OVERHEAD;
    const offerCost = size + "offer".length - "chat".length + 2 * RECIPIENT_OVERHEAD;
    const fits = Math.floor(MAIL_MAX_BYTES / 2 / chatCost);
    for (let n = 0; n < fits; n++) expect(await value(store.chat(viewers[0], big("chat", n), 50, Date.now(), null))).toMatchObject({ sent: true });
    expect(await value(store.chat(viewers[0], big("chat", fits), 50, Date.now(), null))).toBe("room-busy");
    // Offers still fit in the other half, and only until the whole budget is spent.
    let sent = 0;
    for (let n = 0; ; n++) {
      const result = await send(host, viewers[1 + (n % 2)], big("offer", n));
      if (typeof result === "string") {
        expect(result).toBe("room-busy");
        break;
      }
      sent++;
    }
    expect(sent).toBeGreaterThanOrEqual(Math.floor(MAIL_MAX_BYTES / 2 / offerCost) - 1);
    expect(fits * chatCost + sent * offerCost).toBeLessThanOrEqual(MAIL_MAX_BYTES);
    // Reading gives the bytes back: acknowledged mail no longer counts, nor does a taken offer.
    const mail = (await read(viewers[1])) as { id: string }[];
    await read(viewers[1], mail.at(-1)!.id);
    expect(((await take(viewers[2], "offer")) as unknown[]).length).toBeGreaterThan(0);
    expect(await send(host, viewers[1], big("offer", 99))).toEqual({ id: expect.any(String) });
    // So does a peer leaving with unread mail: a room full of mail for one peer has room again once it goes.
    await ackAll(host);
    while (typeof (await send(host, viewers[2], big("offer", 0))) !== "string");
    expect(await value(store.chat(viewers[0], big("chat", 100), 50, Date.now(), null))).toBe("room-busy");
    expect(await value(store.leaveRoom(viewers[2], viewers[2].peerId, msg("peer-left"), msg("room-closed"), Date.now()))).toBe("ok");
    expect(await value(store.chat(viewers[0], big("chat", 100), 50, Date.now(), null))).toMatchObject({ sent: true });
  });

  it.skipIf(!available(kind))("a take skips what was acknowledged since, and takes oldest first", async () => {
    const { host, viewers } = await makeRoom({ viewers: 1 });
    const [v] = viewers;
    const first = (await send(host, v, msg("candidate", 1))) as { id: string };
    await send(host, v, msg("offer", 2));
    await read(v, first.id); // acknowledges candidate 1
    for (let n = 3; n <= 5; n++) await send(host, v, msg("candidate", n));
    expect(((await take(v, "candidate")) as { body: string }[]).map(bodyN)).toEqual([3, 4, 5]);
    expect(((await take(v, "offer")) as { body: string }[]).map(bodyN)).toEqual([2]);
    expect(await take(v, "candidate")).toEqual([]);
  });

  it.skipIf(!available(kind))("a waiting read's mark reaches the peer's listeners, only with a valid token", async () => {
    const { roomId, viewers } = await makeRoom({ viewers: 1 });
    const [v] = viewers;
    const listener = await store.listen(roomId, v.peerId);
    expect(await value(store.read({ ...v, tokenHash: hashToken("guess") }, null, Date.now(), "forged"))).toBe("unauthorized");
    expect(await value(store.take({ ...v, tokenHash: hashToken("guess") }, "offer", Date.now(), "forged"))).toBe("unauthorized");
    expect(await value(store.read(v, null, Date.now(), "first"))).toEqual([]);
    expect(await value(store.take(v, "offer", Date.now(), "second"))).toEqual([]);
    expect(await value(store.read(v, null, Date.now()))).toEqual([]); // no mark: not a waiting read
    expect(await listener.next(5000)).toEqual({ kind: "waiter", mark: "first" });
    expect(await listener.next(5000)).toEqual({ kind: "waiter", mark: "second" });
    expect(await listener.next(200)).toEqual({ kind: "timeout" });
    listener.close();
  });

  it.skipIf(!available(kind))("a leaving viewer is announced, loses its token and its mail", async () => {
    const { host, viewers } = await makeRoom({ viewers: 2 });
    const [a, b] = viewers;
    await read(host, null);
    expect(await value(store.leaveRoom(a, b.peerId, msg("peer-left"), msg("room-closed"), Date.now()))).toBe("forbidden");
    await send(host, a, msg("offer"));
    expect(await value(store.leaveRoom(a, a.peerId, msg("peer-left", 7), msg("room-closed"), Date.now()))).toBe("ok");
    expect(await read(a)).toBe("unauthorized");
    const hostMail = (await read(host)) as { body: string }[];
    expect(JSON.parse(hostMail.at(-1)!.body)).toEqual({ type: "peer-left", n: 7 });
    expect(await value(store.leaveRoom(host, a.peerId, msg("peer-left"), msg("room-closed"), Date.now()))).toBe("peer-missing");
    // The host removes b.
    expect(await value(store.leaveRoom(host, b.peerId, msg("peer-left"), msg("room-closed"), Date.now()))).toBe("ok");
    const view = await value(store.listPeers(host, Date.now()));
    expect(typeof view !== "string" && view.peers.map((p) => p.peerId)).toEqual([host.peerId]);
  });

  it.skipIf(!available(kind))("closing wakes every listener with the closing message and removes the room", async () => {
    const { roomId, host, viewers } = await makeRoom({ viewers: 2 });
    const listeners = await Promise.all(viewers.map((v) => store.listen(roomId, v.peerId)));
    expect(await value(store.closeRoom(viewers[0], msg("room-closed"), Date.now()))).toBe("forbidden");
    await value(store.putSession(host, "ses_a", '{"callId":"rtc_a"}', 5, Date.now()));
    await value(store.putSession(host, "ses_b", '{"callId":"rtc_b"}', 5, Date.now()));
    // Closing hands back the room's session records, so their calls can be hung up.
    const closed = await value(store.closeRoom(host, msg("room-closed", 5), Date.now()));
    expect(closed).toEqual({ sessions: expect.arrayContaining(['{"callId":"rtc_a"}', '{"callId":"rtc_b"}']) });
    expect(typeof closed === "object" && closed.sessions).toHaveLength(2);
    for (const l of listeners) {
      const wake = await l.next(5000);
      expect(wake).toEqual({ kind: "closed", body: msg("room-closed", 5).body });
      l.close();
    }
    expect(await store.describeRoom(roomId, Date.now())).toBeNull();
    expect(await value(store.listPeers(viewers[0], Date.now()))).toBe("room-missing");
  });

  it.skipIf(!available(kind))("the host leaving closes the room", async () => {
    const { roomId, host } = await makeRoom({ viewers: 1 });
    await value(store.putSession(host, "ses_a", '{"callId":"rtc_a"}', 5, Date.now()));
    expect(await value(store.leaveRoom(host, host.peerId, msg("peer-left"), msg("room-closed"), Date.now()))).toEqual({ sessions: ['{"callId":"rtc_a"}'] });
    expect(await store.describeRoom(roomId, Date.now())).toBeNull();
  });

  it.skipIf(!available(kind))("listeners wake on mail and on removal, and time out otherwise", async () => {
    const { roomId, host, viewers } = await makeRoom({ viewers: 1 });
    const [v] = viewers;
    const listener = await store.listen(roomId, v.peerId);
    const started = Date.now();
    expect(await listener.next(150)).toEqual({ kind: "timeout" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    const woke = listener.next(5000);
    const sent = await send(host, v, msg("offer", 4));
    expect(await woke).toEqual({ kind: "message", message: { id: (sent as { id: string }).id, type: "offer", body: msg("offer", 4).body } });
    await value(store.leaveRoom(host, v.peerId, msg("peer-left"), msg("room-closed"), Date.now()));
    expect(await listener.next(5000)).toEqual({ kind: "gone" });
    const aborted = new AbortController();
    const pending = listener.next(10_000, aborted.signal);
    aborted.abort();
    expect(await pending).toEqual({ kind: "timeout" });
    listener.close();
  });

  it.skipIf(!available(kind))("chat reaches every other peer, even in a star room, and keeps the last messages", async () => {
    const { host, viewers } = await makeRoom({ viewers: 2 });
    await read(host, null).then((m) => read(host, (m as { id: string }[]).at(-1)!.id));
    for (let n = 1; n <= 4; n++) expect(await value(store.chat(viewers[0], msg("chat", n), 3, Date.now(), null))).toMatchObject({ sent: true });
    expect(((await read(host)) as { body: string }[]).map(bodyN)).toEqual([1, 2, 3, 4]);
    expect(((await read(viewers[1])) as { body: string }[]).map(bodyN)).toEqual([1, 2, 3, 4]);
    expect(await read(viewers[0])).toEqual([]); // not to the sender
    expect(((await value(store.chatHistory(viewers[1], Date.now()))) as string[]).map((b) => JSON.parse(b).n)).toEqual([2, 3, 4]);
    expect(await value(store.chat({ ...viewers[0], tokenHash: "x" }, msg("chat"), 3, Date.now(), null))).toBe("unauthorized");
    expect(await value(store.chatHistory({ ...viewers[0], tokenHash: "x" }, Date.now()))).toBe("unauthorized");
  });

  it.skipIf(!available(kind))("chat adds the sender's name as the room knows it, whatever its characters", async () => {
    const { roomId, host } = await makeRoom();
    const names = ['Zoë "Z" \\ O\'Neil /\u0001 😀', '"name":"x"', ""];
    for (const name of names) {
      const sender = await join(roomId, name || undefined);
      await ackAll(host);
      const sent = await value(store.chat(sender, msg("chat"), 50, Date.now(), null));
      expect(sent).toEqual({ sent: true, at: 0, name: name || null });
      const [delivered] = (await read(host)) as { body: string }[];
      expect(JSON.parse(delivered.body)).toEqual({ type: "chat", n: 0, name: name || null });
    }
    expect(((await value(store.chatHistory(host, Date.now()))) as string[]).map((b) => JSON.parse(b).name)).toEqual(["Zoë \"Z\" \\ O'Neil /\u0001 😀", '"name":"x"', null]);
  });

  it.skipIf(!available(kind))("chat charges its limits in the same step: per sender, then per room; past either nothing is sent or kept", async () => {
    const { host, viewers } = await makeRoom({ viewers: 2 });
    await ackAll(host);
    const limits = { perSender: 2, perRoom: 3, windowMs: 60_000 };
    // Clear of a window's edge, so that all of it falls in one window.
    const now = Math.floor(Date.now() / 60_000) * 60_000 + 1000;
    const chat = (c: Caller) => value(store.chat(c, msg("chat"), 50, now, limits));
    expect(await chat(viewers[0])).toEqual({ sent: true, at: 0, name: null, window: { limit: 2, remaining: 1, reset: now - 1000 + 60_000 } });
    expect(await chat(viewers[0])).toMatchObject({ sent: true, window: { limit: 2, remaining: 0 } });
    expect(await chat(viewers[0])).toEqual({ sent: false, window: { limit: 2, remaining: 0, reset: now - 1000 + 60_000 } }); // its own limit
    expect(await chat(viewers[1])).toMatchObject({ sent: true, window: { limit: 3, remaining: 0 } }); // the room's third
    expect(await chat(viewers[1])).toEqual({ sent: false, window: { limit: 3, remaining: 0, reset: now - 1000 + 60_000 } }); // the room's limit
    expect(await value(store.chat({ ...viewers[1], tokenHash: "x" }, msg("chat"), 50, now, limits))).toBe("unauthorized");
    expect((await read(host)) as unknown[]).toHaveLength(3);
    expect((await value(store.chatHistory(host, Date.now()))) as string[]).toHaveLength(3);
    // The next window but one starts afresh (the one after still counts part of this one).
    expect(await value(store.chat(viewers[0], msg("chat"), 50, now + 120_000, limits))).toMatchObject({ sent: true, window: { remaining: 1 } });
  });

  it.skipIf(!available(kind))("chat's sliding window weighs the window before by the part of it still covered: just past an edge and late in a window", async () => {
    const { host, viewers } = await makeRoom({ viewers: 1 });
    await ackAll(host);
    const limits = { perSender: 2, perRoom: 1000, windowMs: 60_000 };
    // Windows are aligned to the minute; the next one starts at `edge`.
    const edge = Math.floor(Date.now() / 60_000) * 60_000 + 60_000;
    const chatAt = (ms: number) => value(store.chat(viewers[0], msg("chat"), 50, ms, limits));
    expect(await chatAt(edge - 1000)).toMatchObject({ sent: true });
    expect(await chatAt(edge - 1000)).toMatchObject({ sent: true });
    // A second past the edge the last window still covers 59/60 of the window: 2 × 59/60 counts as 1.
    expect(await chatAt(edge + 1000)).toMatchObject({ sent: true, window: { remaining: 0 } });
    expect(await chatAt(edge + 1000), "past the budget just after the edge").toEqual({ sent: false, window: { limit: 2, remaining: 0, reset: edge + 60_000 } });
    // Late in the window the one before hardly counts (2 × 1/60 rounds down to nothing): one more fits.
    expect(await chatAt(edge + 59_000), "refused too early late in the window").toMatchObject({ sent: true, window: { remaining: 0 } });
    expect(await chatAt(edge + 59_000)).toMatchObject({ sent: false });
  });

  it.skipIf(!available(kind))("the host records AI sessions up to a cap; they go with the room", async () => {
    const { roomId, host, viewers } = await makeRoom({ viewers: 1 });
    expect(await value(store.putSession(viewers[0], "s1", "{}", 2, Date.now()))).toBe("forbidden");
    expect(await value(store.removeSession(viewers[0], "s1", Date.now()))).toBe("forbidden");
    expect(await value(store.putSession(host, "s1", '{"n":1}', 2, Date.now()))).toBe("ok");
    expect(await value(store.putSession(host, "s2", '{"n":2}', 2, Date.now()))).toBe("ok");
    expect(await value(store.putSession(host, "s3", '{"n":3}', 2, Date.now()))).toBe("limit");
    expect(await value(store.putSession(host, "s1", '{"n":11}', 2, Date.now()))).toBe("ok"); // updating is not adding
    expect(await value(store.removeSession(host, "s1", Date.now()))).toEqual({ record: '{"n":11}' });
    expect(await value(store.removeSession(host, "s1", Date.now()))).toEqual({ record: null });
    expect(await value(store.putSession(host, "s3", '{"n":3}', 2, Date.now()))).toBe("ok");
    expect(await value(store.removeSession({ ...host, tokenHash: "x" }, "s2", Date.now()))).toBe("unauthorized");
    const view = await store.describeRoom(roomId, Date.now());
    expect(view?.peers).toHaveLength(2); // sessions are not peers
    await value(store.closeRoom(host, msg("room-closed"), Date.now()));
    expect(await value(store.removeSession(host, "s2", Date.now()))).toBe("room-missing");
  });

  it.skipIf(!available(kind))("a session record given an expiry stops counting toward the cap once it passes", async () => {
    const { host } = await makeRoom();
    const now = Date.now();
    expect(await value(store.putSession(host, "secret1", '{"mode":"secret"}', 2, now, now + 60_000))).toBe("ok");
    expect(await value(store.putSession(host, "call1", '{"callId":"rtc_1"}', 2, now))).toBe("ok");
    expect(await value(store.putSession(host, "call2", "{}", 2, now))).toBe("limit");
    // A minute on, the secret can no longer be redeemed: its place is free, the call's is not.
    expect(await value(store.putSession(host, "call2", "{}", 2, now + 60_000))).toBe("ok");
    expect(await value(store.putSession(host, "call3", "{}", 2, now + 60_000))).toBe("limit");
    expect(await value(store.removeSession(host, "secret1", Date.now()))).toEqual({ record: null });
  });

  it.skipIf(!available(kind))("AI calls past their deadline are listed, and each ends once, whoever asks", async () => {
    const { roomId, host } = await makeRoom();
    const now = Date.now();
    await value(store.putSession(host, "ses_due", '{"callId":"rtc_due"}', 5, now));
    await value(store.putSession(host, "ses_later", '{"callId":"rtc_later"}', 5, now));
    await store.scheduleSessionEnd(roomId, "ses_due", now + 1000);
    await store.scheduleSessionEnd(roomId, "ses_later", now + 60_000);
    // The index is shared with other rooms (and, in Redis, other runs): look at this room's entries only.
    const due = (at: number) => store.dueSessions(at, 1_000_000).then((list) => list.filter((d) => d.roomId === roomId));
    expect(await due(now)).toEqual([]);
    expect(await due(now + 1000)).toEqual([{ roomId, sessionId: "ses_due" }]);
    expect(await store.endSession(roomId, "ses_due", Date.now())).toBe('{"callId":"rtc_due"}');
    expect(await store.endSession(roomId, "ses_due", Date.now())).toBeNull();
    expect(await due(now + 1000)).toEqual([]);
    expect(await value(store.removeSession(host, "ses_due", Date.now()))).toEqual({ record: null });
    expect(await due(now + 60_000)).toEqual([{ roomId, sessionId: "ses_later" }]);
    // A room gone first: the entry is still listed until ended, and ends with nothing.
    await value(store.closeRoom(host, msg("room-closed"), now));
    expect(await store.endSession(roomId, "ses_later", Date.now())).toBeNull();
    expect(await due(now + 60_000)).toEqual([]);
  });

  it.skipIf(!available(kind))("rooms expire, and activity extends them only up to their cap", async () => {
    const short = await makeRoom({ ttlMs: 1000, viewers: 1 });
    await send(short.host, short.viewers[0], msg("offer"));
    await new Promise((r) => setTimeout(r, 1300));
    expect(await store.describeRoom(short.roomId, Date.now())).toBeNull();
    expect(await read(short.viewers[0])).toBe("room-missing");

    // The store takes the time from its caller: activity 1.1 s in (less than half the TTL left).
    const lively = await makeRoom({ ttlMs: 2000, capMs: 3000, viewers: 1 });
    const before = (await store.describeRoom(lively.roomId, Date.now()))!.room.expiresAt;
    const created = before - 2000;
    expect(await value(store.send(lively.host, lively.viewers[0].peerId, msg("offer"), created + 900))).toEqual({ id: expect.any(String) });
    expect((await store.describeRoom(lively.roomId, Date.now()))!.room.expiresAt).toBe(before); // more than half was left
    await value(store.send(lively.host, lively.viewers[0].peerId, msg("offer"), created + 1100));
    expect((await store.describeRoom(lively.roomId, Date.now()))!.room.expiresAt).toBe(created + 3000); // the cap, not created + 3100
    // The recipient's mail lives as long as the room.
    expect(await read(lively.viewers[0])).toHaveLength(2);
  });

  it.skipIf(!available(kind))("activity, a send or reading alone, keeps a room and all its keys alive past their first expiry", async () => {
    const bySend = await makeRoom({ ttlMs: 3000, viewers: 1 });
    const byReading = await makeRoom({ ttlMs: 3000, viewers: 1 });
    await send(byReading.host, byReading.viewers[0], msg("offer")); // an inbox, so it has a key to expire
    await value(store.chat(byReading.host, msg("chat"), 50, Date.now(), null));
    await new Promise((r) => setTimeout(r, 1700)); // less than half the TTL left
    await send(bySend.host, bySend.viewers[0], msg("offer"));
    expect(await read(byReading.viewers[0])).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 1700)); // past the first expiry, 3 s after creation
    for (const room of [bySend, byReading]) {
      expect(await store.describeRoom(room.roomId, Date.now()), room === bySend ? "by a send" : "by reading").not.toBeNull();
      expect(await read(room.viewers[0])).toHaveLength(room === bySend ? 1 : 2);
    }
    if (kind === "redis" || kind === "redis-tcp") {
      // Every key of the room expires with it: the hash, its mail and who has which, the chat
      // alike (the replies kept for retries go sooner, each at the end of its own window).
      const redis = createClient({ url: redisUrl() });
      await redis.connect();
      try {
        for (const room of [bySend, byReading]) {
          const keys: string[] = [];
          for await (const batch of redis.scanIterator({ MATCH: `sb:{${room.roomId}}*` })) keys.push(...batch.filter((k) => !k.includes("}:op:")));
          expect(keys.length).toBeGreaterThanOrEqual(3);
          const roomTtl = await redis.pTTL(`sb:{${room.roomId}}`);
          for (const key of keys) expect(Math.abs((await redis.pTTL(key)) - roomTtl), key).toBeLessThan(250);
        }
      } finally {
        await redis.quit();
      }
    }
  });
});

