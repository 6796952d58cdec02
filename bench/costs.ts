/**
 * Benchmark 2 — what a connection costs: HTTP requests and Redis commands per complete viewer
 * setup (rate limiting apart), and per minute for an idle connected viewer; beside the seed
 * algorithm's figures through the same harness. Upstash bills per command: $0.20 per 100 000
 * after the free 500 000 a month. (Per-route figures: npm run bench:route-costs.)
 */
import { nanoid } from "nanoid";
import { seedExchange, startSeedServer } from "./seed-baseline.js";
import { starExchange } from "./star-exchange.js";
import { printTable, saveResult, SMOKE, startServer, startStore, total, type StoreKind } from "./support.js";

const SETUPS = SMOKE ? 2 : 10;
const IDLE_MS = SMOKE ? 5_000 : 60_000;
const DOLLARS_PER_COMMAND = 0.2 / 100_000;
/**
 * An idle stream costs once per stream (a reconnect every EVENTS_STREAM_SECONDS, 250 s by
 * default): measured here with 20 s streams, three to the minute, and scaled to the default.
 */
const STREAM_SECONDS = 20;
const DEFAULT_STREAM_SECONDS = 250;

type Counts = Record<string, number>;
interface Figures {
  requests: Counts;
  sent: Counts;
  run: Counts;
}

const scale = (counts: Counts, by: number) => Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, Math.round((v / by) * 100) / 100]));
const minus = (a: Counts, b: Counts, times = 1) => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - (b[k] ?? 0) * times]).filter(([, v]) => (v as number) > 0));
const list = (counts: Counts) => Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ");
const r1 = (x: number) => Math.round(x * 10) / 10;

/** Our viewer setups, then a quiet minute of the connected clients. */
async function measureOurs(kind: StoreKind, rateLimits: boolean, mode: "stream" | "long-poll" = "long-poll"): Promise<{ setup: Figures; idle: Figures }> {
  const store = await startStore(kind);
  const server = await startServer({ ...store.env, RATE_LIMITS: rateLimits ? "on" : "off", EVENTS_STREAM_SECONDS: String(STREAM_SECONDS) });
  let requests: Counts = {};
  const count = (route: string) => (requests[route] = (requests[route] ?? 0) + 1);
  try {
    // Creating the room is the host's cost, not the viewer's: measure it alone, then take it out.
    await store.resetCommands();
    await fetch(`${server.url}/api/rooms`, { method: "POST" });
    const creation = await store.commands();

    await store.resetCommands();
    const exchanges = [];
    for (let i = 0; i < SETUPS; i++) exchanges.push(await starExchange({ hostUrl: server.url, mode, onRequest: count }));
    const setup = await store.commands();
    const setupRequests = minus(requests, { "POST /api/rooms": 1 }, SETUPS);

    await new Promise((r) => setTimeout(r, 1000)); // every client now sits in a long-poll
    requests = {};
    await store.resetCommands();
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const idle = await store.commands();
    const idleRequests = requests;
    for (const e of exchanges) e.host.stop(), e.viewer.stop();

    const peerMinutes = exchanges.length * 2 * (IDLE_MS / 60_000) * (mode === "stream" ? DEFAULT_STREAM_SECONDS / STREAM_SECONDS : 1);
    return {
      setup: { requests: scale(setupRequests, SETUPS), sent: scale(minus(setup.sent, creation.sent, SETUPS), SETUPS), run: scale(minus(setup.run, creation.run, SETUPS), SETUPS) },
      idle: { requests: scale(idleRequests, peerMinutes), sent: scale(idle.sent, peerMinutes), run: scale(idle.run, peerMinutes) },
    };
  } finally {
    await server.stop();
    await store.stop();
  }
}

/** The seed's algorithm through the same Redis and bridge. Its clients stop polling once connected. */
async function measureSeed(): Promise<Figures> {
  const store = await startStore("redis");
  const seed = await startSeedServer(store.env.UPSTASH_REDIS_REST_URL, store.env.UPSTASH_REDIS_REST_TOKEN);
  const requests: Counts = {};
  try {
    await store.resetCommands();
    for (let i = 0; i < SETUPS; i++) await seedExchange(seed.url, nanoid(10), (route) => (requests[route] = (requests[route] ?? 0) + 1));
    const used = await store.commands();
    return { requests: scale(requests, SETUPS), sent: scale(used.sent, SETUPS), run: scale(used.run, SETUPS) };
  } finally {
    await seed.close();
    await store.stop();
  }
}

export async function costsBenchmark() {
  const withoutLimits = await measureOurs("redis", false);
  const withLimits = await measureOurs("redis", true);
  const memory = await measureOurs("memory", false);
  const stream = await measureOurs("redis", false, "stream");
  const streamWithLimits = await measureOurs("redis", true, "stream");
  const seed = await measureSeed();

  const dollars = (commands: number) => `$${(commands * 10_000 * DOLLARS_PER_COMMAND).toFixed(2)}`;
  const ours = total(withoutLimits.setup.sent);
  const theirs = total(seed.sent);
  printTable(
    `Cost per complete viewer setup (join, offer, answer, 8 candidates each way; ${SETUPS} setups, Redis through the bridge)`,
    ["", "signalbox, long-poll", "long-poll, rate limits on", "signalbox, stream", "stream, rate limits on", "seed algorithm", "seed ÷ signalbox long-poll"],
    [
      ["HTTP requests", r1(total(withoutLimits.setup.requests)), r1(total(withLimits.setup.requests)), r1(total(stream.setup.requests)), r1(total(streamWithLimits.setup.requests)), r1(total(seed.requests)), `${r1(total(seed.requests) / total(withoutLimits.setup.requests))}×`],
      ["Redis commands billed (sent)", r1(ours), r1(total(withLimits.setup.sent)), r1(total(stream.setup.sent)), r1(total(streamWithLimits.setup.sent)), r1(theirs), `${r1(theirs / ours)}×`],
      ["Redis commands run (scripts' included)", r1(total(withoutLimits.setup.run)), r1(total(withLimits.setup.run)), r1(total(stream.setup.run)), r1(total(streamWithLimits.setup.run)), r1(total(seed.run)), `${r1(total(seed.run) / total(withoutLimits.setup.run))}×`],
      ["Upstash $ per 10 000 viewer setups", dollars(ours), dollars(total(withLimits.setup.sent)), dollars(total(stream.setup.sent)), dollars(total(streamWithLimits.setup.sent)), dollars(theirs), ""],
    ],
  );
  printTable("Viewer setup by route (signalbox, per setup)", ["requests by route", "commands sent", "commands run"], [[list(withoutLimits.setup.requests), list(withoutLimits.setup.sent), list(withoutLimits.setup.run)]]);
  printTable("Viewer setup by route (seed algorithm, per setup)", ["requests by route", "commands sent", "commands run"], [[list(seed.requests), list(seed.sent), list(seed.run)]]);
  printTable("Viewer setup by route (signalbox on the stream, rate limits on, per setup)", ["requests by route", "commands sent", "commands run"], [[list(streamWithLimits.setup.requests), list(streamWithLimits.setup.sent), list(streamWithLimits.setup.run)]]);
  printTable(
    `Idle connected viewer, per minute (measured over ${IDLE_MS / 1000} s; streams of ${STREAM_SECONDS} s, scaled to the default ${DEFAULT_STREAM_SECONDS} s)`,
    ["", "HTTP requests", "Redis commands billed", "Redis commands run"],
    [
      ["signalbox (long-poll, wait 25 s), memory store", r1(total(memory.idle.requests)), "–", "–"],
      ["signalbox, Redis", r1(total(withoutLimits.idle.requests)), r1(total(withoutLimits.idle.sent)), r1(total(withoutLimits.idle.run))],
      ["signalbox, Redis, rate limits on", r1(total(withLimits.idle.requests)), r1(total(withLimits.idle.sent)), r1(total(withLimits.idle.run))],
      ["signalbox on the event stream, Redis", r1(total(stream.idle.requests)), r1(total(stream.idle.sent)), r1(total(stream.idle.run))],
      ["signalbox on the event stream, Redis, rate limits on", r1(total(streamWithLimits.idle.requests)), r1(total(streamWithLimits.idle.sent)), r1(total(streamWithLimits.idle.run))],
      ["seed algorithm (stops polling once connected: deaf to room close and ICE restarts)", 0, 0, 0],
    ],
  );
  await saveResult("costs", { setups: SETUPS, idleMs: IDLE_MS, signalbox: withoutLimits, withRateLimits: withLimits, stream, streamWithLimits, memory, seed });
  return { ours: withoutLimits, withLimits, seed };
}

if (import.meta.url === `file://${process.argv[1]}`) await costsBenchmark();
