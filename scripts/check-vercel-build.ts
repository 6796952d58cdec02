/**
 * Checks what `vercel build` wrote to .vercel/output (CI runs it offline, then this):
 * one function per file in api/, each given more time than the longest long-poll (the event
 * stream more than its own life), every function that waits opted into cancellation (Vercel
 * aborts request.signal only there), no signaling function loading werift or node-redis as it
 * starts on Upstash, the pages as static files with their security headers, and the built
 * functions actually answering, the event stream streaming, and a stream whose reader goes away
 * freeing its waiting place and its subscription.
 *
 *   npx vercel@60 build --yes && npx tsx scripts/check-vercel-build.ts
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { toNodeHandler } from "srvx/node";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { loadConfig } from "../lib/config.js";
import { createContext } from "../lib/context.js";
import { createRoom } from "../lib/signaling.js";
import { routes as routeTable } from "../lib/routes/index.js";
import { LIMITS } from "../lib/schemas.js";
import { childEnv } from "../tests/support/processes.js";
import { ensureRedis } from "../tests/support/redis-server.js";
import { startUpstashBridge } from "./upstash-bridge.js";

const root = new URL("../", import.meta.url).pathname;
const output = join(root, ".vercel/output");
const failures: string[] = [];
const check = (ok: boolean, what: string) => (ok ? console.log(`ok   ${what}`) : failures.push(what));

async function files(dir: string, suffix: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).filter((f) => f.endsWith(suffix)).map((f) => f.slice(0, -suffix.length)).sort();
}

/** The `fetch` a built function's bundle exports by default, if it does. */
async function builtFetch(name: string): Promise<((request: Request) => Promise<Response>) | undefined> {
  const dir = join(output, "functions/api", `${name}.func`);
  const config = JSON.parse(await readFile(join(dir, ".vc-config.json"), "utf8"));
  const module = await import(pathToFileURL(join(dir, config.handler)).href);
  const exported = (module.default?.default ?? module.default) as { fetch?: (request: Request) => Promise<Response> };
  return typeof exported?.fetch === "function" ? exported.fetch : undefined;
}

/**
 * Serves one built function on a free port (each has its own copy of lib/, so its own context).
 * The bundle must export what Vercel's Node runtime calls, a Web-standard `{ fetch }`; it is
 * served here as lib/server.ts serves it (srvx), a streaming body written as it comes.
 */
async function serveBuilt(name: string) {
  const fetchHandler = await builtFetch(name);
  if (!fetchHandler) throw new Error(`built api/${name} exports no fetch handler`);
  const handler = toNodeHandler(fetchHandler) as (req: IncomingMessage, res: ServerResponse) => unknown;
  const server = createServer((req, res) => void handler(req, res));
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => (server.closeAllConnections(), server.close()) };
}

/** Serves one built function on a free port and makes one request to it. */
async function callBuilt(name: string, method: string, body?: unknown) {
  const server = await serveBuilt(name);
  try {
    const res = await fetch(`${server.url}/api/${name}`, {
      method,
      headers: body ? { "content-type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: await res.json() };
  } finally {
    server.close();
  }
}

const routes = await files(join(root, "api"), ".ts");
const functions = await files(join(output, "functions/api"), ".func/.vc-config.json");
check(JSON.stringify(functions) === JSON.stringify(routes), `one function per route file: ${functions.join(", ")}`);

const streamSeconds = loadConfig({}).eventsStreamMs / 1000;
for (const name of functions) {
  const config = JSON.parse(await readFile(join(output, "functions/api", `${name}.func/.vc-config.json`), "utf8"));
  check(config.maxDuration > LIMITS.maxWaitSeconds, `api/${name}: maxDuration ${config.maxDuration} s outlasts a ${LIMITS.maxWaitSeconds} s long-poll`);
  // What the suites run on besides Node 20 (engines: 20.x || 24.x; Node 20 is deprecated on Vercel).
  check(config.runtime === "nodejs24.x", `api/${name}: runs on ${config.runtime}, the Node the suites run on`);
  if (name === "events/index") check(config.maxDuration > streamSeconds + 10, `api/events: maxDuration ${config.maxDuration} s outlasts a stream's ${streamSeconds} s`);
  check(Boolean(await builtFetch(name)), `api/${name}: the bundle exports a Web-standard { fetch } handler`);
}

// Every function that waits (a long-poll, the event stream, the AI peer's wait for an offer) ends
// with its client: Vercel aborts request.signal only where supportsCancellation is set.
const waiting = Object.entries(routeTable)
  .filter(([, route]) => Object.values(route.spec).some((method) => method?.waits))
  .map(([path]) => path.replace(/^\/api\//, ""))
  .map((path) => (functions.includes(`${path}/index`) ? `${path}/index` : path));
for (const name of functions) {
  const config = JSON.parse(await readFile(join(output, "functions/api", `${name}.func/.vc-config.json`), "utf8"));
  const waits = waiting.includes(name);
  check(!waits || config.supportsCancellation === true, `api/${name}: ${waits ? "waits, and ends when its client goes (supportsCancellation)" : "does not wait"}`);
}

/**
 * The modules a built function loads as it starts and makes its context (an OPTIONS request),
 * in a process of its own configured as on Vercel with Upstash: every URL Node resolves.
 */
function loadedAtStart(name: string, env: Record<string, string>): string[] {
  const dir = join(output, "functions/api", `${name}.func`);
  const handler = JSON.parse(readFileSync(join(dir, ".vc-config.json"), "utf8")).handler;
  const scratch = mkdtempSync(join(tmpdir(), "signalbox-loads-"));
  try {
    const log = join(scratch, "resolved");
    writeFileSync(join(scratch, "hooks.mjs"), `import { appendFileSync } from "node:fs";\nexport async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(log)}, r.url + "\\n"); return r; }\n`);
    writeFileSync(join(scratch, "register.mjs"), `import { register } from "node:module";\nregister("./hooks.mjs", import.meta.url);\n`);
    writeFileSync(log, "");
    const start = `const { default: fn } = await import(${JSON.stringify(pathToFileURL(join(dir, handler)).href)}); await (fn.default ?? fn).fetch(new Request("https://signalbox.example/api/${name}", { method: "OPTIONS" }));`;
    execFileSync(process.execPath, ["--import", pathToFileURL(join(scratch, "register.mjs")).href, "--input-type=module", "-e", start], { env: childEnv(env) });
    return readFileSync(log, "utf8").split("\n").filter(Boolean);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const onUpstash = { VERCEL: "1", UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9", UPSTASH_REDIS_REST_TOKEN: "check", LOG_LEVEL: "off" };
const heavy = (urls: string[]) => [...new Set(urls.map((u) => /\/node_modules\/(werift|redis|@redis\/[^/]+)\//.exec(u)?.[1]).filter(Boolean))];
for (const name of functions.filter((f) => !f.startsWith("session") && f !== "openapi.json")) {
  const loaded = heavy(loadedAtStart(name, onUpstash));
  check(loaded.length === 0, `api/${name}: starts on Upstash without werift or node-redis${loaded.length ? ` (loaded ${loaded.join(", ")})` : ""}`);
}
// The AI functions load the simulator only to simulate: with a key, none of it.
const live = heavy(loadedAtStart("session", { ...onUpstash, OPENAI_API_KEY: "sk-check" }));
check(live.length === 0, `api/session: starts live on Upstash without werift or node-redis${live.length ? ` (loaded ${live.join(", ")})` : ""}`);

for (const page of ["index.html", "host.html", "view.html", "meet.html", "ai.html"]) {
  check(Boolean(await stat(join(output, "static", page)).catch(() => null)), `static page ${page}`);
}
const config = JSON.parse(await readFile(join(output, "config.json"), "utf8"));
const pageHeaders = config.routes.find((r: { headers?: Record<string, string> }) => r.headers?.["content-security-policy"])?.headers ?? {};
check(/frame-ancestors 'none'/.test(pageHeaders["content-security-policy"] ?? "") && pageHeaders["x-content-type-options"] === "nosniff", "pages carry the CSP and nosniff headers");

// The bundles run: health, and a room created, with no configuration (memory store).
const health = await callBuilt("diagnostics", "GET");
check(health.status === 200 && health.body.status === "ok", `built api/diagnostics answers: ${health.status} ${health.body.status}`);
const room = await callBuilt("rooms", "POST", { topology: "mesh" });
check(room.status === 201 && /^[a-z0-9]{10}$/.test(room.body.roomId), `built api/rooms creates a room: ${room.status}`);

// The event stream streams: on one shared Redis (through the REST bridge, as Upstash), a room
// made through the store (the built rooms function above runs on memory), a viewer joined by the
// built peers function gets, on a stream of the built events function, the offer the built offer
// function queues, while the stream stays open.
const redis = await ensureRedis();
if (!redis) failures.push("the event stream check needs redis-server (apt-get install redis-server)");
else {
  const bridge = await startUpstashBridge({ redisUrl: redis.url });
  // One waiting read per address: a second stream is refused while the first is open.
  Object.assign(process.env, { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: bridge.token, ICE_SERVERS: "[]", LOG_LEVEL: "warn", WAITING_READS_PER_ADDRESS: "1" });
  const [peers, offer, events] = await Promise.all(["peers", "offer", "events/index"].map((name) => serveBuilt(name)));
  const ctx = await createContext(process.env);
  try {
    const post = async (at: string, body: unknown, token?: string) =>
      (await fetch(at, { method: "POST", headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) })).json();
    const { value: host } = await createRoom(ctx, { topology: "star", access: "open" });
    const viewer = await post(`${peers.url}/api/peers`, { roomId: host.roomId });
    const stream = await fetch(`${events.url}/api/events?roomId=${host.roomId}`, { headers: { authorization: `Bearer ${viewer.token}` } });
    check(stream.status === 200 && stream.headers.get("content-type") === "text/event-stream; charset=utf-8", `built api/events opens a stream: ${stream.status} ${stream.headers.get("content-type")}`);
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    await post(`${offer.url}/api/offer`, { roomId: host.roomId, to: viewer.peerId, description: { type: "offer", sdp: "v=0 built" } }, host.token);
    let text = "";
    const timeout = setTimeout(() => void reader.cancel(), 10_000);
    while (!text.includes("v=0 built")) {
      const { done, value } = await reader.read();
      if (done) break;
      text += value;
    }
    clearTimeout(timeout);
    check(/^id: \d+-\d+\ndata: .*"v=0 built"/m.test(text), "built api/events delivers an offer as an event while the stream stays open");
    // Its reader going away (a closed tab: Vercel aborts the request's signal, as srvx does here)
    // frees its waiting place and its subscription.
    const streamOf = () => fetch(`${events.url}/api/events?roomId=${host.roomId}`, { headers: { authorization: `Bearer ${viewer.token}` } });
    const second = await streamOf();
    check(second.status === 429, `built api/events refuses a second stream of the same address while the first is open: ${second.status}`);
    await second.body?.cancel();
    const subscribed = bridge.subscriptions();
    await reader.cancel();
    for (let i = 0; i < 50 && bridge.subscriptions() >= subscribed; i++) await new Promise((r) => setTimeout(r, 100));
    check(bridge.subscriptions() === subscribed - 1, `built api/events: a reader gone, its subscription ends (${subscribed} → ${bridge.subscriptions()})`);
    const third = await streamOf();
    check(third.status === 200, `built api/events: a reader gone, its waiting place is free again: ${third.status}`);
    await third.body?.cancel();
  } finally {
    for (const server of [peers, offer, events]) server.close();
    await ctx.store.close();
    await bridge.close();
    redis.stop();
  }
}

if (failures.length) {
  for (const f of failures) console.error(`FAIL ${f}`);
  process.exit(1);
}
