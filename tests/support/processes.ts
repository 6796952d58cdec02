/**
 * The system as separate processes: the server (scripts/serve.ts) and the Upstash REST bridge,
 * each started as a child process that prints the URL it listens on. Benchmarks use them so
 * their load does not share an event loop with what they measure; the multi-process tests so
 * that "several servers on one Redis" means several processes.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";

const root = new URL("../../", import.meta.url).pathname;

/** Starts a child process and resolves with the URL it prints on its first matching line. */
export function spawnPrinting(args: string[], env: Record<string, string>, pattern: RegExp): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
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

