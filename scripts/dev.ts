/**
 * `npm run dev`: Vercel's own dev server (`vercel dev` in local mode: no login, no project
 * link) serving the pages at / and each API route as a function, as on Vercel. `vercel dev`
 * runs functions in processes of their own, so they cannot share the memory store: this
 * starts the Upstash REST bridge on a Redis (REDIS_URL, the machine's 127.0.0.1:6379, or a
 * redis-server it starts) and hands the functions its address, unless UPSTASH_* are set.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { ensureRedis } from "../tests/support/redis-server.js";
import { startUpstashBridge } from "./upstash-bridge.js";

const listen = `${process.env.HOST ?? "127.0.0.1"}:${process.env.PORT ?? "3000"}`;
const env: NodeJS.ProcessEnv = { ...process.env, VERCEL_TELEMETRY_DISABLED: "1" };
let cleanup = async () => {};

if (!env.UPSTASH_REDIS_REST_URL && !env.KV_REST_API_URL) {
  const redis = await ensureRedis();
  if (!redis) {
    console.error("npm run dev needs a Redis: install redis-server, set REDIS_URL, or set UPSTASH_REDIS_REST_URL/TOKEN");
    process.exit(1);
  }
  const bridge = await startUpstashBridge({ redisUrl: redis.url });
  Object.assign(env, { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: bridge.token });
  console.log(`signalbox dev: Redis ${redis.url}, through the Upstash REST bridge on ${bridge.url}`);
  cleanup = async () => {
    await bridge.close();
    redis.stop();
  };
}

// Local mode applies only to a checkout with no project link: a linked one is fetched from Vercel.
if (existsSync(".vercel/project.json") && !env.VERCEL_TOKEN) {
  console.warn("note: this checkout is linked to a Vercel project (.vercel/project.json), so vercel dev fetches it: that needs `vercel login`. To run with no account, move .vercel aside.");
}

// vercel@60 is the newest CLI the registry mirror installs; it is large, so not a devDependency.
// In a process group of its own, so stopping it stops what it started (its dev command, vite).
const vercel = spawn("npx", ["--yes", "vercel@60", "dev", "--local", "--yes", "--listen", listen], { env, stdio: "inherit", detached: true });
const stop = () => process.kill(-vercel.pid!, "SIGTERM");
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
vercel.on("exit", (code) => void cleanup().then(() => process.exit(code ?? 0)));
