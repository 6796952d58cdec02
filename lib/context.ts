/**
 * What a request needs besides itself: configuration, the store and the rate limits.
 * One per process on Vercel (built on first use from the environment); the local server
 * builds its own, so tests can run several differently configured servers in one process.
 *
 * It loads only what the configuration uses: the memory store only without Redis, the TCP
 * transport (node-redis) only for a Redis over TCP; what answers AI calls is the AI routes' own
 * (lib/openai/upstream.ts: upstreamFor).
 */
import { loadConfig, type Config, type StoreConfig } from "./config.js";
import { createLogger, type Logger } from "./log.js";
import { memoryRateLimits, ProbeGuard, redisRateLimits, AddressSlots, VerifiedPeers, type RateLimits } from "./ratelimit.js";
import { RedisStore } from "./store/redis.js";
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
  log: Logger;
  now: () => number;
  /**
   * What answers are made of: the platform's Response, or a server's faster one of the same
   * shape (the self-hosted server's srvx FastResponse, which it writes without Web streams).
   */
  Response: Responses;
}

/** A Response constructor: the platform's own, or one of the same shape. */
export type Responses = new (body?: BodyInit | null, init?: ResponseInit) => Response;

/** The Redis transport the configuration names, if any. */
async function redisTransport(store: StoreConfig): Promise<RedisTransport | null> {
  if (store.transport === "rest") return new RestTransport(store, store.timeoutMs);
  if (store.transport !== "tcp") return null;
  const { TcpTransport } = await import("./store/tcp.js");
  return new TcpTransport({ url: store.url, cluster: store.cluster, commandTimeoutMs: store.timeoutMs });
}

export async function createContext(env: Record<string, string | undefined> = process.env, responses: Responses = Response): Promise<Context> {
  const config = loadConfig(env);
  const budget = { inboxMax: config.inboxMaxMessages, roomMailMaxBytes: config.roomMailMaxBytes };
  const transport = await redisTransport(config.store);
  const store = transport && config.store.transport !== "memory" ? new RedisStore(transport, budget, config.store.maxInFlight) : new (await import("./store/memory.js")).MemoryStore(budget);
  const limits = transport ? redisRateLimits(transport.limiter, config) : memoryRateLimits(config);
  return {
    config,
    store,
    limits,
    probes: new ProbeGuard(limits.probes),
    verified: new VerifiedPeers(),
    waiting: new AddressSlots(config.waitingReadsPerAddress),
    log: createLogger(config.logLevel),
    now: Date.now,
    Response: responses,
  };
}

const bound = new WeakMap<Request, Context>();
let processContext: Promise<Context> | undefined;

/** The local server ties each request to its own context. */
export function bindContext(request: Request, context: Context) {
  bound.set(request, context);
}

export function contextOf(request: Request): Promise<Context> {
  const context = bound.get(request);
  return context ? Promise.resolve(context) : (processContext ??= createContext());
}
