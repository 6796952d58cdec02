/**
 * Test harness: the real local server on a free port, on the memory store or on Redis through
 * the Upstash REST bridge to the real redis-server; plus a raw HTTP client for the API.
 */
import { afterAll, beforeAll, inject, it } from "vitest";
import { createClient } from "redis";
import { startServer, type RunningServer } from "../../lib/server.js";
import { startUpstashBridge, type Bridge } from "../../scripts/upstash-bridge.js";
import { chosenSetups } from "./redis-server.js";

export * from "./api.js";

/** The memory store; Redis through the Upstash REST bridge; Redis over TCP; a Redis Cluster over TCP. */
export type StoreKind = "memory" | "redis" | "redis-tcp" | "redis-cluster";
export const STORES: StoreKind[] = ["memory", "redis"];
/** Every store and Redis setup: the suites that must hold on each transport run on these. */
export const ALL_STORES: StoreKind[] = ["memory", "redis", "redis-tcp", "redis-cluster"];

export const redisUrl = () => inject("redisUrl");
export const clusterUrl = () => inject("clusterUrl");
export const hasRedis = () => redisUrl() !== "";
/** Whether `kind` is chosen and this machine has what it runs on. */
export const available = (kind: StoreKind) =>
  (chosenSetups()?.includes(kind) ?? true) && (kind === "memory" ? true : kind === "redis-cluster" ? clusterUrl() !== "" : hasRedis());

/** The environment that puts a server on `kind`'s Redis over TCP. */
export function tcpEnv(kind: "redis-tcp" | "redis-cluster"): Record<string, string> {
  return kind === "redis-tcp" ? { REDIS_URL: redisUrl() } : { REDIS_URL: clusterUrl(), REDIS_CLUSTER: "true" };
}

/**
 * Settings every test server starts with: no public STUN, limits out of the way (a test is
 * many clients on one address; tests/abuse.test.ts sets the per-address limits it checks).
 */
export const TEST_ENV = {
  ICE_SERVERS: "[]",
  LOG_LEVEL: "warn",
  RATE_LIMIT_ROOMS_PER_HOUR: "100000",
  RATE_LIMIT_CALLS_PER_HOUR: "1000000",
  RATE_LIMIT_PROBES_PER_HOUR: "1000000",
  RATE_LIMIT_JOINS_PER_HOUR: "1000000",
  RATE_LIMIT_ROOM_CHAT_PER_MINUTE: "1000000",
  RATE_LIMIT_SESSIONS_PER_HOUR: "1000000",
  WAITING_READS_PER_ADDRESS: "100000",
  CONNECTIONS_PER_ADDRESS: "100000",
};

/**
 * Starts a harness for the enclosing describe block (handing it to `onStart`) and closes it
 * after; returns the `it` to write its tests with, which skips them where the store is missing.
 */
export function useHarness(kind: StoreKind, onStart: (h: Harness) => void, env: Record<string, string> = {}) {
  const runs = available(kind);
  let started: Harness | undefined;
  beforeAll(async () => {
    if (!runs) return;
    started = await startHarness(kind, env);
    onStart(started);
  });
  afterAll(async () => started?.close());
  return it.skipIf(!runs);
}

export type RedisInspector = ReturnType<typeof createClient>;

export interface Harness {
  kind: StoreKind;
  url: string;
  server: RunningServer;
  bridge?: Bridge;
  /** A direct TCP connection to the redis-server (behind the bridge, or the TCP store's), for inspecting keys. */
  redis?: RedisInspector;
  close(): Promise<void>;
}

export async function startHarness(kind: StoreKind, env: Record<string, string> = {}): Promise<Harness> {
  let bridge: Bridge | undefined;
  let redis: RedisInspector | undefined;
  const storeEnv: Record<string, string> = {};
  if (kind === "redis") {
    bridge = await startUpstashBridge({ redisUrl: redisUrl() });
    storeEnv.UPSTASH_REDIS_REST_URL = bridge.url;
    storeEnv.UPSTASH_REDIS_REST_TOKEN = bridge.token;
  } else if (kind !== "memory") {
    Object.assign(storeEnv, tcpEnv(kind));
  }
  if (kind === "redis" || kind === "redis-tcp") {
    redis = createClient({ url: redisUrl() });
    await redis.connect();
  }
  const server = await startServer({ env: { ...TEST_ENV, ...storeEnv, ...env }, port: 0 });
  return {
    kind,
    url: server.url,
    server,
    bridge,
    redis,
    async close() {
      await server.close();
      await bridge?.close();
      await redis?.quit();
    },
  };
}

/**
 * Subscribes to `peer`'s notifications now; the function returned resolves once a waiting read
 * of that peer has begun. A waiting read publishes its mark in the same atomic step as its
 * first read, so anything sent after that can reach it only by waking it: tests that must
 * exercise the wake-up use this instead of sleeping and hoping the read is waiting.
 */
export async function waitingReadBegins(h: Harness, peer: { roomId: string; peerId: string }): Promise<() => Promise<void>> {
  const listener = await h.server.context.store.listen(peer.roomId, peer.peerId);
  return async () => {
    try {
      for (;;) {
        const wake = await listener.next(10_000);
        if (wake.kind === "waiter") return;
        if (wake.kind === "timeout") throw new Error(`no waiting read of ${peer.peerId} began`);
      }
    } finally {
      listener.close();
    }
  };
}

/** A room hash's request counters (rate windows: l:<peer> calls, c and c:<peer> chat; lib/store/lua.ts). */
export const COUNTER_FIELD = /^(l:|c$|c:)/;

/** Every key of signalbox's in the Redis behind the harness. */
export async function signalboxKeys(redis: RedisInspector, pattern = "sb:*"): Promise<string[]> {
  const keys: string[] = [];
  for await (const batch of redis.scanIterator({ MATCH: pattern, COUNT: 1000 })) keys.push(...batch);
  return keys;
}

/** Waits until `check` holds, polling every 100 ms; fails naming `what` after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
