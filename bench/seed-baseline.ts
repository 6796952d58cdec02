/**
 * BASELINE, NOT THE PRODUCT: the older system's signaling algorithm, rebuilt only to measure
 * against, through the same Redis, bridge and harness. Its server stores an offer with SET
 * then EXPIRE, serves it with GET then DEL, pushes each candidate with its own RPUSH and serves
 * them with LRANGE then DEL; its clients poll every second for ten tries, then every five,
 * and stop polling once connected (so they never hear of anything afterwards).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "@upstash/redis";

const TTL_ROOM = 3600;

export async function startSeedServer(redisUrl: string, redisToken: string): Promise<{ url: string; close(): Promise<void> }> {
  const redis = new Redis({ url: redisUrl, token: redisToken, enableAutoPipelining: false, enableTelemetry: false });
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://seed");
    const q = Object.fromEntries(url.searchParams);
    let body: Record<string, string> = {};
    if (req.method === "POST") {
      let text = "";
      for await (const chunk of req) text += chunk;
      body = JSON.parse(text);
    }
    const reply = (status: number, data?: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(data === undefined ? "" : JSON.stringify(data));
    const kind = url.pathname.slice("/api/".length); // offer | answer | candidate
    const roomId = body.roomId ?? q.roomId;
    if (kind === "offer" || kind === "answer") {
      const key = `seed:room:${roomId}:${kind}`;
      if (req.method === "POST") {
        await redis.set(key, JSON.stringify(body.desc));
        await redis.expire(key, TTL_ROOM);
        return reply(200, { ok: true });
      }
      const raw = await redis.get(key);
      if (!raw) return reply(200, { desc: null });
      await redis.del(key);
      return reply(200, { desc: raw });
    }
    if (kind === "candidate") {
      const key = `seed:room:${roomId}:${body.role ?? q.role}:candidates`;
      if (req.method === "POST") {
        await redis.rpush(key, JSON.stringify(body.candidate));
        return reply(200, { ok: true });
      }
      const list = await redis.lrange(key, 0, -1);
      if (list.length > 0) await redis.del(key);
      return reply(200, { candidates: list });
    }
    return reply(404);
  });
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((done) => (server.closeAllConnections(), server.close(() => done()))),
  };
}

/** The seed's polling schedule: 1 s for ten tries, then 5 s. */
const delay = (tries: number) => (tries < 10 ? 1000 : 5000);

/** One viewer setup the seed's way: 8 candidates each way, one POST each; returns per-route request counts. */
export async function seedExchange(base: string, roomId: string, onRequest: (route: string) => void) {
  const call = async (method: string, path: string, body?: unknown) => {
    onRequest(`${method} ${path.split("?")[0]}`);
    const res = await fetch(base + path, { method, headers: body ? { "content-type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined });
    return res.json() as Promise<{ desc?: unknown; candidates?: unknown[] }>;
  };
  /** Polls until `done` says so, on the seed's schedule. */
  const poll = async (path: string, done: (r: { desc?: unknown; candidates?: unknown[] }) => boolean) => {
    for (let tries = 0; ; tries++) {
      if (done(await call("GET", path))) return;
      await new Promise((r) => setTimeout(r, delay(tries)));
    }
  };
  const candidates = (role: string) => Array.from({ length: 8 }, (_, i) => ({ candidate: `candidate:${role}${i} 1 udp 2122260223 127.0.0.1 ${50000 + i} typ host` }));

  // Host: offer and its candidates; then poll for the answer and the viewer's candidates.
  await call("POST", "/api/offer", { roomId, desc: { type: "offer", sdp: "v=0" } });
  for (const c of candidates("h")) await call("POST", "/api/candidate", { roomId, role: "host", candidate: c });
  let hostCandidates = 0;
  let viewerCandidates = 0;
  const host = Promise.all([
    poll(`/api/answer?roomId=${roomId}`, (r) => Boolean(r.desc)),
    poll(`/api/candidate?roomId=${roomId}&role=viewer`, (r) => (hostCandidates += r.candidates?.length ?? 0) >= 8),
  ]);
  // Viewer: poll for the offer; answer; send candidates; poll for the host's.
  const viewer = (async () => {
    await poll(`/api/offer?roomId=${roomId}`, (r) => Boolean(r.desc));
    await call("POST", "/api/answer", { roomId, desc: { type: "answer", sdp: "v=0" } });
    for (const c of candidates("v")) await call("POST", "/api/candidate", { roomId, role: "viewer", candidate: c });
    await poll(`/api/candidate?roomId=${roomId}&role=host`, (r) => (viewerCandidates += r.candidates?.length ?? 0) >= 8);
  })();
  await Promise.all([host, viewer]);
}
