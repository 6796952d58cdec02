/**
 * A real Redis Cluster for the cluster suites, started here on free ports: `redis-server
 * --cluster-enabled yes` per node, then `redis-cli --cluster create` (3 masters; with replicas,
 * that many per master).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "redis";
import { childEnv, removedOnExit } from "./processes.js";
import { answers, freePort } from "./redis-server.js";

export interface RunningCluster {
  /** One node's URL: the client learns the others from it. */
  url: string;
  /** Every node's port, masters and replicas. */
  ports: number[];
  /** The nodes' folder (their cluster configuration), removed by stop(). */
  dir: string;
  /** Kills the node on `port`, as a crash would. */
  kill(port: number): void;
  stop(): void;
}

/** The node serves its slots, and a replica has synced with its master (until then it holds no copy). */
async function clusterOk(port: number): Promise<boolean> {
  const client = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } });
  client.on("error", () => {});
  try {
    await client.connect();
    const role = (await client.sendCommand(["ROLE"])) as string[];
    if (role[0] === "slave" && role[3] !== "connected") return false;
    return /cluster_state:ok/.test(String(await client.sendCommand(["CLUSTER", "INFO"])));
  } catch {
    return false;
  } finally {
    client.destroy();
  }
}

/**
 * Starts `masters` masters and `replicas` replicas of each (every node with `extra` redis-server
 * arguments), and joins them into a cluster.
 */
export async function startCluster(masters = 3, extra: string[] = [], replicas = 0): Promise<RunningCluster | null> {
  const dir = mkdtempSync(join(tmpdir(), "signalbox-cluster-"));
  removedOnExit({ dir });
  const ports: number[] = [];
  const children: ChildProcess[] = [];
  const stop = () => {
    children.forEach((c) => c.kill());
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await freePort();
      ports.push(port);
      const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file", join(dir, `nodes-${port}.conf`), "--save", "", "--appendonly", "no", "--dir", dir, ...extra], { stdio: "ignore", env: childEnv() });
      removedOnExit({ child });
      children.push(child);
    }
    for (const port of ports) {
      for (let i = 0; i < 50 && !(await answers(`redis://127.0.0.1:${port}`)); i++) await new Promise((r) => setTimeout(r, 100));
    }
    const created = spawnSync("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", String(replicas), "--cluster-yes"], { encoding: "utf8", timeout: 30_000, env: childEnv() });
    if (created.status === 0) {
      for (let i = 0; i < 150; i++) {
        if ((await Promise.all(ports.map(clusterOk))).every(Boolean)) {
          return { url: `redis://127.0.0.1:${ports[0]}`, ports, dir, stop, kill: (port) => children[ports.indexOf(port)].kill("SIGKILL") };
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (error) {
    stop();
    throw error;
  }
  stop();
  return null;
}

/** The port of the master that holds `key`'s slot, asked of the cluster node at `url`. */
export async function ownerOf(url: string, key: string): Promise<number> {
  const client = createClient({ url });
  await client.connect();
  try {
    const slot = Number(await client.sendCommand(["CLUSTER", "KEYSLOT", key]));
    const ranges = (await client.sendCommand(["CLUSTER", "SLOTS"])) as [number, number, [string, number]][];
    const range = ranges.find(([from, to]) => slot >= from && slot <= to)!;
    return Number(range[2][1]);
  } finally {
    await client.quit();
  }
}

/** The ports of the cluster's masters (each serving a range of slots). */
export async function masterPorts(url: string): Promise<number[]> {
  const client = createClient({ url });
  await client.connect();
  try {
    const ranges = (await client.sendCommand(["CLUSTER", "SLOTS"])) as [number, number, [string, number]][];
    return [...new Set(ranges.map((range) => Number(range[2][1])))];
  } finally {
    await client.quit();
  }
}
