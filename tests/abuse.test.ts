/**
 * What one hostile client cannot do, on both stores: hold many waiting reads, flood a room's
 * mail past its budget or starve its offers with chat, trickle bodies to hold sockets, or fill
 * the logs with errors by hanging up.
 */
import { connect, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { apiClient, createRoom, drain, freshAddress, hasRedis, joinRoom, startHarness, STORES, waitingReadBegins } from "./support/harness.js";

const offer = { type: "offer", sdp: "v=0\r\n" };

/** Starts requests and reports which have ended, and how, so far. */
function track<T>(requests: Promise<T>[]) {
  const done: (T | undefined)[] = requests.map(() => undefined);
  requests.forEach((r, i) => void r.then((v) => (done[i] = v)).catch(() => {}));
  return { done, settled: () => Promise.all(requests) };
}

async function until(check: () => boolean | Promise<boolean>, ms = 5000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(STORES)("one client's abuse [%s]", (kind) => {
  const test = it.skipIf(kind === "redis" && !hasRedis());

  test("a peer holds one waiting read: of many at once, all but the last end at once with 204", async () => {
    const h = await startHarness(kind);
    try {
      const api = apiClient(h.url);
      const host = await createRoom(api);
      const viewer = await joinRoom(api, host.roomId);
      const polls = track(Array.from({ length: 20 }, () => api.get(`/api/poll?roomId=${host.roomId}&wait=20`, viewer.token)));
      const started = Date.now();
      await until(() => polls.done.filter(Boolean).length === 19, 10_000);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(polls.done.filter(Boolean).map((r) => r!.status)).toEqual(Array(19).fill(204));
      // The one left is still waiting, and a message wakes it.
      expect((await api.post("/api/offer", { roomId: host.roomId, to: viewer.peerId, description: offer }, host.token)).status).toBe(201);
      const answered = (await polls.settled()).filter((r) => r.status === 200);
      expect(answered).toHaveLength(1);
      expect(answered[0].body.messages.map((m: { type: string }) => m.type)).toEqual(["offer"]);
    } finally {
      await h.close();
    }
  });

  test("waiting reads of different kinds (a poll, takes of offers and of candidates) do not end each other", async () => {
    const h = await startHarness(kind);
    try {
      const api = apiClient(h.url);
      const host = await createRoom(api);
      const viewer = await joinRoom(api, host.roomId);
      const reads = track(["poll", "offer", "candidate"].map((what) => api.get(`/api/${what}?roomId=${host.roomId}&wait=20`, viewer.token)));
      await new Promise((r) => setTimeout(r, 500));
      expect(reads.done).toEqual([undefined, undefined, undefined]);
      await api.post("/api/offer", { roomId: host.roomId, to: viewer.peerId, description: offer }, host.token);
      await api.post("/api/candidate", { roomId: host.roomId, to: viewer.peerId, candidates: [null] }, host.token);
      expect((await reads.settled()).map((r) => r.status)).toEqual([200, 200, 200]);
    } finally {
      await h.close();
    }
  });

  test("an address holds at most WAITING_READS_PER_ADDRESS waiting reads", async () => {
    const h = await startHarness(kind, { WAITING_READS_PER_ADDRESS: "3", TRUST_PROXY: "1" });
    try {
      const api = apiClient(h.url);
      const host = await createRoom(api);
      const headers = { "x-forwarded-for": freshAddress() };
      const peers = await Promise.all(Array.from({ length: 4 }, () => joinRoom(api, host.roomId)));
      const wait = (token: string, extra = headers, after = "") =>
        api.call("GET", `/api/poll?roomId=${host.roomId}&wait=20${after && `&after=${after}`}`, { token, headers: extra });
      const held = track(peers.slice(0, 3).map((p) => wait(p.token)));
      await new Promise((r) => setTimeout(r, 300));
      expect(held.done.every((r) => r === undefined)).toBe(true);
      const refused = await wait(peers[3].token);
      expect(refused.status).toBe(429);
      expect(refused.body).toMatchObject({ code: "too_many_waiting" });
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
      // Reads without a wait still work, and so does another address.
      expect((await api.call("GET", `/api/poll?roomId=${host.roomId}`, { token: peers[3].token, headers })).status).toBe(204);
      const elsewhere = track([wait(peers[3].token, { "x-forwarded-for": freshAddress() })]);
      // A freed place can be taken again: end one by sending it mail.
      await api.post("/api/offer", { roomId: host.roomId, to: peers[0].peerId, description: offer }, host.token);
      await until(() => held.done[0] !== undefined);
      const woken = held.done[0]!;
      expect(woken.status).toBe(200);
      const again = track([wait(peers[0].token, headers, woken.body.cursor)]);
      await new Promise((r) => setTimeout(r, 300));
      expect(again.done[0]).toBeUndefined();
      for (const p of peers) await api.post("/api/offer", { roomId: host.roomId, to: p.peerId, description: offer }, host.token);
      await Promise.all([held.settled(), elsewhere.settled(), again.settled()]);
      expect([elsewhere.done[0]!.status, again.done[0]!.status]).toEqual([200, 200]);
    } finally {
      await h.close();
    }
  });

  test("a waiting read whose client goes away gives its place back at once, not when its wait ends", async () => {
    const h = await startHarness(kind, { WAITING_READS_PER_ADDRESS: "1", TRUST_PROXY: "1" });
    try {
      const api = apiClient(h.url);
      const host = await createRoom(api);
      const headers = { "x-forwarded-for": freshAddress() };
      for (const path of [`/api/poll?roomId=${host.roomId}&wait=25`, `/api/events?roomId=${host.roomId}`]) {
        const gone = new AbortController();
        const begins = await waitingReadBegins(h, host);
        const held = fetch(`${h.url}${path}`, { headers: { ...headers, authorization: `Bearer ${host.token}` }, signal: gone.signal }).catch(() => null);
        await begins();
        expect((await api.call("GET", `/api/poll?roomId=${host.roomId}&wait=1`, { token: host.token, headers })).status).toBe(429);
        gone.abort();
        await held;
        // Within a second or two, not at the end of the 25 s wait (or the stream's life).
        const started = Date.now();
        await until(async () => (await api.call("GET", `/api/poll?roomId=${host.roomId}&wait=1`, { token: host.token, headers })).status === 204);
        expect(Date.now() - started, path).toBeLessThan(5000);
      }
    } finally {
      await h.close();
    }
  });

  test("a chat flood into a full room stays within the mail budget and never makes an offer fail", async () => {
    const h = await startHarness(kind, { ROOM_MAIL_MAX_BYTES: "262144", INBOX_MAX_MESSAGES: "100" });
    try {
      const api = apiClient(h.url);
      const host = await createRoom(api, { maxPeers: 30 });
      const viewers = [];
      for (let i = 0; i < 29; i++) viewers.push(await joinRoom(api, host.roomId));
      await drain(api, host);
      const statuses = new Map<number, number>();
      for (let i = 0; i < 60; i++) {
        const sender = viewers[i % viewers.length];
        const res = await api.post("/api/chat", { roomId: host.roomId, text: "x".repeat(2000) }, sender.token);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 429) expect(res.body.code).toBe("room_busy");
      }
      expect(statuses.get(429)).toBeGreaterThan(0); // the room refused chat before its budget ran out
      // Every viewer can still be sent an offer, and the host an answer from each.
      for (const v of viewers) {
        expect((await api.post("/api/offer", { roomId: host.roomId, to: v.peerId, description: offer }, host.token)).status).toBe(201);
        expect((await api.post("/api/answer", { roomId: host.roomId, to: host.peerId, description: { type: "answer", sdp: "v=0\r\n" } }, v.token)).status).toBe(201);
      }
      if (h.redis) {
        // What the room holds in Redis stays near its budget (plus its history of 50 and its peers).
        let bytes = 0;
        for await (const keys of h.redis.scanIterator({ MATCH: `sb:{${host.roomId}}*`, COUNT: 1000 })) {
          for (const key of keys) bytes += (await h.redis.memoryUsage(key)) ?? 0;
        }
        expect(bytes).toBeLessThan(262_144 + 50 * 2_200 + 30 * 1_000);
      }
    } finally {
      await h.close();
    }
  });
});

describe("the self-hosted server's sockets", () => {
  async function rawSocket(url: string): Promise<Socket> {
    const { hostname, port } = new URL(url);
    const socket = connect(Number(port), hostname);
    await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    return socket;
  }
  const closed = (socket: Socket) => new Promise<string>((resolve) => {
    let received = "";
    socket.on("data", (d) => (received += d));
    socket.once("close", () => resolve(received));
  });

  it("a body trickled slower than REQUEST_TIMEOUT_MS is cut off with 408; a long-poll is not", async () => {
    const h = await startHarness("memory", { REQUEST_TIMEOUT_MS: "1000" });
    try {
      const api = apiClient(h.url);
      const host = await createRoom(api);
      const socket = await rawSocket(h.url);
      const ended = closed(socket);
      socket.write(`POST /api/chat HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\nauthorization: Bearer ${host.token}\r\n\r\n{`);
      const trickle = setInterval(() => socket.writable && socket.write(" "), 300);
      const started = Date.now();
      const answer = await ended;
      clearInterval(trickle);
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
      expect(Date.now() - started).toBeLessThan(4000);
      // A long-poll's request is complete at once: it may wait past the request deadline.
      const polled = Date.now();
      expect((await api.get(`/api/poll?roomId=${host.roomId}&wait=2`, host.token)).status).toBe(204);
      expect(Date.now() - polled).toBeGreaterThanOrEqual(1900);
    } finally {
      await h.close();
    }
  });

  it("one address holds at most CONNECTIONS_PER_ADDRESS sockets", async () => {
    const h = await startHarness("memory", { CONNECTIONS_PER_ADDRESS: "5" });
    try {
      const sockets = await Promise.all(Array.from({ length: 8 }, () => rawSocket(h.url)));
      const ends = sockets.map((s) => {
        let isClosed = false;
        s.once("close", () => (isClosed = true));
        return () => isClosed;
      });
      await until(() => ends.filter((e) => e()).length >= 3);
      await new Promise((r) => setTimeout(r, 200));
      expect(ends.filter((e) => e())).toHaveLength(3);
      for (const s of sockets) s.destroy();
      // Once they are gone the address may connect again.
      await new Promise((r) => setTimeout(r, 100));
      expect((await apiClient(h.url).get("/api/diagnostics")).status).toBe(200);
    } finally {
      await h.close();
    }
  });

  it("a client hanging up mid-body is one info line, not an error", async () => {
    const h = await startHarness("memory", { LOG_LEVEL: "info" });
    const lines: string[] = [];
    const write = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
    const capture = (target: NodeJS.WriteStream, original: typeof write.out) =>
      ((chunk: string | Uint8Array, ...rest: unknown[]) => (lines.push(String(chunk)), original(chunk, ...(rest as [])))) as typeof target.write;
    process.stdout.write = capture(process.stdout, write.out);
    process.stderr.write = capture(process.stderr, write.err);
    try {
      const host = await createRoom(apiClient(h.url));
      for (let i = 0; i < 3; i++) {
        const socket = await rawSocket(h.url);
        socket.write(`POST /api/chat HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\nauthorization: Bearer ${host.token}\r\n\r\n{"roomId":`);
        await new Promise((r) => setTimeout(r, 50));
        socket.destroy();
      }
      await until(() => lines.join("").split("client_closed").length > 3);
      const logged = lines.join("").split("\n").filter(Boolean).map((l) => JSON.parse(l));
      expect(logged.filter((l) => l.level === "error")).toEqual([]);
      expect(logged.filter((l) => l.event === "client_closed")).toEqual(Array(3).fill(expect.objectContaining({ level: "info" })));
      expect(lines.join("")).not.toContain("stack");
    } finally {
      process.stdout.write = write.out;
      process.stderr.write = write.err;
      await h.close();
    }
  });
});
