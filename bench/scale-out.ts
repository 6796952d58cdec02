/**
 * Benchmark 5 — scale-out: one, two and three server processes sharing one Redis (through the
 * REST bridge, and a Redis Cluster over TCP), on nothing
 * but different ports; every room's host on one process and its viewer on the next. It works
 * (every setup completes) and throughput is measured as processes are added. (The memory store
 * is one process's own: it does not scale out, by design.)
 */
import { starExchange } from "./star-exchange.js";
import { printTable, saveResult, SMOKE, startServer, startStore, type StoreKind } from "./support.js";

const PROCESSES = [1, 2, 3];
const LOAD = { concurrency: SMOKE ? 4 : 40, seconds: SMOKE ? 2 : 10 };

export async function scaleOutBenchmark() {
  const rows: (string | number)[][] = [];
  const results: Record<string, number> = {};
  // Smoke runs (CI) leave the cluster to the latency smoke: the run has a time budget.
  for (const kind of (SMOKE ? ["redis"] : ["redis", "redis-cluster"]) as StoreKind[]) await scaleOut(kind, rows, results);
  printTable(`Scale-out on one Redis (${LOAD.concurrency} setups at a time for ${LOAD.seconds} s)`, ["store", "server processes", "peers of a room", "setups completed/started", "setups/s", "vs one process"], rows);
  await saveResult("scale-out", { results });
  return results;
}

async function scaleOut(kind: StoreKind, rows: (string | number)[][], results: Record<string, number>) {
  const store = await startStore(kind);
  try {
    for (const count of PROCESSES) {
      const servers = await Promise.all(Array.from({ length: count }, () => startServer(store.env)));
      let completed = 0;
      let started = 0;
      const deadline = performance.now() + LOAD.seconds * 1000;
      await Promise.all(
        Array.from({ length: LOAD.concurrency }, async (_, worker) => {
          for (let i = worker; performance.now() < deadline; i += LOAD.concurrency) {
            started++;
            const e = await starExchange({ hostUrl: servers[i % count].url, viewerUrl: servers[(i + 1) % count].url, mode: "long-poll" });
            e.host.stop();
            e.viewer.stop();
            await e.host.closeRoom();
            completed++;
          }
        }),
      );
      await Promise.all(servers.map((s) => s.stop()));
      const perSecond = Math.round((completed / LOAD.seconds) * 10) / 10;
      results[`${kind}/${count}`] = perSecond;
      const one = results[`${kind}/1`];
      rows.push([kind, count, count === 1 ? "same process" : "host and viewer on different processes", `${completed}/${started}`, perSecond, `${Math.round((perSecond / one) * 100) / 100}×`]);
    }
  } finally {
    await store.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await scaleOutBenchmark();
