/**
 * How the Redis store reaches Redis. One store (lib/store/redis.ts), the same scripts and keys,
 * over either transport: Upstash's REST API (serverless functions open no connections of their
 * own), or TCP to any Redis or Redis Cluster (lib/store/tcp.ts), for self-hosting.
 */
import { Redis } from "@upstash/redis";
import { SCRIPTS } from "./lua.js";
import { subscribeOverRest, type RestSubscription } from "./rest-subscription.js";
import type { ScriptName } from "./scripts.js";

/** A live subscription to a peer's channel (the REST one's shape, which both transports give). */
export type Subscription = RestSubscription;

export type { ScriptName };

/** What @upstash/ratelimit calls on its Redis: scripts by SHA, with EVAL when not loaded. */
export interface LimiterRedis {
  evalsha(sha: string, keys: string[], args: unknown[]): Promise<unknown>;
  eval(script: string, keys: string[], args: unknown[]): Promise<unknown>;
}

export interface RedisTransport {
  /** "rest" (Upstash), "tcp" (one Redis) or "cluster" (Redis Cluster, over TCP). */
  readonly kind: "rest" | "tcp" | "cluster";
  /** How long a command (or a subscription's confirmation) may take before it fails (503). */
  readonly timeoutMs: number;
  /**
   * Whether it sends a command again after a network error (its reply may have been lost after
   * the command ran): then each step that changes something keeps its reply for the retry to find.
   */
  readonly retries: boolean;
  /** Runs one of the store's scripts; KEYS[1] routes it on a cluster. */
  script(name: ScriptName, keys: string[], args: string[]): Promise<unknown>;
  /** Subscribes to a peer's channel; `onLost` when the subscription breaks while still wanted. */
  subscribe(channel: string, onMessage: (payload: string) => void, onLost: (error: Error) => void): Subscription;
  ping(): Promise<void>;
  /** For the rate limiter: the same connection. */
  readonly limiter: LimiterRedis;
  close(): Promise<void>;
}

/** Redis through Upstash's REST API (@upstash/redis). */
export class RestTransport implements RedisTransport {
  readonly kind = "rest" as const;
  readonly retries = true;
  private readonly redis: Redis;
  private readonly scripts: Record<ScriptName, ReturnType<Redis["createScript"]>>;

  constructor(
    private readonly connection: { url: string; token: string },
    /** A command that takes longer fails (503) rather than holding the request. */
    readonly timeoutMs = 3000,
  ) {
    this.redis = new Redis({
      url: connection.url,
      token: connection.token,
      // A fresh deadline per request (subscriptions bring their own signal and are not cut).
      signal: () => AbortSignal.timeout(timeoutMs),
      // Exact strings back (the default JSON-parses them), and fail fast so routes answer 503
      // within a second of an outage instead of retrying for ~4 s. A retry after a reply was
      // lost runs the script again: each script that changes something answers a repeat with
      // its first reply (lib/store/lua.ts), so that changes nothing twice.
      automaticDeserialization: false,
      retry: { retries: 2, backoff: (n) => 50 * 2 ** n },
      // Each request's script goes as its own HTTP request, with its own deadline and failure:
      // batched with other requests' (the default), one slow fan-out or one lost connection
      // would hold or fail them all.
      enableAutoPipelining: false,
      enableTelemetry: false,
    });
    this.scripts = Object.fromEntries(
      Object.entries(SCRIPTS).map(([name, source]) => [name, this.redis.createScript(source)]),
    ) as Record<ScriptName, ReturnType<Redis["createScript"]>>;
  }

  get limiter(): LimiterRedis {
    return this.redis as unknown as LimiterRedis;
  }

  script(name: ScriptName, keys: string[], args: string[]) {
    return this.scripts[name].exec(keys, args);
  }

  subscribe(channel: string, onMessage: (payload: string) => void, onLost: (error: Error) => void) {
    return subscribeOverRest(this.connection, channel, onMessage, onLost);
  }

  async ping() {
    await this.redis.ping();
  }

  async close() {}
}
