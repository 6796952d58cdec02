/**
 * Finds a Redis to run against: REDIS_URL, else the machine's 127.0.0.1:6379, else a
 * redis-server started here on a free port (as inside the test network namespace).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { createClient } from "redis";
import { childEnv, removedOnExit } from "./processes.js";

/** `SIGNALBOX_TEST_SETUPS=memory,redis` runs the suites on those setups only (CI's second Node: what Vercel runs); unset, all. */
export function chosenSetups(): string[] | undefined {
  const chosen = (process.env.SIGNALBOX_TEST_SETUPS ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  return chosen.length ? chosen : undefined;
}

export async function answers(url: string): Promise<boolean> {
  const client = createClient({ url, socket: { connectTimeout: 1000, reconnectStrategy: false } });
  client.on("error", () => {});
  try {
    await client.connect();
    return (await client.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    client.destroy();
  }
}

/** A port nothing listens on now (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
    probe.on("error", reject);
  });
}

export async function startRedis(): Promise<{ url: string; child: ChildProcess } | null> {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore", env: childEnv() });
  removedOnExit({ child });
  const spawned = await new Promise<boolean>((resolve) => {
    child.once("error", () => resolve(false));
    child.once("spawn", () => resolve(true));
  });
  if (!spawned) return null;
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 50; i++) {
    if (await answers(url)) return { url, child };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  return null;
}

/** Whether a redis-server binary can be run here. */
export const hasRedisServer = () => spawnSync("redis-server", ["--version"]).status === 0;

/** A reachable Redis, and how to stop it if this started it; null when there is none. */
export async function ensureRedis(): Promise<{ url: string; stop(): void } | null> {
  const configured = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  if (await answers(configured)) return { url: configured, stop() {} };
  const started = await startRedis();
  return started ? { url: started.url, stop: () => started.child.kill() } : null;
}
