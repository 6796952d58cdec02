/**
 * What each route costs in Redis: the commands the store sends (what Upstash bills, counted
 * by the bridge) and every command Redis runs, those inside Lua scripts included (from
 * redis-server's INFO commandstats). Rate limiting is measured on its own and excluded
 * from the per-route figures.
 *
 *   npm run bench:route-costs      # REDIS_URL, the machine's 127.0.0.1:6379, or a redis-server it starts
 */
import { createClient } from "redis";
import { createContext } from "../lib/context.js";
import { memoryRateLimits } from "../lib/ratelimit.js";
import { startServer } from "../lib/server.js";
import { startUpstashBridge } from "../scripts/upstash-bridge.js";
import { ensureRedis } from "../tests/support/redis-server.js";

const redisServer = await ensureRedis();
if (!redisServer) throw new Error("no Redis: start redis-server or set REDIS_URL");
const redisUrl = redisServer.url;
const bridge = await startUpstashBridge({ redisUrl });
const redis = createClient({ url: redisUrl });
await redis.connect();

const env = { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: bridge.token, ICE_SERVERS: "[]" };
const context = await createContext(env);
const limitsOnRedis = context.limits;
context.limits = memoryRateLimits(context.config);
const server = await startServer({ context, port: 0 });

async function commandstats(): Promise<Record<string, number>> {
  const info = await redis.info("commandstats");
  const stats: Record<string, number> = {};
  for (const match of info.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) stats[match[1]] = Number(match[2]);
  return stats;
}

interface Cost {
  route: string;
  sent: Record<string, number>;
  executed: Record<string, number>;
}

const costs: Cost[] = [];
const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
const fmt = (r: Record<string, number>) => Object.entries(r).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}×${v}`).join(" ");

/** Runs `action` alone and records what it cost. */
async function measure(route: string, action: () => Promise<unknown>) {
  await new Promise((r) => setTimeout(r, 50));
  await redis.configResetStat();
  bridge.resetCounts();
  await action();
  await new Promise((r) => setTimeout(r, 50)); // let unsubscribes land
  const executed = await commandstats();
  delete executed["config|resetstat"];
  delete executed.info;
  costs.push({ route, sent: bridge.counts(), executed });
}

async function call(method: string, path: string, token?: string, body?: unknown) {
  const res = await fetch(server.url + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const sdp = { sdp: "v=0\r\n".padEnd(3000, "a") };
const candidates = Array.from({ length: 4 }, (_, i) => ({ candidate: `candidate:${i} 1 udp 2122260223 127.0.0.1 ${50000 + i} typ host`, sdpMid: "0", sdpMLineIndex: 0 }));

let host: any;
let viewer: any;
await measure("POST /api/rooms", async () => (host = await call("POST", "/api/rooms", undefined, {})));
const r = host.roomId;
await measure("POST /api/peers (join)", async () => (viewer = await call("POST", "/api/peers", undefined, { roomId: r })));
await measure("GET /api/peers", () => call("GET", `/api/peers?roomId=${r}`, viewer.token));
await measure("POST /api/offer", () => call("POST", "/api/offer", host.token, { roomId: r, to: viewer.peerId, description: { type: "offer", ...sdp } }));
await measure("GET /api/offer (take, 1 pending)", () => call("GET", `/api/offer?roomId=${r}`, viewer.token));
await measure("POST /api/answer", () => call("POST", "/api/answer", viewer.token, { roomId: r, to: host.peerId, description: { type: "answer", ...sdp } }));
await measure("POST /api/candidate (4)", () => call("POST", "/api/candidate", viewer.token, { roomId: r, to: host.peerId, candidates }));
let cursor = "";
await measure("GET /api/poll (2 pending)", async () => (cursor = (await call("GET", `/api/poll?roomId=${r}`, host.token)).cursor));
await measure("GET /api/poll (ack, none left)", () => call("GET", `/api/poll?roomId=${r}&after=${cursor}`, host.token));
await measure("GET /api/poll?wait=25 woken by POST /api/candidate (both)", async () => {
  const waiting = call("GET", `/api/poll?roomId=${r}&wait=25`, viewer.token);
  await new Promise((res) => setTimeout(res, 200));
  await call("POST", "/api/candidate", host.token, { roomId: r, to: viewer.peerId, candidates });
  await waiting;
});
await measure("GET /api/poll?wait=2 (times out)", () => call("GET", `/api/poll?roomId=${r}&wait=2`, host.token));
await measure("GET /api/ice-servers", () => call("GET", `/api/ice-servers?roomId=${r}`, viewer.token));
await measure("GET /api/diagnostics", () => call("GET", "/api/diagnostics"));
await measure("GET /api/diagnostics?roomId=", () => call("GET", `/api/diagnostics?roomId=${r}`));
await measure("DELETE /api/peers (leave)", () => call("DELETE", `/api/peers?roomId=${r}&peerId=${viewer.peerId}`, viewer.token));
await measure("DELETE /api/rooms", () => call("DELETE", `/api/rooms?roomId=${r}`, host.token));
await limitsOnRedis.calls.limit("bench-warmup");
await measure("rate limit check (each rate-limited request)", () => limitsOnRedis.calls.limit(`bench-${Date.now()}`));

console.log(`\nRedis cost per route (redis-server ${(await redis.info("server")).match(/redis_version:(\S+)/)?.[1]}, ${new Date().toISOString()})\n`);
console.log("| route | commands sent (billed) | commands run, incl. inside scripts | sent | run |");
console.log("|---|---|---|---|---|");
for (const c of costs) console.log(`| ${c.route} | ${sum(c.sent)} | ${sum(c.executed)} | ${fmt(c.sent)} | ${fmt(c.executed)} |`);

await server.close();
await bridge.close();
await redis.quit();
redisServer.stop();
