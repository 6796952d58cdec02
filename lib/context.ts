/**
 * What a request needs besides itself: configuration, the store and the rate limits.
 * One per process on Vercel (built on first use from the environment); the local server
 * builds its own, so tests can run several differently configured servers in one process.
 */
import { loadConfig, type Config, type StoreConfig } from "./config.js";
import { createLogger, type Logger } from "./log.js";
import { SimulatedUpstream } from "./openai/simulator.js";
import { OpenAIRealtimeUpstream, type RealtimeUpstream } from "./openai/upstream.js";
import { memoryRateLimits, ProbeGuard, redisRateLimits, AddressSlots, VerifiedPeers, type RateLimits } from "./ratelimit.js";
import { MemoryStore } from "./store/memory.js";
import { RedisStore } from "./store/redis.js";
import { TcpTransport } from "./store/tcp.js";
import { RestTransport, type RedisTransport } from "./store/transport.js";
import type { SignalStore } from "./store/types.js";

export interface Context {
  config: Config;
  store: SignalStore;
  limits: RateLimits;
  /** Refuses addresses that guess room IDs (per process, fed by `limits.probes`). */
  probes: ProbeGuard;
  /** Tokens seen to work in this process: only their requests are charged per peer. */
  verified: VerifiedPeers;
  /** Long-polls held per client address in this process. */
  waiting: AddressSlots;
  /** Who answers AI sessions: OpenAI, or the in-process simulator. */
  realtime: RealtimeUpstream;
  log: Logger;
  now: () => number;
}

/** The Redis transport the configuration names, if any. */
function redisTransport(store: StoreConfig): RedisTransport | null {
  if (store.transport === "rest") return new RestTransport(store, store.timeoutMs);
  if (store.transport === "tcp") return new TcpTransport({ url: store.url, cluster: store.cluster, commandTimeoutMs: store.timeoutMs });
  return null;
}

function realtimeUpstream(config: Config): RealtimeUpstream {
  const o = config.openai;
  if (o.mode === "simulate") return new SimulatedUpstream();
  return new OpenAIRealtimeUpstream({
    apiKey: o.apiKey!,
    baseUrl: o.baseUrl,
    connectTimeoutMs: o.connectTimeoutMs,
    totalTimeoutMs: o.timeoutMs,
    attempts: o.attempts,
    backoffMs: 500,
  });
}

export function createContext(env: Record<string, string | undefined> = process.env): Context {
  const config = loadConfig(env);
  const budget = { inboxMax: config.inboxMaxMessages, roomMailMaxBytes: config.roomMailMaxBytes };
  const transport = redisTransport(config.store);
  const store = transport && config.store.transport !== "memory" ? new RedisStore(transport, budget, config.store.maxInFlight) : new MemoryStore(budget);
  const limits = transport ? redisRateLimits(transport.limiter, config) : memoryRateLimits(config);
  return {
    config,
    store,
    limits,
    probes: new ProbeGuard(limits.probes),
    verified: new VerifiedPeers(),
    waiting: new AddressSlots(config.waitingReadsPerAddress),
    realtime: realtimeUpstream(config),
    log: createLogger(config.logLevel),
    now: Date.now,
  };
}

const bound = new WeakMap<Request, Context>();
let processContext: Context | undefined;

/** The local server ties each request to its own context. */
export function bindContext(request: Request, context: Context) {
  bound.set(request, context);
}

export function contextOf(request: Request): Context {
  return bound.get(request) ?? (processContext ??= createContext());
}
