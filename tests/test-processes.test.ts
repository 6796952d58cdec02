/**
 * The suites' own processes: a test's child gets only the environment the test chose, and a
 * suite that fails part-way (an uncaught error, a signal) leaves no Redis Cluster running and
 * no temporary folder behind.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { hasRedisServer, answers } from "./support/redis-server.js";
import { childEnv } from "./support/processes.js";

const root = new URL("../", import.meta.url).pathname;

/** Runs `code` (an ES module, from the repository's root) in a process of its own until it exits; returns what it printed. */
function run(code: string, env: Record<string, string> = {}, onLine?: (line: string, kill: () => void) => void): Promise<{ out: string; code: number | null; signal: string | null }> {
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { cwd: root, env: childEnv(env) });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk;
    for (const line of out.split("\n").slice(0, -1)) onLine?.(line, () => child.kill("SIGTERM"));
  });
  child.stderr.on("data", (chunk: Buffer) => (out += chunk));
  return new Promise((resolve) => child.once("exit", (exit, signal) => resolve({ out, code: exit, signal })));
}

describe("the suites' child processes", () => {
  it("get only the environment a test chose, not the shell's", async () => {
    process.env.SIGNALBOX_SHELL_ONLY = "from the shell";
    try {
      const { out } = await run(`console.log(JSON.stringify({ shell: process.env.SIGNALBOX_SHELL_ONLY ?? null, chosen: process.env.CHOSEN ?? null }))`, { CHOSEN: "by the test" });
      expect(JSON.parse(out.trim().split("\n").at(-1)!)).toEqual({ shell: null, chosen: "by the test" });
    } finally {
      delete process.env.SIGNALBOX_SHELL_ONLY;
    }
  });

  const start = `import { startCluster } from "./tests/support/redis-cluster.ts";
    const cluster = await startCluster(3);
    console.log("cluster " + JSON.stringify({ ports: cluster.ports, dir: cluster.dir }));`;

  it.skipIf(!hasRedisServer())("a suite that fails after starting a Redis Cluster leaves none of it running, nor its folder", { timeout: 60_000 }, async () => {
    const { out, code } = await run(`${start}\nthrow new Error("the suite failed");`);
    expect(code, out).not.toBe(0);
    const { ports, dir } = JSON.parse(/cluster (.*)/.exec(out)![1]) as { ports: number[]; dir: string };
    expect(await Promise.all(ports.map((p) => answers(`redis://127.0.0.1:${p}`)))).toEqual([false, false, false]);
    expect(existsSync(dir), dir).toBe(false);
  });

  it.skipIf(!hasRedisServer())("so does one stopped by a signal (a run cancelled, a worker timed out)", { timeout: 60_000 }, async () => {
    let started: { ports: number[]; dir: string } | undefined;
    const { out, signal } = await run(`${start}\nsetInterval(() => {}, 1000);`, {}, (line, kill) => {
      if (!started && line.startsWith("cluster ")) (started = JSON.parse(line.slice(8))), kill();
    });
    expect(signal, out).toBe("SIGTERM");
    expect(await Promise.all(started!.ports.map((p) => answers(`redis://127.0.0.1:${p}`)))).toEqual([false, false, false]);
    expect(existsSync(started!.dir)).toBe(false);
  });
});
