/**
 * Finds the Redis the Redis-backed suites run against: REDIS_URL, else the machine's
 * 127.0.0.1:6379, else a redis-server started here on a free port. With none, the Redis
 * suites are skipped loudly — except under CI=true, where a missing Redis fails the run.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import type { TestProject } from "vitest/node";
import { createClient } from "redis";

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

async function answers(url: string): Promise<boolean> {
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

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
    probe.on("error", reject);
  });
}

async function startRedis(): Promise<{ url: string; child: ChildProcess } | null> {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
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

export default async function setup(project: TestProject) {
  const configured = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  let url: string | null = (await answers(configured)) ? configured : null;
  let child: ChildProcess | undefined;
  if (!url) {
    const started = await startRedis();
    url = started?.url ?? null;
    child = started?.child;
  }
  if (!url) {
    if (process.env.CI === "true") throw new Error("No Redis reachable and redis-server could not be started: the Redis suites must run in CI");
    console.warn("\n*** No Redis reachable and no redis-server to start: every Redis suite is SKIPPED ***\n");
  }
  project.provide("redisUrl", url ?? "");
  return () => {
    child?.kill();
  };
}
