/**
 * Benchmark 1 — signaling latency: from a POST returning to the recipient's read returning the
 * message, with long-poll and with interval polling (the seed's 1 s ×10 then 5 s), while 1, 100
 * and 1000 rooms run the full star exchange at once (synthetic peers: the client library,
 * without browsers).
 */
import { starExchange } from "./star-exchange.js";
import { printTable, saveResult, SMOKE, startServer, startStore, STORES, summarize, type Summary } from "./support.js";

const ROOMS = SMOKE ? [1, 5] : [1, 100, 1000];
const MODES = ["long-poll", "interval"] as const;

export async function latencyBenchmark() {
  const rows: (string | number)[][] = [];
  const results: Record<string, Summary & { seconds: number }> = {};
  for (const kind of STORES) {
    const store = await startStore(kind);
    const server = await startServer(store.env);
    try {
      for (const mode of MODES) {
        for (const rooms of ROOMS) {
          const started = performance.now();
          const exchanges = await Promise.all(Array.from({ length: rooms }, () => starExchange({ hostUrl: server.url, mode })));
          const seconds = Math.round((performance.now() - started) / 100) / 10;
          for (const e of exchanges) e.host.stop(), e.viewer.stop();
          await Promise.all(exchanges.map((e) => e.host.closeRoom()));
          const s = summarize(exchanges.flatMap((e) => e.latencies));
          results[`${kind}/${mode}/${rooms}`] = { ...s, seconds };
          rows.push([kind, mode, rooms, s.n, s.median, s.p95, s.p99, s.max, seconds]);
        }
      }
    } finally {
      await server.stop();
      await store.stop();
    }
  }
  printTable("Signaling latency, POST returned → recipient's read returned (ms)", ["store", "polling", "rooms at once", "messages", "median", "p95", "p99", "max", "all exchanges done (s)"], rows);
  await saveResult("latency", { results });
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) await latencyBenchmark();
