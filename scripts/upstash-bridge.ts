/**
 * A local server speaking the Upstash Redis REST protocol in front of a real TCP Redis.
 *
 * A dev/test tool, not a production dependency: it lets the production Redis store
 * (which talks REST through @upstash/redis) run against the redis-server on this machine.
 * It is as strict as Upstash, always, so no test can pass on something production refuses:
 *  - blocking commands, and MULTI/WATCH/SELECT/SUBSCRIBE sent as plain commands, are refused;
 *  - a script flagged `allow-key-locking` may touch only the keys it declares (KEYS), as on
 *    Upstash, which refuses any other with its own error; an unflagged script is refused (Upstash
 *    would run it under its database-wide lock, stalling every other request while it runs);
 *  - a request over Upstash's 10 MB is refused.
 * Subscriptions (server-sent events) share one Redis connection, and each stream carries
 * comments and a `retry:` line, as any SSE stream may.
 *
 *   npm run redis:bridge            # REDIS_URL, BRIDGE_PORT, BRIDGE_TOKEN from env
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { createClient, RESP_TYPES } from "redis";
import { stripUpstashFlags } from "../lib/store/tcp.js";

export interface BridgeOptions {
  redisUrl?: string;
  token?: string;
  port?: number;
  host?: string;
  /** A `: keep-alive` comment on every subscription stream this often (ms). */
  keepAliveMs?: number;
}

export interface Bridge {
  url: string;
  token: string;
  /** Added before every command reaches Redis: simulates a slow or distant store. */
  setLatency(ms: number): void;
  /** Commands received (what Upstash would bill), by lowercase name, since start or the last reset. */
  counts(): Record<string, number>;
  /** HTTP requests received, by path ("/", "/pipeline", "/subscribe/…" as "/subscribe"), since start or the last reset. */
  requests(): Record<string, number>;
  /** Subscription streams open now. */
  subscriptions(): number;
  resetCounts(): void;
  close(): Promise<void>;
}

type Reply = null | number | string | Buffer | Reply[] | Error;
type RedisConnection = ReturnType<typeof connectRedis>;

// Upstash's REST API serves none of these; on a shared connection most would also corrupt it.
const REFUSED = new Set([
  "blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop",
  "multi", "exec", "discard", "watch", "unwatch", "select", "subscribe", "psubscribe",
  "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe", "monitor", "quit", "reset",
  "wait", "waitaof", "sync", "psync", "shutdown",
]);

const sha1 = (text: string) => createHash("sha1").update(text).digest("hex");

function connectRedis(url: string) {
  return createClient({
    url,
    RESP: 2,
    // Fail a command rather than queue it forever while Redis is down.
    disableOfflineQueue: true,
    socket: { reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1000) },
  }).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
}

/** Upstash's limit on one request's size (free and pay-as-you-go databases). */
export const MAX_REQUEST_BYTES = 10 * 1024 * 1024;

/** The flag that makes Upstash lock only a script's declared keys, on its first line (elsewhere Upstash ignores it). */
const flagged = (script: string) => /^#!lua[^\n]*\bflags=\S*\ballow-key-locking\b/.test(script);

/** Where each command's keys are, from COMMAND: [first, last (negative: from the end), step]; false: keys found by its arguments. */
type KeyPositions = Record<string, [number, number, number] | false>;

async function keyPositions(redis: RedisConnection): Promise<KeyPositions> {
  const table = (await redis.sendCommand(["COMMAND"])) as unknown as [Buffer, number, Buffer[], number, number, number][];
  const positions: KeyPositions = {};
  for (const [name, , flags, first, last, step] of table) {
    positions[name.toString().toLowerCase()] = flags.some((f) => f.toString() === "movablekeys") ? false : [first, last, step];
  }
  return positions;
}

/**
 * Lua put in front of a flagged script's body: `redis.call` and `redis.pcall` that refuse a key
 * not in KEYS with Upstash's own error, as its key locking does (a command whose keys depend on
 * its arguments is refused too: there is no telling what it touches). Channels are not keys.
 */
function keyCheck(positions: KeyPositions): string {
  const entries = Object.entries(positions).map(([name, p]) => `[${JSON.stringify(name)}]=${p ? `{${p.join(",")}}` : "false"}`);
  return `local redis = (function(real)
  local declared = {}
  for _, key in ipairs(KEYS) do declared[key] = true end
  local positions = {${entries.join(",")}}
  local function refusal(name, ...)
    local p = positions[string.lower(name)]
    if p == false then return "ERR signalbox bridge: '" .. name .. "' finds its keys in its arguments; Upstash's key locking cannot lock them" end
    if not p or p[1] == 0 then return nil end
    local args = { ... }
    local last = p[2] < 0 and #args + 1 + p[2] or p[2]
    for i = p[1], last, p[3] do
      if args[i] ~= nil and not declared[args[i]] then
        return "ERR Dynamic keys are not allowed in Lua scripts when 'allow-key-locking' flag is set. Key was: " .. args[i]
      end
    end
  end
  return setmetatable({
    call = function(name, ...)
      local refused = refusal(name, ...)
      if refused then error(real.error_reply(refused)) end
      return real.call(name, ...)
    end,
    pcall = function(name, ...)
      local refused = refusal(name, ...)
      if refused then return real.error_reply(refused) end
      return real.pcall(name, ...)
    end,
  }, { __index = real })
end)(redis)
`;
}

/**
 * Makes scripts run on redis-server as Upstash runs them: a flagged script without its flag
 * (redis-server rejects it) and with the key check in front; an unflagged one refused. Remembers
 * which SHA1 the client knows each script by.
 */
class ScriptShim {
  private readonly rewritten = new Map<string, string>();

  constructor(private readonly check: string) {}

  /** The command as redis-server is to run it, or the error Upstash-as-the-bridge answers. */
  rewrite(args: string[]): string[] | Error {
    const name = args[0].toLowerCase();
    const scriptAt = name === "eval" || name === "eval_ro" ? 1 : name === "script" && args[1]?.toLowerCase() === "load" ? 2 : -1;
    if (scriptAt >= 0 && args[scriptAt] !== undefined) {
      const original = args[scriptAt];
      if (!flagged(original)) return new Error("ERR signalbox bridge: a script must start '#!lua flags=allow-key-locking' (and declare its keys): unflagged, Upstash runs it under its database-wide lock");
      const body = stripUpstashFlags(original);
      const newline = body.indexOf("\n");
      const runnable = `${body.slice(0, newline + 1)}${this.check}${body.slice(newline + 1)}`;
      this.rewritten.set(sha1(original), sha1(runnable));
      return args.map((a, i) => (i === scriptAt ? runnable : a));
    }
    if (name === "evalsha" || name === "evalsha_ro") {
      return args.map((a, i) => (i === 1 ? this.rewritten.get(a.toLowerCase()) ?? a : a));
    }
    if (name === "script" && args[1]?.toLowerCase() === "exists") {
      return args.map((a, i) => (i >= 2 ? this.rewritten.get(a.toLowerCase()) ?? a : a));
    }
    return args;
  }

  /** SCRIPT LOAD answers the SHA1 of what Redis ran; the client expects the one it sent. */
  loadedSha(args: string[], reply: Reply): Reply {
    if (args[0].toLowerCase() === "script" && args[1]?.toLowerCase() === "load" && args[2] !== undefined) {
      return sha1(args[2]);
    }
    return reply;
  }
}

/** Upstash's base64 encoding: every string in a result, nested ones too, except status OK. */
function encodeReply(reply: Reply, base64: boolean): unknown {
  if (reply === null || typeof reply === "number") return reply;
  if (reply instanceof Error) return { error: reply.message };
  if (Array.isArray(reply)) return reply.map((r) => encodeReply(r, base64));
  if (typeof reply === "string" && reply === "OK") return "OK";
  const buffer = Buffer.isBuffer(reply) ? reply : Buffer.from(reply);
  return base64 ? buffer.toString("base64") : buffer.toString("utf8");
}

function isCommand(value: unknown): value is unknown[] {
  return Array.isArray(value) && value.length > 0 && typeof value[0] === "string";
}

function toArgs(command: unknown[]): string[] {
  return command.map((part) => (typeof part === "string" ? part : JSON.stringify(part)));
}

class TooLarge extends Error {}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_REQUEST_BYTES) throw new TooLarge();
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  return text ? JSON.parse(text) : undefined;
}

function send(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

export async function startUpstashBridge(options: BridgeOptions = {}): Promise<Bridge> {
  const redisUrl = options.redisUrl ?? "redis://127.0.0.1:6379";
  const token = options.token ?? "signalbox-local-bridge";
  const redis: RedisConnection = connectRedis(redisUrl);
  redis.on("error", () => {}); // reconnects by itself; each failed command answers its caller
  await redis.connect();
  const scripts = new ScriptShim(keyCheck(await keyPositions(redis)));
  let latencyMs = 0;
  let counts: Record<string, number> = {};
  const count = (name: string) => (counts[name] = (counts[name] ?? 0) + 1);
  let requests: Record<string, number> = {};

  async function run(command: unknown[]): Promise<Reply> {
    if (!isCommand(command)) return new Error("ERR command must be a non-empty array starting with its name");
    const args = toArgs(command);
    const name = args[0].toLowerCase();
    count(name);
    if (REFUSED.has(name) || ((name === "xread" || name === "xreadgroup") && args.some((a) => a.toLowerCase() === "block"))) {
      return new Error(`ERR Command is not available: '${name}'. See https://upstash.com/docs/redis/overall/rediscompatibility for details`);
    }
    const runnable = scripts.rewrite(args);
    if (runnable instanceof Error) return runnable;
    if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs));
    try {
      const reply = (await redis.sendCommand(runnable)) as Reply;
      return scripts.loadedSha(args, reply);
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  }

  async function transaction(commands: unknown[][]): Promise<Reply[] | Error> {
    for (const command of commands) {
      if (!isCommand(command)) return new Error("ERR command must be a non-empty array starting with its name");
      if (REFUSED.has(String(command[0]).toLowerCase())) return new Error(`ERR Command is not available: '${command[0]}'`);
    }
    const runnable = commands.map((command) => scripts.rewrite(toArgs(command)));
    const refused = runnable.find((r) => r instanceof Error);
    if (refused) return refused;
    if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs));
    const multi = redis.multi();
    for (const command of commands) count(String(command[0]).toLowerCase());
    for (const command of runnable as string[][]) multi.addCommand(command);
    try {
      const replies = (await multi.exec()) as unknown as Reply[];
      return replies.map((reply, i) => scripts.loadedSha(toArgs(commands[i]), reply));
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  }

  // One connection carries every subscription, as a pub/sub server would; each SSE caller adds
  // its own listener and removes it when it goes away.
  const subscriber = redis.duplicate();
  const streams = new Set<ServerResponse>();
  // A subscription that lost its connection may have missed messages: end its stream, as a
  // hosted Redis dropping would, and let the caller subscribe afresh once Redis is back.
  const endStreams = () => streams.forEach((res) => res.end());
  subscriber.on("error", endStreams);
  subscriber.on("end", endStreams);
  await subscriber.connect();

  async function subscribe(res: ServerResponse, channel: string) {
    count("subscribe");
    // A publish can arrive before the confirmation line is written: hold it until then.
    let early: string[] | null = [];
    const forward = (message: string) => res.write(`data: message,${channel},${message}\n\n`);
    const listener = (message: string) => (early ? early.push(message) : forward(message));
    const close = () => {
      streams.delete(res);
      void subscriber.unsubscribe(channel, listener).catch(() => {});
    };
    try {
      await subscriber.subscribe(channel, listener);
    } catch (error) {
      if (!res.headersSent) send(res, 500, { error: String(error) });
      return;
    }
    if (res.destroyed) return close();
    streams.add(res);
    res.on("close", close);
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    // What any SSE stream may carry before and between its events: a comment and a retry hint.
    res.write(`: ${channel}\nretry: 1000\n\ndata: subscribe,${channel},1\n\n`);
    early.forEach(forward);
    early = null;
    const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), options.keepAliveMs ?? 10_000);
    res.on("close", () => clearInterval(keepAlive));
  }

  const server: Server = createServer(async (req, res) => {
    if (req.headers.authorization !== `Bearer ${token}`) {
      return send(res, 401, { error: "Unauthorized" });
    }
    const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    const path = new URL(req.url ?? "/", "http://bridge").pathname;
    const kind = path.startsWith("/subscribe/") ? "/subscribe" : path;
    requests[kind] = (requests[kind] ?? 0) + 1;
    // Benchmarks in another process read (GET) and reset (DELETE) the command counts here.
    if (path === "/__counts") {
      if (req.method === "DELETE") counts = {};
      return send(res, 200, counts);
    }
    try {
      if (path.startsWith("/subscribe/")) {
        return await subscribe(res, decodeURIComponent(path.slice("/subscribe/".length)));
      }
      const body = await readJson(req);
      if (path === "/pipeline" || path === "/multi-exec") {
        if (!Array.isArray(body) || body.length === 0) return send(res, 400, { error: "ERR body must be a non-empty array of commands" });
        if (path === "/multi-exec") {
          const replies = await transaction(body as unknown[][]);
          if (replies instanceof Error) return send(res, 400, { error: replies.message });
          return send(res, 200, replies.map((r) => (r instanceof Error ? { error: r.message } : { result: encodeReply(r, base64) })));
        }
        const replies = await Promise.all((body as unknown[][]).map(run));
        return send(res, 200, replies.map((r) => (r instanceof Error ? { error: r.message } : { result: encodeReply(r, base64) })));
      }
      if (path === "/" || path === "") {
        const reply = await run(body as unknown[]);
        if (reply instanceof Error) return send(res, 400, { error: reply.message });
        return send(res, 200, { result: encodeReply(reply, base64) });
      }
      return send(res, 404, { error: `ERR unknown path ${path}` });
    } catch (error) {
      if (error instanceof TooLarge) return send(res.setHeader("connection", "close"), 400, { error: `ERR max request size exceeded. Limit: ${MAX_REQUEST_BYTES} bytes` });
      return send(res, 400, { error: error instanceof SyntaxError ? "ERR failed to parse JSON body" : String(error) });
    }
  });

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve));
  const address = server.address() as AddressInfo;

  return {
    url: `http://${address.address}:${address.port}`,
    token,
    setLatency(ms) {
      latencyMs = ms;
    },
    counts: () => ({ ...counts }),
    requests: () => ({ ...requests }),
    subscriptions: () => streams.size,
    resetCounts() {
      counts = {};
      requests = {};
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      subscriber.destroy();
      await redis.quit().catch(() => redis.destroy());
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const bridge = await startUpstashBridge({
    redisUrl: process.env.REDIS_URL,
    token: process.env.BRIDGE_TOKEN,
    port: Number(process.env.BRIDGE_PORT ?? 8079),
    host: process.env.BRIDGE_HOST,
  });
  console.log(`Upstash REST bridge on ${bridge.url} -> ${process.env.REDIS_URL ?? "redis://127.0.0.1:6379"}`);
  // The default token is this dev tool's public one; a token set in BRIDGE_TOKEN stays out of the output.
  const token = process.env.BRIDGE_TOKEN ? "$BRIDGE_TOKEN" : bridge.token;
  console.log(`  UPSTASH_REDIS_REST_URL=${bridge.url} UPSTASH_REDIS_REST_TOKEN=${token} npm start`);
  const stop = () => bridge.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
