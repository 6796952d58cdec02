/**
 * Benchmark 3 — what one server process holds (2 cores here): idle long-polls held at once with
 * the latency of an unrelated request meanwhile, the process's memory, and complete viewer
 * setups per second at saturation.
 */
import { setMaxListeners } from "node:events";
import { apiClient, createRoom, joinRoom, type Peer } from "../tests/support/api.js";
import { starExchange } from "./star-exchange.js";
import { printTable, saveResult, SMOKE, startServer, startStore, STORES, summarize, type StoreKind } from "./support.js";

/** Idle long-polls to hold; through the bridge each is a live subscription (a Redis connection); over TCP all share one. */
const HELD: Partial<Record<StoreKind, number[]>> = SMOKE
  ? { memory: [50], redis: [50] }
  : { memory: [1000, 5000, 10_000], redis: [1000, 2000], "redis-tcp": [1000, 5000, 10_000] };
const SATURATION = { concurrency: SMOKE ? 5 : 50, seconds: SMOKE ? 2 : 10 };

async function inBatches<T>(count: number, size: number, make: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < count; i += size) out.push(...(await Promise.all(Array.from({ length: Math.min(size, count - i) }, (_, k) => make(i + k)))));
  return out;
}

export async function capacityBenchmark() {
  const held: (string | number)[][] = [];
  const saturation: (string | number)[][] = [];
  const results: Record<string, unknown> = {};
  // Smoke runs (CI) leave TCP to the latency smoke: the run has a time budget.
  for (const kind of (SMOKE ? STORES : [...STORES, "redis-tcp"]) as StoreKind[]) {
    const store = await startStore(kind);
    const server = await startServer(store.env);
    const api = apiClient(server.url);
    try {
      const probeRoom = await createRoom(api);
      for (const count of HELD[kind] ?? []) {
        // Peers in rooms of 100 viewers, each holding one idle long-poll.
        const hosts = await inBatches(Math.ceil(count / 100), 20, () => createRoom(api, { maxPeers: 101 }));
        const peers: Peer[] = await inBatches(count, 50, (i) => joinRoom(api, hosts[Math.floor(i / 100)].roomId));
        // One signal ends every held poll: thousands of listeners on it are the point, not a leak.
        const stop = new AbortController();
        setMaxListeners(0, stop.signal);
        const polls = peers.map((p) =>
          fetch(`${server.url}/api/poll?roomId=${p.roomId}&wait=25`, { headers: { authorization: `Bearer ${p.token}` }, signal: stop.signal }).then((r) => r.status, () => 0),
        );
        await new Promise((r) => setTimeout(r, SMOKE ? 1000 : 5000));
        const probes: number[] = [];
        for (let i = 0; i < 200; i++) {
          const t = performance.now();
          await fetch(`${server.url}/api/diagnostics?roomId=${probeRoom.roomId}`);
          probes.push(performance.now() - t);
        }
        const rss = await server.rssMiB();
        stop.abort();
        const statuses = await Promise.all(polls);
        const early = statuses.filter((s) => s !== 0).length; // answered before we let go: not held
        await Promise.all(hosts.map((hst) => api.del(`/api/rooms?roomId=${hst.roomId}`, hst.token)));
        const s = summarize(probes);
        results[`${kind}/held/${count}`] = { probe: s, rssMiB: rss, answeredEarly: early };
        held.push([kind, count - early, s.median, s.p99, rss]);
      }

      let completed = 0;
      const deadline = performance.now() + SATURATION.seconds * 1000;
      await Promise.all(
        Array.from({ length: SATURATION.concurrency }, async () => {
          while (performance.now() < deadline) {
            const e = await starExchange({ hostUrl: server.url, mode: "long-poll" });
            e.host.stop();
            e.viewer.stop();
            await e.host.closeRoom();
            if (performance.now() <= deadline) completed++;
          }
        }),
      );
      const perSecond = Math.round((completed / SATURATION.seconds) * 10) / 10;
      results[`${kind}/setupsPerSecond`] = perSecond;
      saturation.push([kind, SATURATION.concurrency, perSecond, await server.rssMiB()]);
    } finally {
      await server.stop();
      await store.stop();
    }
  }
  printTable("Idle long-polls held by one server process, and an unrelated request meanwhile", ["store", "long-polls held", "request median ms", "request p99 ms", "server RSS MiB"], held);
  printTable(`Complete viewer setups per second at saturation (${SATURATION.concurrency} at a time for ${SATURATION.seconds} s)`, ["store", "concurrent setups", "setups/s", "server RSS MiB"], saturation);
  await saveResult("capacity", { results });
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) await capacityBenchmark();
