/**
 * The Upstash REST bridge speaks what @upstash/redis and @upstash/ratelimit send, and
 * refuses what Upstash refuses (a flagged script's undeclared key, an unflagged script, a
 * request over 10 MB), so tests through it cannot pass on what production refuses.
 */
import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KEY_LOCKING, SCRIPTS } from "../lib/store/lua.js";
import { startUpstashBridge, type Bridge } from "../scripts/upstash-bridge.js";
import { hasRedis, redisUrl } from "./support/harness.js";

describe.skipIf(!hasRedis())("Upstash REST bridge [redis]", () => {
  let bridge: Bridge;
  const key = `sb:test:${Date.now()}`;
  beforeAll(async () => {
    bridge = await startUpstashBridge({ redisUrl: redisUrl() });
  });
  afterAll(async () => bridge?.close());

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(bridge.url + path, { method: "POST", headers: { authorization: `Bearer ${bridge.token}`, ...headers }, body: JSON.stringify(body) });

  it("requires the bearer token", async () => {
    const res = await fetch(bridge.url, { method: "POST", body: JSON.stringify(["ping"]) });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: expect.any(String) });
  });

  it("answers single commands, pipelines and transactions in Upstash's shapes", async () => {
    expect(await (await post("/", ["set", key, "v", "EX", "30"])).json()).toEqual({ result: "OK" });
    expect(await (await post("/", ["get", key])).json()).toEqual({ result: "v" });
    const failed = await post("/", ["incr", key]);
    expect(failed.status).toBe(400);
    expect(await failed.json()).toEqual({ error: expect.stringContaining("not an integer") });
    const pipeline = await post("/pipeline", [["get", key], ["incr", key], ["pttl", key]]);
    expect(pipeline.status).toBe(200);
    const replies = await pipeline.json();
    expect(replies[0]).toEqual({ result: "v" });
    expect(replies[1]).toEqual({ error: expect.any(String) });
    expect(replies[2].result).toBeGreaterThan(0);
    expect(await (await post("/multi-exec", [["set", `${key}:n`, "1", "EX", "30"], ["incr", `${key}:n`]])).json()).toEqual([{ result: "OK" }, { result: 2 }]);
  });

  it("base64-encodes every string but OK when asked, nested ones too", async () => {
    const enc = { "upstash-encoding": "base64" };
    expect(await (await post("/", ["ping"], enc)).json()).toEqual({ result: Buffer.from("PONG").toString("base64") });
    expect(await (await post("/", ["set", key, "é", "EX", "30"], enc)).json()).toEqual({ result: "OK" });
    expect(await (await post("/", ["eval", "#!lua flags=allow-key-locking\nreturn {ARGV[1], {ARGV[1]}, 7}", "0", "é"], enc)).json()).toEqual({
      result: [Buffer.from("é").toString("base64"), [Buffer.from("é").toString("base64")], 7],
    });
  });

  it("refuses blocking commands and connection-state commands, as Upstash does", async () => {
    for (const command of [["blpop", key, "1"], ["xread", "block", "10", "streams", key, "$"], ["multi"], ["subscribe", "x"], ["select", "1"]]) {
      const res = await post("/", command);
      expect(res.status, command[0]).toBe(400);
      expect((await res.json()).error).toContain("not available");
    }
  });

  it("holds a flagged script to the keys it declares, with Upstash's own error; refuses an unflagged one", async () => {
    const script = (body: string) => `#!lua flags=allow-key-locking\n${body}`;
    const declared = script("redis.call('SET', KEYS[1], ARGV[1], 'EX', 30)\nreturn redis.call('GET', KEYS[1])");
    expect(await (await post("/", ["eval", declared, "1", `${key}:k`, "v"])).json()).toEqual({ result: "v" });
    // A key built inside the script, not passed in KEYS (same hash tag or not), as a room script would if it named an inbox itself.
    const planted = script("redis.call('SET', KEYS[1] .. ':inbox', 'x', 'EX', 30)\nreturn 1");
    const refused = await post("/", ["eval", planted, "1", `${key}:k`]);
    expect(refused.status).toBe(400);
    expect((await refused.json()).error).toContain(`Dynamic keys are not allowed in Lua scripts when 'allow-key-locking' flag is set. Key was: ${key}:k:inbox`);
    const redis = new Redis({ url: bridge.url, token: bridge.token, enableTelemetry: false });
    expect(await redis.exists(`${key}:k:inbox`)).toBe(0); // refused before it ran
    // Every key position is checked (DEL's all, HMGET's first), and pcall answers the refusal rather than raising it.
    expect((await (await post("/", ["eval", script("return redis.call('DEL', KEYS[1], 'other')"), "1", `${key}:k`])).json()).error).toContain("Key was: other");
    expect(await (await post("/", ["eval", script("local r = redis.pcall('HMGET', 'other', 'f')\nreturn r.err"), "0"])).json()).toEqual({ result: expect.stringContaining("Key was: other") });
    // Channels are not keys.
    expect(await (await post("/", ["eval", script("return redis.call('PUBLISH', 'some-channel', 'x')"), "0"])).json()).toEqual({ result: 0 });
    // An unflagged script (as over EVALSHA after SCRIPT LOAD) is refused, whatever keys it declares.
    for (const command of [["eval", "return 1", "0"], ["script", "load", "return 1"], ["eval", "\n#!lua flags=allow-key-locking\nreturn 1", "0"]]) {
      const res = await post("/", command);
      expect(res.status, command.join(" ")).toBe(400);
      expect((await res.json()).error).toContain("must start '#!lua flags=allow-key-locking'");
    }
  });

  it("every script the store runs is flagged on its first line (so every store suite on REST runs them under the key check)", () => {
    for (const [name, source] of Object.entries(SCRIPTS)) expect(source.startsWith(`${KEY_LOCKING}\n`), name).toBe(true);
  });

  it("refuses a request over Upstash's 10 MB", async () => {
    const big = await post("/", ["set", `${key}:big`, "x".repeat(10 * 1024 * 1024), "EX", "30"]);
    expect(big.status).toBe(400);
    expect(await big.json()).toEqual({ error: expect.stringContaining("max request size exceeded") });
    expect(await (await post("/", ["exists", `${key}:big`])).json()).toEqual({ result: 0 });
    expect(await (await post("/", ["set", `${key}:big`, "x".repeat(1024 * 1024), "EX", "30"])).json()).toEqual({ result: "OK" });
  });

  it("runs @upstash/ratelimit's allow-key-locking scripts, which redis-server alone rejects", async () => {
    const redis = new Redis({ url: bridge.url, token: bridge.token, enableTelemetry: false });
    const limiter = new Ratelimit({ redis, limiter: Ratelimit.slidingWindow(2, "10 s"), prefix: `${key}:rl`, analytics: false });
    const results = [];
    for (let i = 0; i < 3; i++) results.push((await limiter.limit("k")).success);
    expect(results).toEqual([true, true, false]);
  });

  it("streams pub/sub messages after confirming the subscription", async () => {
    const redis = new Redis({ url: bridge.url, token: bridge.token, automaticDeserialization: false, enableTelemetry: false });
    const subscriber = redis.subscribe(`${key}:ch`);
    await new Promise<void>((resolve) => subscriber.on("subscribe", () => resolve()));
    const got = new Promise((resolve) => subscriber.on("message", ({ message }) => resolve(message)));
    expect(await redis.publish(`${key}:ch`, "hello")).toBe(1);
    expect(await got).toBe("hello");
    await subscriber.unsubscribe();
  });
});
