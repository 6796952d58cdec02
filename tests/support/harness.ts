/**
 * Test harness: the real local server on a free port, on the memory store or on Redis through
 * the Upstash REST bridge to the real redis-server; plus a raw HTTP client for the API.
 */
import { afterAll, beforeAll, inject, it } from "vitest";
import { createClient } from "redis";
import { startServer, type RunningServer } from "../../lib/server.js";
import { startUpstashBridge, type Bridge } from "../../scripts/upstash-bridge.js";

export * from "./api.js";

export type StoreKind = "memory" | "redis";
export const STORES: StoreKind[] = ["memory", "redis"];

export const redisUrl = () => inject("redisUrl");
export const hasRedis = () => redisUrl() !== "";

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
  const available = kind === "memory" || hasRedis();
  let started: Harness | undefined;
  beforeAll(async () => {
    if (!available) return;
    started = await startHarness(kind, env);
    onStart(started);
  });
  afterAll(async () => started?.close());
  return it.skipIf(!available);
}

export type RedisInspector = ReturnType<typeof createClient>;

export interface Harness {
  kind: StoreKind;
  url: string;
  server: RunningServer;
  bridge?: Bridge;
  /** A direct TCP connection to the redis-server behind the bridge, for inspecting keys. */
  redis?: RedisInspector;
  close(): Promise<void>;
}

export async function startHarness(kind: StoreKind, env: Record<string, string> = {}): Promise<Harness> {
  let bridge: Bridge | undefined;
  let redis: RedisInspector | undefined;
  const storeEnv: Record<string, string> = {};
  if (kind === "redis") {
    bridge = await startUpstashBridge({ redisUrl: redisUrl() });
    redis = createClient({ url: redisUrl() });
    await redis.connect();
    storeEnv.UPSTASH_REDIS_REST_URL = bridge.url;
    storeEnv.UPSTASH_REDIS_REST_TOKEN = bridge.token;
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

/** Every key of signalbox's in the Redis behind the harness. */
export async function signalboxKeys(redis: RedisInspector, pattern = "sb:*"): Promise<string[]> {
  const keys: string[] = [];
  for await (const batch of redis.scanIterator({ MATCH: pattern, COUNT: 1000 })) keys.push(...batch);
  return keys;
}
