/**
 * Faults, tested rather than assumed: Redis going down mid-session and coming back, Redis
 * slow, the server restarting — over the REST bridge, over TCP, and (but for going down, which
 * on a cluster is one master lost: tests/cluster-faults.test.ts) on a Redis Cluster. A
 * redis-server and a cluster of the test's own (append-only, like a managed Redis) so they can
 * be killed, restarted and stalled. (Several servers on one Redis, as processes:
 * tests/multiprocess.test.ts.)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SignalingClient, type Message } from "../lib/client/signaling-client.js";
import { startServer, type RunningServer } from "../lib/server.js";
import { startUpstashBridge, type Bridge } from "../scripts/upstash-bridge.js";
import { apiClient, createRoom, drain, joinRoom, TEST_ENV, until } from "./support/harness.js";
import { startCluster, type RunningCluster } from "./support/redis-cluster.js";
import { answers, freePort, hasRedisServer } from "./support/redis-server.js";
import { openStream } from "./support/events.js";
import { childEnv, removedOnExit } from "./support/processes.js";


/** Whether the server on `port` answers a PING within `ms` (connecting included: a stalled server accepts, then says nothing). */
async function pingsWithin(port: number, ms: number): Promise<boolean> {
  const client = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } });
  client.on("error", () => {});
  const ping = client.connect().then(() => client.ping()).then(() => true, () => false);
  try {
    return await Promise.race([ping, new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
  } finally {
    client.destroy();
  }
}

/** Stalls each server for `ms` (DEBUG SLEEP: every command waits), and returns once it has begun. */
async function stall(ports: number[], ms: number) {
  await Promise.all(
    ports.map(async (port) => {
      const client = createClient({ url: `redis://127.0.0.1:${port}` });
      client.on("error", () => {});
      await client.connect();
      void client.sendCommand(["DEBUG", "SLEEP", String(ms / 1000)]).catch(() => {}).finally(() => client.destroy());
      await until("the stall to begin", async () => !(await pingsWithin(port, 100)), 5_000);
    }),
  );
}

type Transport = "rest" | "tcp" | "cluster";
/** Each case's name carries its setup's tag, so the run counts it there. */
const SETUPS: [string, Transport][] = [["rest", "rest"], ["tcp [redis-tcp]", "tcp"], ["cluster [redis-cluster]", "cluster"]];

// Needs a redis-server of its own to kill; skipped (loudly, as every Redis suite) without one, except in CI.
describe.skipIf(!hasRedisServer() && process.env.CI !== "true")("faults [redis]", () => {
  let dir: string;
  let port: number;
  let redis: ChildProcess | undefined;
  let bridge: Bridge;
  let cluster: RunningCluster;
  const env = (transport: Transport = "rest") => ({
    ...TEST_ENV,
    ...(transport === "rest"
      ? { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: bridge.token }
      : transport === "tcp"
        ? { REDIS_URL: `redis://127.0.0.1:${port}` }
        : { REDIS_URL: cluster.url, REDIS_CLUSTER: "true" }),
    REDIS_TIMEOUT_MS: "1500",
  });

  /**
   * Redis slowed down: through the bridge, `ms` more on every command from now on (0: no more);
   * over TCP, every server stalled once for `ms`, as a slow command or a busy host stalls it.
   */
  async function slow(transport: Transport, ms: number) {
    if (transport === "rest") return bridge.setLatency(ms);
    const ports = transport === "tcp" ? [port] : cluster.ports;
    if (ms > 0) return stall(ports, ms);
    for (const p of ports) await until("the stall to end", () => pingsWithin(p, 100));
  }

  async function startRedis() {
    redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--enable-debug-command", "local"], { stdio: "ignore", env: childEnv() });
    removedOnExit({ child: redis });
    await until("redis-server to answer", () => answers(`redis://127.0.0.1:${port}`));
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "signalbox-faults-"));
    removedOnExit({ dir });
    port = await freePort();
    await startRedis();
    bridge = await startUpstashBridge({ redisUrl: `redis://127.0.0.1:${port}` });
    const started = await startCluster(3, ["--enable-debug-command", "local"]);
    if (!started) throw new Error("the suite's Redis Cluster did not start");
    cluster = started;
  }, 60_000);
  afterAll(async () => {
    await bridge?.close();
    redis?.kill("SIGKILL");
    cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  // Over the REST bridge, and over TCP (tagged so the run counts it there).
  it.each(["rest", "tcp [redis-tcp]"])("Redis going down answers 503 at once, and the session carries on when it returns: %s", { timeout: 90_000 }, async (over) => {
    const server = await startServer({ env: env(over === "rest" ? "rest" : "tcp"), port: 0 });
    try {
      const api = apiClient(server.url);
      const host = await createRoom(api);
      const viewer = await SignalingClient.joinRoom(host.roomId, {}, { baseUrl: server.url, waitSeconds: 5 });
      const received: Message[] = [];
      let errors = 0;
      viewer.onMessage((m) => received.push(m));
      viewer.onError(() => errors++);
      viewer.start();
      const offer = (n: number) => api.post("/api/offer", { roomId: host.roomId, to: viewer.peerId, description: { type: "offer", sdp: `v=0 ${n}` } }, host.token);
      expect((await offer(1)).status).toBe(201);
      await until("the first offer", async () => received.length === 1);
      // A long-poll already waiting when Redis dies.
      const { cursor } = await drain(api, host);
      const held = api.get(`/api/poll?roomId=${host.roomId}&wait=20${cursor ? `&after=${cursor}` : ""}`, host.token);
      // And an event stream open then.
      const stream = await openStream(server.url, { roomId: host.roomId, peerId: host.peerId, token: host.token }, { after: cursor });
      await new Promise((r) => setTimeout(r, 300));

      redis!.kill("SIGKILL");
      const started = performance.now();
      // Its subscription drops with Redis: it answers 503 at once, not 204 at its deadline.
      const dropped = await held;
      expect([dropped.status, dropped.body?.code]).toEqual([503, "store_unavailable"]);
      // The stream says so as its last event, a problem document, and ends.
      expect(await stream.nextEvent(5000)).toMatchObject({ event: "problem", data: { status: 503, code: "store_unavailable" } });
      expect(await stream.next()).toEqual({ kind: "closed" });
      expect(performance.now() - started).toBeLessThan(5000);
      const refused = await offer(2);
      expect(refused.status).toBe(503);
      expect(refused.body.code).toBe("store_unavailable");
      expect(refused.headers.get("retry-after")).toBe("2");
      const health = await api.get("/api/diagnostics");
      expect([health.status, health.body.store?.reachable]).toEqual([503, false]);
      const waiting = await api.get(`/api/poll?roomId=${host.roomId}&wait=10`, host.token);
      expect(waiting.status).toBe(503);
      expect(performance.now() - started).toBeLessThan(8000);
      // The viewer's loop meets the outage at once too (its long-poll's subscription drops), then backs off.
      await until("the viewer's client to meet the outage", async () => errors > 0, 3_000);

      await startRedis();
      await until("diagnostics to see Redis again", async () => (await api.get("/api/diagnostics")).status === 200);
      // The room, its peers and their tokens survived; the viewer's loop resumed by itself.
      expect((await offer(3)).status).toBe(201);
      await until("the offer sent after the outage", async () => received.some((m) => m.type === "offer" && m.description.sdp === "v=0 3"), 30_000);
      expect(received.filter((m) => m.type === "offer").map((m) => (m as { description: { sdp: string } }).description.sdp)).toEqual(["v=0 1", "v=0 3"]);
      viewer.stop();
    } finally {
      await server.close();
    }
  });

  it.each(SETUPS)("a slow Redis still ends long-polls by their deadline, and a hung one answers 503 instead of hanging: %s", { timeout: 30_000 }, async (_, over) => {
    const server = await startServer({ env: env(over), port: 0 });
    try {
      const api = apiClient(server.url);
      const host = await createRoom(api);
      await slow(over, 400);
      let started = performance.now();
      const late = await api.get(`/api/poll?roomId=${host.roomId}&wait=1`, host.token);
      expect(late.status).toBe(204);
      expect(performance.now() - started).toBeLessThan(1000 + 2 * 400 + 1000);
      await slow(over, 0);
      await slow(over, 4000); // past REDIS_TIMEOUT_MS
      started = performance.now();
      const hung = await api.get(`/api/poll?roomId=${host.roomId}&wait=1`, host.token);
      expect([hung.status, hung.body.code]).toEqual([503, "store_unavailable"]);
      expect(performance.now() - started).toBeLessThan(6000);
    } finally {
      await slow(over, 0);
      await server.close();
    }
  });

  it.each(SETUPS)("a slow Redis sheds what it cannot take: past REDIS_MAX_IN_FLIGHT, 503 store_busy at once, with a spread Retry-After: %s", { timeout: 30_000 }, async (_, over) => {
    const server = await startServer({ env: { ...env(over), REDIS_MAX_IN_FLIGHT: "4", RATE_LIMITS: "off" }, port: 0 });
    try {
      const api = apiClient(server.url);
      const host = await createRoom(api);
      await slow(over, 1000);
      const started = performance.now();
      const results = await Promise.all(
        Array.from({ length: 16 }, async () => {
          const res = await api.get(`/api/peers?roomId=${host.roomId}`, host.token);
          return { ...res, ms: performance.now() - started };
        }),
      );
      const served = results.filter((r) => r.status === 200);
      const shed = results.filter((r) => r.status === 503);
      expect(served.length + shed.length).toBe(16);
      expect(served.length).toBeGreaterThanOrEqual(4);
      expect(shed.length).toBeGreaterThanOrEqual(8);
      for (const r of shed) {
        expect(r.body.code).toBe("store_busy");
        expect(["1", "2", "3"]).toContain(r.headers.get("retry-after"));
        expect(r.ms).toBeLessThan(Math.min(...served.map((s) => s.ms))); // refused before any command came back
      }
      await slow(over, 0);
      expect((await api.get(`/api/peers?roomId=${host.roomId}`, host.token)).status).toBe(200);
    } finally {
      await slow(over, 0);
      await server.close();
    }
  });

  it.each(SETUPS)("restarting the server loses no room and no message: %s", async (_, over) => {
    let server: RunningServer = await startServer({ env: env(over), port: 0 });
    let api = apiClient(server.url);
    const host = await createRoom(api);
    const viewer = await joinRoom(api, host.roomId);
    await api.post("/api/offer", { roomId: host.roomId, to: viewer.peerId, description: { type: "offer", sdp: "v=0 before restart" } }, host.token);
    await server.close();
    server = await startServer({ env: env(over), port: 0 });
    try {
      api = apiClient(server.url);
      const { messages } = await drain(api, viewer);
      expect(messages.map((m) => m.description?.sdp)).toEqual(["v=0 before restart"]);
      expect((await api.get(`/api/peers?roomId=${host.roomId}`, host.token)).body.peers).toHaveLength(2);
    } finally {
      await server.close();
    }
  });

  it.each(SETUPS)("an event stream ends with its server and resumes on the next one, losing and repeating nothing: %s", async (_, over) => {
    let server: RunningServer = await startServer({ env: env(over), port: 0 });
    let api = apiClient(server.url);
    const host = await createRoom(api);
    const viewer = await joinRoom(api, host.roomId);
    const offer = (sdp: string) => api.post("/api/offer", { roomId: host.roomId, to: viewer.peerId, description: { type: "offer", sdp } }, host.token);
    const first = await openStream(server.url, viewer);
    await offer("v=0 one");
    const one = await first.nextEvent();
    expect(one).toMatchObject({ data: { description: { sdp: "v=0 one" } } });
    await offer("v=0 two"); // sent, perhaps on the wire already, never acknowledged
    await server.close();
    for (let item = await first.next(); item.kind !== "closed"; item = await first.next());
    server = await startServer({ env: env(over), port: 0 });
    try {
      api = apiClient(server.url);
      await offer("v=0 three");
      const resumed = await openStream(server.url, viewer, { lastEventId: one.kind === "event" ? one.id : "" });
      const got = [await resumed.nextEvent(), await resumed.nextEvent()].map((e) => (e.kind === "event" ? e.data.description.sdp : e.kind));
      expect(got).toEqual(["v=0 two", "v=0 three"]);
      resumed.close();
    } finally {
      await server.close();
    }
  });
});
