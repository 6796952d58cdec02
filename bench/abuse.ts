/**
 * Benchmark 6 — one hostile client against one server process, at the default limits:
 *  - a chat flood into a 101-peer room: what Redis holds for the room, against its budget;
 *  - 1 500 long-polls at once with one token: an unrelated client's latency, with and without;
 *  - 300 sockets trickling a body one byte every 10 s: how many the server still holds at 30 s.
 * The rate limits are off (so the budgets, caps and deadlines are what stop the flood), except
 * where a row says otherwise.
 */
import { request, Agent } from "node:http";
import { connect } from "node:net";
import { setMaxListeners } from "node:events";
import { readdir } from "node:fs/promises";
import { ENTRY_OVERHEAD } from "../lib/store/types.js";
import { apiClient, createRoom, joinRoom, type Peer } from "../tests/support/api.js";
import { printTable, saveResult, SMOKE, startServer, startStore, STORES, summarize } from "./support.js";

const MiB = 2 ** 20;
const SIZES = SMOKE
  ? { viewers: 10, chats: 30, polls: 150, probes: 40, sockets: 20, holdSeconds: 12 }
  : { viewers: 100, chats: 300, polls: 1500, probes: 300, sockets: 300, holdSeconds: 30 };
/** The defaults that bound what a client can hold (lib/config.ts). */
const DEFAULTS = { mailBytes: 4 * MiB, waitingPerAddress: 100, connectionsPerAddress: 128, requestTimeoutMs: 10_000 };
/** Limits at the defaults that this benchmark measures: everything else out of the way. */
const LIMITED = { WAITING_READS_PER_ADDRESS: String(DEFAULTS.waitingPerAddress), CONNECTIONS_PER_ADDRESS: String(DEFAULTS.connectionsPerAddress) };

/** A GET from a given loopback address (an unrelated client is another address than the flood's). */
function get(url: string, token: string, localAddress: string, agent?: Agent, signal?: AbortSignal): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { headers: { authorization: `Bearer ${token}` }, localAddress, agent, signal }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", () => resolve(0)); // refused or cut: the server closed the socket
    req.end();
  });
}

async function latencies(url: string, peer: Peer, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await get(`${url}/api/poll?roomId=${peer.roomId}`, peer.token, "127.0.0.2");
    out.push(performance.now() - t);
  }
  return out;
}

async function chatFlood() {
  const store = await startStore("redis");
  const server = await startServer({ ...store.env, ...LIMITED });
  try {
    const api = apiClient(server.url);
    const host = await createRoom(api, { maxPeers: SIZES.viewers + 1 });
    const viewers: Peer[] = [];
    for (let i = 0; i < SIZES.viewers; i++) viewers.push(await joinRoom(api, host.roomId));
    const before = await store.memory!.used();
    const text = "€".repeat(2000); // 6 000 bytes of UTF-8: the largest chat there is
    let accepted = 0;
    let sent = 0;
    for (let i = 0; i < SIZES.chats; i++) {
      const body = JSON.stringify({ roomId: host.roomId, text });
      sent += Buffer.byteLength(body);
      if ((await api.post("/api/chat", { roomId: host.roomId, text }, viewers[i % viewers.length].token)).status === 201) accepted++;
    }
    const grown = (await store.memory!.used()) - before;
    const roomBytes = await store.memory!.ofKeys(`sb:{${host.roomId}}*`);
    // The budget: unread mail, plus the chat history, plus the peers' records.
    const chatEntry = JSON.stringify({ type: "chat", from: host.peerId, at: Date.now(), name: null, text }).length;
    const budget = DEFAULTS.mailBytes + 50 * chatEntry + (SIZES.viewers + 1) * 1024;
    const offer = await api.post("/api/offer", { roomId: host.roomId, to: viewers[0].peerId, description: { type: "offer", sdp: "v=0\r\n" } }, host.token);
    return { peers: SIZES.viewers + 1, chats: SIZES.chats, accepted, sentMiB: sent / MiB, grownMiB: grown / MiB, roomMiB: roomBytes / MiB, budgetMiB: budget / MiB, offerAfter: offer.status, entryOverhead: ENTRY_OVERHEAD };
  } finally {
    await server.stop();
    await store.stop();
  }
}

/** A take's cost with the inbox empty and with it half full of chat (what a flood can leave there). */
async function takeCost() {
  const store = await startStore("redis");
  const server = await startServer({ ...store.env, ...LIMITED });
  try {
    const api = apiClient(server.url);
    const timeTakes = async (host: Peer, viewer: Peer) => {
      const times: number[] = [];
      for (let i = 0; i < SIZES.probes / 10; i++) {
        await api.post("/api/offer", { roomId: host.roomId, to: viewer.peerId, description: { type: "offer", sdp: `v=0\r\n${"a=x\r\n".repeat(500)}` } }, host.token);
        const t = performance.now();
        const taken = await api.get(`/api/offer?roomId=${host.roomId}`, viewer.token);
        times.push(performance.now() - t);
        if (taken.status !== 200) throw new Error(`take answered ${taken.status}`);
      }
      return summarize(times);
    };
    const room = async () => {
      const host = await createRoom(api);
      return { host, viewer: await joinRoom(api, host.roomId) };
    };
    const empty = await room();
    const flooded = await room();
    // Chat may fill half an inbox (INBOX_MAX_MESSAGES 1000): after that the viewer is skipped.
    const chats = 500;
    for (let i = 0; i < chats; i++) await api.post("/api/chat", { roomId: flooded.host.roomId, text: "x".repeat(200) }, flooded.host.token);
    return { chats, empty: await timeTakes(empty.host, empty.viewer), flooded: await timeTakes(flooded.host, flooded.viewer) };
  } finally {
    await server.stop();
    await store.stop();
  }
}

async function pollFlood(kind: (typeof STORES)[number]) {
  const store = await startStore(kind);
  const server = await startServer({ ...store.env, ...LIMITED });
  try {
    const api = apiClient(server.url);
    const victim = await createRoom(api);
    const flooder = await joinRoom(api, victim.roomId);
    const other = await createRoom(api);
    const fds = async () => (await readdir(`/proc/${server.pid}/fd`)).length;
    const quiet = summarize(await latencies(server.url, other, SIZES.probes));
    const fdsQuiet = await fds();

    const stop = new AbortController();
    setMaxListeners(SIZES.polls + 10, stop.signal);
    const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
    const statuses = Array.from({ length: SIZES.polls }, () =>
      get(`${server.url}/api/poll?roomId=${victim.roomId}&wait=20`, flooder.token, "127.0.0.1", agent, stop.signal),
    );
    // The unrelated client reads while the flood arrives and is sorted out.
    const flooded = summarize(await latencies(server.url, other, SIZES.probes));
    const fdsFlooded = await fds();
    // The one read still waiting ends with the message that wakes it.
    await api.post("/api/offer", { roomId: victim.roomId, to: flooder.peerId, description: { type: "offer", sdp: "v=0\r\n" } }, victim.token);
    const settled = await Promise.race([Promise.all(statuses), new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
    stop.abort();
    const counts = (settled ?? (await Promise.all(statuses))).reduce<Record<string, number>>((c, s) => ((c[s || "cut"] = (c[s || "cut"] ?? 0) + 1), c), {});
    agent.destroy();
    return { kind, quiet, flooded, fdsQuiet, fdsFlooded, counts };
  } finally {
    await server.stop();
    await store.stop();
  }
}

async function slowBodies() {
  const store = await startStore("memory");
  const server = await startServer({ ...store.env, ...LIMITED });
  try {
    const { hostname, port } = new URL(server.url);
    const open = new Set<number>();
    const closedAt: number[] = [];
    const started = performance.now();
    const timers: NodeJS.Timeout[] = [];
    for (let i = 0; i < SIZES.sockets; i++) {
      const socket = connect(Number(port), hostname);
      open.add(i);
      socket.on("error", () => {});
      socket.resume(); // read what the server says (its 408), so its close is seen
      socket.on("close", () => (open.delete(i), closedAt.push(performance.now() - started)));
      socket.on("connect", () => {
        socket.write("POST /api/chat HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{");
        timers.push(setInterval(() => socket.writable && socket.write(" "), 10_000));
      });
    }
    await new Promise((r) => setTimeout(r, SIZES.holdSeconds * 1000));
    timers.forEach(clearInterval);
    const refusedAtOnce = closedAt.filter((t) => t < 1000).length;
    return { sockets: SIZES.sockets, refusedAtOnce, heldAfter: open.size, seconds: SIZES.holdSeconds, lastClosedS: Math.max(...closedAt) / 1000 };
  } finally {
    await server.stop();
  }
}

export async function abuseBenchmark() {
  const flood = await chatFlood();
  printTable(
    `Abuse — a chat flood into a ${flood.peers}-peer room (Redis; rate limits off, so the mail budget is what stops it)`,
    ["chats sent", "accepted", "bytes sent", "Redis grew", "the room's keys", "budget (4 MiB mail + history + peers)", "an offer afterwards"],
    [[flood.chats, flood.accepted, `${flood.sentMiB.toFixed(2)} MiB`, `${flood.grownMiB.toFixed(2)} MiB`, `${flood.roomMiB.toFixed(2)} MiB`, `${flood.budgetMiB.toFixed(2)} MiB`, flood.offerAfter]],
  );
  const takes = await takeCost();
  printTable(
    "Abuse — taking an offer from an inbox left full of chat (Redis, ms)",
    ["inbox", "take p50 / p99"],
    [["empty", `${takes.empty.median} / ${takes.empty.p99}`], [`${takes.chats} chats unread`, `${takes.flooded.median} / ${takes.flooded.p99}`]],
  );
  const polls = [];
  for (const kind of STORES) polls.push(await pollFlood(kind));
  printTable(
    `Abuse — ${SIZES.polls} long-polls at once with one token; an unrelated client's reads (ms)`,
    ["store", "quiet p50 / p99", "during the flood p50 / p99", "server fds quiet / flooded", "the flood's answers"],
    polls.map((p) => [p.kind, `${p.quiet.median} / ${p.quiet.p99}`, `${p.flooded.median} / ${p.flooded.p99}`, `${p.fdsQuiet} / ${p.fdsFlooded}`, Object.entries(p.counts).map(([s, n]) => `${s}: ${n}`).join(", ")]),
  );
  const slow = await slowBodies();
  printTable(
    `Abuse — ${slow.sockets} sockets trickling a body (1 byte / 10 s) from one address`,
    ["sockets", "refused at once (cap 128)", `still held after ${slow.seconds} s`, "last one closed at"],
    [[slow.sockets, slow.refusedAtOnce, slow.heldAfter, `${slow.lastClosedS.toFixed(1)} s`]],
  );
  await saveResult("abuse", { flood, takes, polls, slow });
}

if (import.meta.url === `file://${process.argv[1]}`) await abuseBenchmark();
