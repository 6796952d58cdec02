/**
 * What the Redis store costs Redis itself: the bytes it holds for one chat in a room of 101
 * peers (a chat reaches every other peer), and how many of its scripts one redis-server runs
 * per second at saturation (point-to-point sends and reads, many in flight, over TCP).
 *
 *   npx tsx bench/redis-store.ts
 */
import { hashToken, newPeerId, newRoomId } from "../lib/ids.js";
import { RedisStore } from "../lib/store/redis.js";
import { TcpTransport } from "../lib/store/tcp.js";
import { ensureRedis } from "../tests/support/redis-server.js";
import { printTable, saveResult, SMOKE, startServer, startStore } from "./support.js";

const PEERS = SMOKE ? 11 : 101;
const SATURATION_MS = SMOKE ? 1000 : 5000;
const IN_FLIGHT = 64;

async function call(url: string, method: string, path: string, token?: string, body?: unknown) {
  const res = await fetch(url + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Bytes the room's keys take before and after one chat, everyone's earlier mail acknowledged. */
async function chatBytes() {
  const store = await startStore("redis");
  const server = await startServer({ ...store.env, RATE_LIMITS: "off" });
  try {
    const host = await call(server.url, "POST", "/api/rooms", undefined, { maxPeers: PEERS });
    const viewers = [];
    for (let i = 1; i < PEERS; i++) viewers.push(await call(server.url, "POST", "/api/peers", undefined, { roomId: host.roomId }));
    for (const peer of [host, ...viewers]) {
      const mail = await call(server.url, "GET", `/api/poll?roomId=${host.roomId}`, peer.token);
      if (mail?.messages.length) await call(server.url, "GET", `/api/poll?roomId=${host.roomId}&after=${mail.cursor}`, peer.token);
    }
    const keys = `sb:{${host.roomId}}*`;
    const before = await store.memory!.ofKeys(keys);
    await call(server.url, "POST", "/api/chat", viewers[0].token, { roomId: host.roomId, text: "hello, everyone" });
    const after = await store.memory!.ofKeys(keys);
    return { peers: PEERS, bytes: after - before, perRecipient: Math.round((after - before) / (PEERS - 1)) };
  } finally {
    await server.stop();
    await store.stop();
  }
}

/** Sends and reads, IN_FLIGHT at a time, for SATURATION_MS: scripts Redis ran per second. */
async function saturation() {
  const redis = await ensureRedis();
  if (!redis) throw new Error("no Redis");
  const store = new RedisStore(new TcpTransport({ url: redis.url, cluster: false, commandTimeoutMs: 10_000 }), { inboxMax: 1000, roomMailMaxBytes: 4 * 1024 * 1024 });
  try {
    const pairs = await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        const roomId = newRoomId();
        const now = Date.now();
        const hostId = newPeerId();
        const viewerId = newPeerId();
        await store.createRoom({ room: { roomId, topology: "star", maxPeers: 10, hostId, createdAt: now, access: "open", lobby: false }, ttlMs: 600_000, capAt: now + 600_000, host: { peerId: hostId, role: "host", joinedAt: now }, hostTokenHash: hashToken(hostId) }, now);
        await store.joinRoom(roomId, { peerId: viewerId, role: "viewer", joinedAt: now + 1 }, hashToken(viewerId), { type: "peer-joined", body: "{}" }, now);
        return { host: { roomId, peerId: hostId, tokenHash: hashToken(hostId) }, viewer: { roomId, peerId: viewerId, tokenHash: hashToken(viewerId) } };
      }),
    );
    const sdp = JSON.stringify({ type: "offer", description: { type: "offer", sdp: "v=0\r\n".repeat(40) } });
    let scripts = 0;
    const deadline = Date.now() + SATURATION_MS;
    const started = performance.now();
    await Promise.all(
      pairs.map(async ({ host, viewer }) => {
        let cursor: string | null = null;
        while (Date.now() < deadline) {
          await store.send(host, viewer.peerId, { type: "offer", body: sdp }, Date.now());
          const { value: mail } = await store.read(viewer, cursor, Date.now());
          if (Array.isArray(mail) && mail.length) cursor = mail.at(-1)!.id;
          scripts += 2;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    return { inFlight: IN_FLIGHT, seconds: Math.round(seconds * 10) / 10, scriptsPerSecond: Math.round(scripts / seconds) };
  } finally {
    await store.close();
    redis.stop();
  }
}

export async function redisStoreBenchmark() {
  const chat = await chatBytes();
  const run = await saturation();
  printTable(
    "The Redis store in Redis: one chat's bytes, and scripts per second at saturation (one redis-server, TCP)",
    ["", "figure"],
    [
      [`bytes Redis holds for one chat in a room of ${chat.peers} peers`, `${chat.bytes} (${chat.perRecipient} per recipient)`],
      [`scripts per second, ${run.inFlight} in flight (sends and reads, ${run.seconds} s)`, run.scriptsPerSecond],
    ],
  );
  await saveResult("redis-store", { chat, saturation: run });
  return { chat, saturation: run };
}

if (import.meta.url === `file://${process.argv[1]}`) await redisStoreBenchmark();
