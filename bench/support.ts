/**
 * What every benchmark shares: the machine's description, percentiles, tables, JSON results,
 * and the system under test as separate processes — the server (scripts/serve.ts) on the
 * memory store, on Redis through the Upstash REST bridge, or on Redis over TCP (one server, or
 * a 3-master cluster started for it) — so a benchmark's own load
 * does not share an event loop with what it measures.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { createClient } from "redis";
import { spawnPrinting } from "../tests/support/processes.js";
import { startCluster } from "../tests/support/redis-cluster.js";
import { ensureRedis } from "../tests/support/redis-server.js";

export { startServer, type ServerProcess } from "../tests/support/processes.js";

/** "redis": through the Upstash REST bridge; "redis-tcp" and "redis-cluster": over TCP. */
export type StoreKind = "memory" | "redis" | "redis-tcp" | "redis-cluster";
export const STORES: StoreKind[] = ["memory", "redis"];
/** BENCH_SMOKE=1: tiny sizes, so CI checks the benchmarks still run without spending minutes. */
export const SMOKE = process.env.BENCH_SMOKE === "1";
const root = new URL("../", import.meta.url).pathname;

export function machine() {
  return {
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    date: new Date().toISOString(),
    smoke: SMOKE,
  };
}

export interface Summary {
  n: number;
  median: number;
  p95: number;
  p99: number;
  max: number;
}

export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const round = (x: number) => Math.round(x * 10) / 10;
  return { n: sorted.length, median: round(at(0.5)), p95: round(at(0.95)), p99: round(at(0.99)), max: round(sorted.at(-1) ?? NaN) };
}

export function printTable(title: string, headers: string[], rows: (string | number)[][]) {
  console.log(`\n### ${title}\n`);
  console.log(`| ${headers.join(" | ")} |`);
  console.log(`|${headers.map(() => "---").join("|")}|`);
  for (const row of rows) console.log(`| ${row.join(" | ")} |`);
}

export async function saveResult(name: string, data: unknown) {
  const dir = `${root}bench-results`;
  await mkdir(dir, { recursive: true });
  await writeFile(`${dir}/${name}.json`, JSON.stringify({ machine: machine(), ...(data as object) }, null, 2));
}

/** The store a server runs on: its environment, and for Redis, command counts. */
export interface StoreUnderTest {
  kind: StoreKind;
  env: Record<string, string>;
  /** Redis: bytes redis-server uses (INFO memory), and what keys matching a pattern take (MEMORY USAGE). */
  memory?: { used(): Promise<number>; ofKeys(pattern: string): Promise<number> };
  /** Commands sent to "Upstash" (billed) and run by redis-server (scripts' included), since the last reset. */
  commands(): Promise<{ sent: Record<string, number>; run: Record<string, number> }>;
  resetCommands(): Promise<void>;
  stop(): Promise<void>;
}

const BASE_ENV = {
  ICE_SERVERS: "[]",
  LOG_LEVEL: "warn", // a line per request would be measured too

  RATE_LIMIT_ROOMS_PER_HOUR: "10000000",
  RATE_LIMIT_CALLS_PER_HOUR: "10000000",
  RATE_LIMIT_CHAT_PER_MINUTE: "10000000",
  RATE_LIMIT_PROBES_PER_HOUR: "10000000",
  RATE_LIMIT_JOINS_PER_HOUR: "10000000",
  RATE_LIMIT_ROOM_CHAT_PER_MINUTE: "10000000",
  // One benchmark client plays thousands of users from one address.
  WAITING_READS_PER_ADDRESS: "10000000",
  CONNECTIONS_PER_ADDRESS: "10000000",
};

export async function startStore(kind: StoreKind): Promise<StoreUnderTest> {
  if (kind === "memory") {
    const none = async () => ({ sent: {}, run: {} });
    return { kind, env: { ...BASE_ENV }, commands: none, resetCommands: async () => {}, stop: async () => {} };
  }
  if (kind === "redis-tcp" || kind === "redis-cluster") return startTcpStore(kind);
  const redisServer = await ensureRedis();
  if (!redisServer) throw new Error("no Redis: start redis-server or set REDIS_URL");
  const token = "bench-bridge";
  const bridge = await spawnPrinting(["scripts/upstash-bridge.ts"], { REDIS_URL: redisServer.url, BRIDGE_PORT: "0", BRIDGE_TOKEN: token }, /bridge on (http:\/\/\S+)/);
  const redis = createClient({ url: redisServer.url });
  await redis.connect();
  const auth = { authorization: `Bearer ${token}` };
  return {
    kind,
    env: { ...BASE_ENV, UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: token },
    memory: {
      used: async () => Number(/used_memory:(\d+)/.exec(await redis.info("memory"))?.[1]),
      async ofKeys(pattern) {
        let bytes = 0;
        for await (const keys of redis.scanIterator({ MATCH: pattern, COUNT: 1000 })) for (const key of keys) bytes += (await redis.memoryUsage(key)) ?? 0;
        return bytes;
      },
    },
    async commands() {
      const sent = (await (await fetch(`${bridge.url}/__counts`, { headers: auth })).json()) as Record<string, number>;
      const run: Record<string, number> = {};
      for (const m of (await redis.info("commandstats")).matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) run[m[1]] = Number(m[2]);
      delete run.info;
      delete run["config|resetstat"];
      return { sent, run };
    },
    async resetCommands() {
      await fetch(`${bridge.url}/__counts`, { method: "DELETE", headers: auth });
      await redis.configResetStat();
    },
    async stop() {
      await redis.quit();
      bridge.child.kill("SIGTERM");
      redisServer.stop();
    },
  };
}

/** Redis over TCP: no REST hop to count commands at (the REST runs bill them; the scripts are the same). */
async function startTcpStore(kind: "redis-tcp" | "redis-cluster"): Promise<StoreUnderTest> {
  const none = async () => ({ sent: {}, run: {} });
  if (kind === "redis-tcp") {
    const redisServer = await ensureRedis();
    if (!redisServer) throw new Error("no Redis: start redis-server or set REDIS_URL");
    return { kind, env: { ...BASE_ENV, REDIS_URL: redisServer.url }, commands: none, resetCommands: async () => {}, stop: async () => redisServer.stop() };
  }
  const cluster = await startCluster();
  if (!cluster) throw new Error("no Redis Cluster could be started (redis-server and redis-cli 7 needed)");
  return { kind, env: { ...BASE_ENV, REDIS_URL: cluster.url, REDIS_CLUSTER: "true" }, commands: none, resetCommands: async () => {}, stop: async () => cluster.stop() };
}

export const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
