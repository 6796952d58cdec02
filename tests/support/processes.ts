/**
 * The system as separate processes: the server (scripts/serve.ts) and the Upstash REST bridge,
 * each started as a child process that prints the URL it listens on. Benchmarks use them so
 * their load does not share an event loop with what they measure; the multi-process tests so
 * that "several servers on one Redis" means several processes.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { readFile } from "node:fs/promises";

const root = new URL("../../", import.meta.url).pathname;

/**
 * What a child process of a test or benchmark runs with: only what a process needs to start
 * (where programs and temporary files are), and `env`. Nothing else of the shell's comes
 * through, so no REDIS_URL or STORE set by a developer decides what a test runs against.
 */
export function childEnv(env: Record<string, string> = {}): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "TMPDIR", "LANG", "TZ"]) if (process.env[name] !== undefined) kept[name] = process.env[name]!;
  return { ...kept, ...env };
}

const leftovers = { children: new Set<ChildProcess>(), dirs: new Set<string>() };

function cleanUp() {
  for (const child of leftovers.children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const dir of leftovers.dirs) rmSync(dir, { recursive: true, force: true });
  leftovers.children.clear();
  leftovers.dirs.clear();
}

let hooked = false;

/**
 * Ties a child process (a redis-server, a server) and a temporary folder to this process: they
 * go when it exits, however it exits — a suite whose set-up failed or timed out, an uncaught
 * error, a signal — not only when an afterAll got to run. Stopping them earlier is still the
 * caller's job; a child that has exited is left alone.
 */
export function removedOnExit(things: { child?: ChildProcess; dir?: string }) {
  if (things.child) {
    const child = things.child;
    leftovers.children.add(child);
    child.once("exit", () => leftovers.children.delete(child));
  }
  if (things.dir) leftovers.dirs.add(things.dir);
  if (hooked) return;
  hooked = true;
  process.once("exit", cleanUp);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      cleanUp();
      process.kill(process.pid, signal); // and go as that signal would have made it go
    });
  }
}

/** Starts a child process and resolves with the URL it prints on its first matching line. */
export function spawnPrinting(args: string[], env: Record<string, string>, pattern: RegExp): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: root, env: childEnv(env), stdio: ["ignore", "pipe", "inherit"] });
  removedOnExit({ child });
  return new Promise((resolve, reject) => {
    let out = "";
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const url = pattern.exec(out)?.[1];
      if (!url) return;
      child.stdout!.off("data", onData);
      child.stdout!.resume(); // keep draining, keep nothing
      resolve({ url, child });
    };
    child.stdout!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`${args.join(" ")} exited (${code}) before it was ready:\n${out}`)));
  });
}

export interface ServerProcess {
  url: string;
  pid: number;
  /** Resident memory of the server process, in MiB. */
  rssMiB(): Promise<number>;
  stop(): Promise<void>;
}

export async function startServer(env: Record<string, string>): Promise<ServerProcess> {
  const { url, child } = await spawnPrinting(["scripts/serve.ts"], { PORT: "0", HOST: "127.0.0.1", ...env }, /listening on (http:\/\/\S+)/);
  return {
    url,
    pid: child.pid!,
    async rssMiB() {
      const status = await readFile(`/proc/${child.pid}/status`, "utf8");
      return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
    },
    stop: () => new Promise((done) => (child.once("exit", () => done()), child.kill("SIGTERM"))),
  };
}

