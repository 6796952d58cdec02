/**
 * Test harness: the real local server on a free port, on the memory store or on Redis through
 * the Upstash REST bridge to the real redis-server; plus a raw HTTP client for the API.
 */
import { afterAll, beforeAll, inject, it } from "vitest";
import { createClient } from "redis";
import { startServer, type RunningServer } from "../../lib/server.js";
import { startUpstashBridge, type Bridge } from "../../scripts/upstash-bridge.js";

export type StoreKind = "memory" | "redis";
export const STORES: StoreKind[] = ["memory", "redis"];

export const redisUrl = () => inject("redisUrl");
export const hasRedis = () => redisUrl() !== "";

/** Settings every test server starts with: no public STUN, limits out of the way. */
export const TEST_ENV = {
  ICE_SERVERS: "[]",
  RATE_LIMIT_ROOMS_PER_HOUR: "100000",
  RATE_LIMIT_CALLS_PER_HOUR: "1000000",
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

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** A thin fetch wrapper: JSON in, parsed JSON (or null) out. */
export function apiClient(base: string) {
  async function call<T = any>(method: string, path: string, options: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let body: string | undefined = options.raw;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["content-type"] ??= "application/json";
    }
    const res = await fetch(base + path, { method, headers, body, signal: options.signal });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
  }
  return {
    call,
    get: <T = any>(path: string, token?: string) => call<T>("GET", path, { token }),
    post: <T = any>(path: string, body: unknown, token?: string) => call<T>("POST", path, { body, token }),
    del: <T = any>(path: string, token?: string) => call<T>("DELETE", path, { token }),
  };
}

export type Api = ReturnType<typeof apiClient>;

export interface Peer {
  roomId: string;
  peerId: string;
  token: string;
}

export async function createRoom(api: Api, body: Record<string, unknown> = {}): Promise<Peer & { body: any }> {
  const res = await api.post("/api/rooms", body);
  if (res.status !== 201) throw new Error(`create room: ${res.status} ${JSON.stringify(res.body)}`);
  return { roomId: res.body.roomId, peerId: res.body.peerId, token: res.body.token, body: res.body };
}

export async function joinRoom(api: Api, roomId: string, name?: string): Promise<Peer & { body: any }> {
  const res = await api.post("/api/peers", name ? { roomId, name } : { roomId });
  if (res.status !== 201) throw new Error(`join: ${res.status} ${JSON.stringify(res.body)}`);
  return { roomId, peerId: res.body.peerId, token: res.body.token, body: res.body };
}

/** Reads and acknowledges everything pending for a peer, following the cursor. */
export async function drain(api: Api, peer: Peer, after?: string): Promise<{ messages: any[]; cursor?: string }> {
  const messages: any[] = [];
  let cursor = after;
  for (;;) {
    const res = await api.get(`/api/poll?roomId=${peer.roomId}${cursor ? `&after=${cursor}` : ""}`, peer.token);
    if (res.status === 204) return { messages, cursor };
    if (res.status !== 200) throw new Error(`poll: ${res.status} ${JSON.stringify(res.body)}`);
    messages.push(...res.body.messages);
    cursor = res.body.cursor;
  }
}

/** Every key of signalbox's in the Redis behind the harness. */
export async function signalboxKeys(redis: RedisInspector, pattern = "sb:*"): Promise<string[]> {
  const keys: string[] = [];
  for await (const batch of redis.scanIterator({ MATCH: pattern, COUNT: 1000 })) keys.push(...batch);
  return keys;
}
