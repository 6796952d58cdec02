/**
 * npm run check:upstash — the store contract suite against a real Upstash database, before you
 * deploy: what the local bridge stands in for (key locking, Lua, SUBSCRIBE over REST), checked
 * against the real thing. Give it a database of its own (a free one does): it writes test rooms,
 * each with a TTL of at most a day, and lists the AI deadline index.
 *
 *   UPSTASH_REDIS_REST_URL=https://… UPSTASH_REDIS_REST_TOKEN=… npm run check:upstash
 */
import { spawnSync } from "node:child_process";

const { UPSTASH_REDIS_REST_URL: url, UPSTASH_REDIS_REST_TOKEN: token } = process.env;
if (!url || !token) {
  console.log("check:upstash SKIPPED: set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN to an Upstash database of its own to run the store contract against it.");
  process.exit(0);
}
console.log(`check:upstash: the store contract suite against ${new URL(url).host}`);
const run = spawnSync("npx", ["vitest", "run", "--project", "unit", "tests/store.contract.test.ts"], {
  stdio: "inherit",
  env: { ...process.env, SIGNALBOX_CHECK_UPSTASH: "1" },
});
process.exit(run.status ?? 1);
