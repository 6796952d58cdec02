/**
 * Benchmark 1 — signaling latency: from a POST returning to the recipient's read returning the
 * message, on the event stream, with long-poll and with interval polling (the seed's 1 s ×10 then 5 s). N rooms are
 * held active at once (1, 100, 1000: a connected host and viewer each, in their poll loops)
 * while measured rooms run the full star exchange at a steady pace (synthetic peers: the
 * client library, without browsers).
 */
import { SignalingClient } from "../lib/client/signaling-client.js";
import { starExchange } from "./star-exchange.js";
import { printTable, saveResult, SMOKE, startServer, startStore, summarize, type StoreKind, type Summary } from "./support.js";

/** Every store and Redis transport, side by side in one run (BENCH_STORES=a,b: only those). */
const STORES = (process.env.BENCH_STORES?.split(",") ?? ["memory", "redis", "redis-tcp", "redis-cluster"]) as StoreKind[];

const ACTIVE = SMOKE ? [1, 5] : [1, 100, 1000];
// Smoke runs (CI) leave interval polling out: seconds per exchange, and the browser suites cover it.
const MODES = (SMOKE ? ["stream", "long-poll"] : ["stream", "long-poll", "interval"]) as readonly ("stream" | "long-poll" | "interval")[];
const MEASURED = { rooms: SMOKE ? 4 : 100, concurrency: SMOKE ? 2 : 5 };

/** Rooms kept active in the background: host and viewer joined and polling. */
async function activeRooms(url: string, count: number, mode: (typeof MODES)[number]) {
  const clients: SignalingClient[] = [];
  for (let i = 0; i < count; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, async () => {
        const host = await SignalingClient.createRoom({}, { baseUrl: url, mode });
        const viewer = await SignalingClient.joinRoom(host.roomId, {}, { baseUrl: url, mode });
        host.start();
        viewer.start();
        return [host, viewer];
      }),
    );
    clients.push(...batch.flat());
  }
  return clients;
}

export async function latencyBenchmark() {
  const rows: (string | number)[][] = [];
  const results: Record<string, Summary> = {};
  for (const kind of STORES) {
    const store = await startStore(kind);
    const server = await startServer(store.env);
    try {
      // Smoke runs (CI) try the TCP transports on the stream alone: they are there to keep working.
      for (const mode of SMOKE && kind.startsWith("redis-") ? (["stream"] as const) : MODES) {
        for (const active of ACTIVE) {
          const background = await activeRooms(server.url, active, mode);
          await new Promise((r) => setTimeout(r, 1000));
          const latencies: number[] = [];
          let next = 0;
          await Promise.all(
            Array.from({ length: MEASURED.concurrency }, async () => {
              while (next++ < MEASURED.rooms) {
                const e = await starExchange({ hostUrl: server.url, mode });
                latencies.push(...e.latencies);
                e.host.stop();
                e.viewer.stop();
                await e.host.closeRoom();
              }
            }),
          );
          background.forEach((c) => c.stop());
          await Promise.all(background.filter((c) => c.session.role === "host").map((c) => c.closeRoom()));
          const s = summarize(latencies);
          results[`${kind}/${mode}/${active}`] = s;
          rows.push([kind, mode, active, s.n, s.median, s.p95, s.p99, s.max]);
        }
      }
    } finally {
      await server.stop();
      await store.stop();
    }
  }
  printTable(
    `Signaling latency, POST returned → recipient's read returned (ms); ${MEASURED.rooms} measured setups, ${MEASURED.concurrency} at a time`,
    ["store", "polling", "rooms active", "messages", "median", "p95", "p99", "max"],
    rows,
  );
  await saveResult("latency", { results });
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) await latencyBenchmark();
