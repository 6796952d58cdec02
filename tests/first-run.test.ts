/**
 * `npm start` as a new user meets it: what it prints when it runs, and a line in words, not a
 * stack trace, when it cannot (a bad PORT, a port in use, a wrong Upstash token).
 */
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { startUpstashBridge } from "../scripts/upstash-bridge.js";
import { hasRedis, redisUrl } from "./support/harness.js";
import { childEnv, removedOnExit } from "./support/processes.js";

const root = new URL("../", import.meta.url).pathname;

/** Runs scripts/serve.ts until it prints its store line (or exits); returns what it printed and its exit code. */
function serve(env: Record<string, string>): Promise<{ out: string; code: number | null }> {
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/serve.ts"], { cwd: root, env: childEnv({ HOST: "127.0.0.1", LOG_LEVEL: "warn", ...env }) });
  removedOnExit({ child });
  let out = "";
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill(), 15_000);
    const done = (code: number | null) => (clearTimeout(timer), resolve({ out, code }));
    const read = (chunk: Buffer) => {
      out += chunk.toString();
      // Running: give a start-up warning a moment, then stop it.
      if (/store: .*\n/.test(out)) setTimeout(() => child.kill(), 500);
    };
    child.stdout.on("data", read);
    child.stderr.on("data", read);
    child.once("exit", done);
  });
}

describe("npm start, as a new user meets it", () => {
  it("prints where the pages and the API are", async () => {
    const { out } = await serve({ PORT: "0" });
    for (const page of ["/host.html", "/view.html?room=", "/meet.html", "/ai.html", "/api/diagnostics"]) expect(out).toContain(page);
    expect(out).toMatch(/store: memory/);
  });

  it("refuses a bad PORT or LOG_LEVEL in one line naming it", async () => {
    for (const [env, named] of [[{ PORT: "abc" }, "PORT"], [{ PORT: "99999" }, "PORT"], [{ LOG_LEVEL: "debug" }, "LOG_LEVEL"]] as const) {
      const { out, code } = await serve(env);
      expect(code, out).toBe(1);
      expect(out).toContain(`${named}: must be`);
      expect(out).not.toMatch(/\n\s+at /); // no stack trace
    }
  });

  it("says a port is in use, and how to pick another", async () => {
    const taken = createServer().listen(0, "127.0.0.1");
    await new Promise((r) => taken.once("listening", r));
    const port = String((taken.address() as { port: number }).port);
    try {
      const { out, code } = await serve({ PORT: port });
      expect(code).toBe(1);
      expect(out.trim()).toMatch(new RegExp(`^signalbox cannot listen: port ${port} is in use\\. Pick another, e\\.g\\. PORT=\\d+ npm start$`));
    } finally {
      taken.close();
    }
  });

  it.skipIf(!hasRedis())("says at start, in words, that Upstash refused its token", async () => {
    const bridge = await startUpstashBridge({ redisUrl: redisUrl() });
    try {
      const { out } = await serve({ PORT: "0", UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: "not-the-token" });
      expect(out).toContain("warning: Upstash rejected the token: check UPSTASH_REDIS_REST_TOKEN");
      expect(out).not.toContain("not-the-token");
      const { out: right } = await serve({ PORT: "0", UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: bridge.token });
      expect(right).not.toContain("warning");
    } finally {
      await bridge.close();
    }
  });
});
