/**
 * Delivery at scale, beside a comparison: the PeerJS server (`peer` 1.0.2, a devDependency for
 * this benchmark only), which relays over WebSocket and keeps its state in one process's memory.
 *
 * N pairs connect and stay connected; then messages go between random pairs, a few at a time,
 * and each is timed from its send to the recipient having it (all clients in this process, so
 * one clock). signalbox: the client library on its event stream (and, for comparison, on
 * long-poll), a candidate sent with POST /api/candidate. PeerJS: its own wire protocol (what
 * its browser client sends: a CANDIDATE relayed to `dst`). Server memory: the process's RSS
 * before and after the pairs connect, per connected peer (signalbox on Redis: the server
 * process only; the bridge and Redis come on top).
 */
import { spawn } from "node:child_process";
import { WebSocket } from "ws";
import { SignalingClient, type Message } from "../lib/client/signaling-client.js";
import { freePort } from "../tests/support/redis-server.js";
import { printTable, saveResult, SMOKE, startServer, startStore, summarize, type StoreKind, type Summary } from "./support.js";

const PAIRS = SMOKE ? 10 : 1000;
const SAMPLES = SMOKE ? 40 : 1000;
const AT_ONCE = 5;
/** Smoke runs (CI) leave TCP to the latency smoke: the run has a time budget. BENCH_STORES=a,b: only those. */
const STORES = (process.env.BENCH_STORES?.split(",") ?? (SMOKE ? ["memory", "redis"] : ["memory", "redis", "redis-tcp"])) as StoreKind[];

interface Pair {
  send(n: number): void;
  /** Resolves when the recipient has message `n`. */
  received(n: number): Promise<void>;
}

/** Sends SAMPLES messages over random pairs, AT_ONCE at a time; the delivery times in ms. */
async function measure(pairs: Pair[]): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: AT_ONCE }, async () => {
      while (next < SAMPLES) {
        const n = next++;
        const pair = pairs[Math.floor(Math.random() * pairs.length)];
        const got = pair.received(n);
        const started = performance.now();
        pair.send(n);
        await got;
        latencies.push(performance.now() - started);
      }
    }),
  );
  return latencies;
}

/** Waits on messages by number, for one recipient. */
function mailbox() {
  const waiting = new Map<number, () => void>();
  return {
    deliver: (n: number) => waiting.get(n)?.(),
    received: (n: number) => new Promise<void>((resolve) => waiting.set(n, resolve)),
  };
}

async function rssMiB(pid: number): Promise<number> {
  const { readFile } = await import("node:fs/promises");
  return Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
}

async function peerjs(): Promise<{ latencies: number[]; kibPerPeer: number }> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--input-type=module", "-e", `import { PeerServer } from "peer"; PeerServer({ port: ${port}, host: "127.0.0.1", concurrent_limit: 1000000 }, () => console.log("ready"));`], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((ready) => child.stdout!.on("data", (d: Buffer) => d.toString().includes("ready") && ready()));
  try {
    const before = await rssMiB(child.pid!);
    const open = (id: string, onMessage: (m: { type: string; payload?: { n: number } }) => void) =>
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/peerjs?key=peerjs&id=${id}&token=t${id}`);
        ws.on("message", (data) => {
          const m = JSON.parse(String(data));
          if (m.type === "OPEN") resolve(ws);
          else onMessage(m);
        });
        ws.on("error", reject);
      });
    const sockets: WebSocket[] = [];
    const pairs: Pair[] = [];
    for (let i = 0; i < PAIRS; i += 50) {
      pairs.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(50, PAIRS - i) }, async (_, k) => {
            const box = mailbox();
            const [a, b] = [`a${i + k}`, `b${i + k}`];
            const from = await open(a, () => {});
            const to = await open(b, (m) => m.type === "CANDIDATE" && box.deliver(m.payload!.n));
            sockets.push(from, to);
            return { send: (n: number) => from.send(JSON.stringify({ type: "CANDIDATE", dst: b, payload: { n } })), received: box.received };
          }),
        )),
      );
    }
    await new Promise((r) => setTimeout(r, 1000));
    const kibPerPeer = ((await rssMiB(child.pid!)) - before) * 1024 / (2 * PAIRS);
    const latencies = await measure(pairs);
    sockets.forEach((s) => s.close());
    return { latencies, kibPerPeer };
  } finally {
    child.kill();
  }
}

async function signalbox(url: string, pid: number, mode: "stream" | "long-poll") {
  const before = await rssMiB(pid);
  const clients: SignalingClient[] = [];
  const pairs: Pair[] = [];
  for (let i = 0; i < PAIRS; i += 50) {
    pairs.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(50, PAIRS - i) }, async () => {
          const host = await SignalingClient.createRoom({}, { baseUrl: url, mode });
          const viewer = await SignalingClient.joinRoom(host.roomId, {}, { baseUrl: url, mode });
          const box = mailbox();
          viewer.onMessage((m: Message) => m.type === "candidate" && box.deliver(Number(m.candidates[0]!.candidate.split(" ")[0].slice(10))));
          host.start();
          viewer.start();
          clients.push(host, viewer);
          const candidate = (n: number) => ({ candidate: `candidate:${n} 1 udp 2122260223 127.0.0.1 50000 typ host`, sdpMid: "0", sdpMLineIndex: 0 });
          return { send: (n: number) => void host.sendCandidates(viewer.peerId, [candidate(n)]), received: box.received };
        }),
      )),
    );
  }
  await new Promise((r) => setTimeout(r, 2000)); // every stream open, every long-poll waiting
  const kibPerPeer = ((await rssMiB(pid)) - before) * 1024 / (2 * PAIRS);
  const latencies = await measure(pairs);
  clients.forEach((c) => c.stop());
  await Promise.all(clients.filter((c) => c.session.role === "host").map((c) => c.closeRoom()));
  return { latencies, kibPerPeer };
}

export async function deliveryBenchmark() {
  const rows: (string | number)[][] = [];
  const results: Record<string, Summary & { kibPerPeer: number }> = {};
  const add = (name: string, run: { latencies: number[]; kibPerPeer: number }) => {
    const s = summarize(run.latencies);
    results[name] = { ...s, kibPerPeer: Math.round(run.kibPerPeer * 10) / 10 };
    rows.push([name, PAIRS, s.n, s.median, s.p95, s.p99, Math.round(run.kibPerPeer * 10) / 10]);
  };
  add("PeerJS server (comparison, WebSocket)", await peerjs());
  for (const kind of STORES) {
    const store = await startStore(kind);
    const server = await startServer(store.env);
    try {
      for (const mode of ["stream", "long-poll"] as const) add(`signalbox ${kind}, ${mode}`, await signalbox(server.url, server.pid, mode));
    } finally {
      await server.stop();
      await store.stop();
    }
  }
  const peer = results["PeerJS server (comparison, WebSocket)"];
  printTable(
    `Delivery, send → recipient has it (ms), ${PAIRS} connected pairs; ${SAMPLES} messages, ${AT_ONCE} at a time. Ratio to PeerJS at the median: ${Object.entries(results)
      .slice(1)
      .map(([name, s]) => `${name} ${(s.median / peer.median).toFixed(1)}×`)
      .join(", ")}`,
    ["server", "pairs", "messages", "median", "p95", "p99", "server KiB per connected peer"],
    rows,
  );
  await saveResult("delivery", { pairs: PAIRS, results });
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) await deliveryBenchmark();
