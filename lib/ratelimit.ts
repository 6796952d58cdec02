/**
 * Rate limits: @upstash/ratelimit on Redis; with the memory store, the same sliding-window
 * algorithm in process memory. A peer's calls are charged by the store's own step (Call.charge),
 * so most requests never ask a limiter: @upstash/ratelimit is loaded on the first that does.
 */
import type { Ratelimit } from "@upstash/ratelimit";
import type { LimiterRedis } from "./store/transport.js";
import type { Config } from "./config.js";
import type { Window } from "./store/types.js";

export interface LimitResult extends Window {
  success: boolean;
  /** The limiter could not be asked (its store is down): the request was let through. */
  unchecked?: boolean;
}

/** Seconds until `reset` (ms since the epoch), at least 1: a Retry-After. */
export const retryAfter = (reset: number, now: number) => Math.max(1, Math.ceil((reset - now) / 1000));

/** The IETF draft's RateLimit-* headers for where a limit stands. */
export function rateLimitHeaders(r: Window, now: number): Record<string, string> {
  return {
    "ratelimit-limit": String(r.limit),
    "ratelimit-remaining": String(r.remaining),
    "ratelimit-reset": String(Math.max(0, Math.ceil((r.reset - now) / 1000))),
  };
}

export interface Limiter {
  limit(key: string): Promise<LimitResult>;
}

export interface RateLimits {
  /** Room creation, per client address. */
  rooms: Limiter;
  /** Joins, per client address: each join mints a new sender. */
  joins: Limiter;
  /** Every other API call, per verified peer (per address until this process has seen the token work). */
  calls: Limiter;
  /** AI sessions started, per host. */
  sessions: Limiter;
  /** Room lookups without a token that found no room, per client address. */
  probes: Limiter;
}

type Policy = { max: number; window: "1 h" };

function policies(config: Config): Record<keyof RateLimits, Policy> {
  const r = config.rateLimits;
  return {
    rooms: { max: r.roomsPerHour, window: "1 h" },
    joins: { max: r.joinsPerHour, window: "1 h" },
    calls: { max: r.callsPerHour, window: "1 h" },
    sessions: { max: config.openai.sessionsPerHour, window: "1 h" },
    probes: { max: r.probesPerHour, window: "1 h" },
  };
}

const WINDOW_MS = { "1 h": 3_600_000 };

const unchecked: Limiter = { limit: async () => ({ success: true, limit: 0, remaining: 0, reset: 0, unchecked: true }) };

function build(config: Config, limiter: (policy: Policy, name: string) => Limiter): RateLimits {
  const table = policies(config);
  return Object.fromEntries(
    Object.entries(table).map(([name, policy]) => [name, config.rateLimits.enabled ? limiter(policy, name) : unchecked]),
  ) as unknown as RateLimits;
}

export function redisRateLimits(redis: LimiterRedis, config: Config): RateLimits {
  return build(config, ({ max, window }, name) => {
    let made: Promise<Ratelimit> | undefined;
    const ratelimit = () =>
      (made ??= import("@upstash/ratelimit").then(
        ({ Ratelimit }) =>
          new Ratelimit({
            // Ratelimit asks only evalsha and eval of its client (its sliding window's one script).
            redis: redis as unknown as ConstructorParameters<typeof Ratelimit>[0]["redis"],
            limiter: Ratelimit.slidingWindow(max, window),
            // Counters are per policy: a changed limit starts afresh rather than inheriting counts.
            prefix: `sb:rl:${name}:${max}/${window.replace(" ", "")}`,
            analytics: false,
            // Fails open after this long: a slow Redis must not stop signaling.
            timeout: 1000,
          }),
      ));
    return {
      // It throws when Redis cannot be reached at all; fail open there too, and let the
      // store's own call answer 503 (or diagnostics say what is down).
      // The key in braces: a window's two counters share a cluster slot (one script touches both).
      // Past its own timeout it lets the request through with made-up figures: unchecked too.
      limit: async (key) => {
        const unknown = { success: true, limit: max, remaining: max, reset: Date.now(), unchecked: true };
        const result = await (await ratelimit()).limit(`{${key}}`).catch(() => unknown);
        return "reason" in result && result.reason === "timeout" ? unknown : result;
      },
    };
  });
}

/** Upstash's sliding window: the previous window's count, weighted by how much of it still overlaps. */
export class MemoryLimiter implements Limiter {
  private readonly windows = new Map<string, { start: number; current: number; previous: number }>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async limit(key: string): Promise<LimitResult> {
    return this.limitSync(key);
  }

  /** The same, for callers inside one synchronous step (the memory store's). */
  limitSync(key: string, now = this.now()): LimitResult {
    const start = now - (now % this.windowMs);
    let w = this.windows.get(key);
    if (!w || w.start < start - this.windowMs) w = { start, current: 0, previous: 0 };
    else if (w.start < start) w = { start, current: 0, previous: w.current };
    const overlap = 1 - (now - start) / this.windowMs;
    const used = Math.floor(w.previous * overlap) + w.current;
    const success = used < this.max;
    if (success) w.current += 1;
    this.windows.set(key, w);
    if (this.windows.size > 10_000) this.forgetBefore(start - this.windowMs);
    return { success, limit: this.max, remaining: Math.max(0, this.max - used - (success ? 1 : 0)), reset: start + this.windowMs };
  }

  private forgetBefore(start: number) {
    for (const [key, w] of this.windows) if (w.start < start) this.windows.delete(key);
  }
}

export function memoryRateLimits(config: Config): RateLimits {
  return build(config, ({ max, window }) => new MemoryLimiter(max, WINDOW_MS[window]));
}

/**
 * Token hashes this process has seen succeed. Requests with any other token are charged to
 * their address, so forged tokens cannot make a rate-limit key each: keys exist only per
 * address and per verified peer. Bounded: the oldest are forgotten first.
 */
export class VerifiedPeers {
  private readonly seen = new Set<string>();

  constructor(private readonly max = 100_000) {}

  has(tokenHash: string) {
    return this.seen.has(tokenHash);
  }

  add(tokenHash: string) {
    if (this.seen.has(tokenHash)) return;
    if (this.seen.size >= this.max) this.seen.delete(this.seen.values().next().value!);
    this.seen.add(tokenHash);
  }
}

/** Things held open per client address in this process (long-polls, sockets), up to a cap. */
export class AddressSlots {
  private readonly held = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** A release function, or null when `address` already holds its cap. */
  enter(address: string): (() => void) | null {
    const n = this.held.get(address) ?? 0;
    if (n >= this.max) return null;
    this.held.set(address, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.held.get(address) ?? 1) - 1;
      if (left > 0) this.held.set(address, left);
      else this.held.delete(address);
    };
  }
}

/**
 * Guessing room IDs: lookups without a token (join, diagnostics) that find no room count
 * against the caller's address, and an address past its budget is refused every such lookup,
 * hit or miss, until its window resets — so it cannot keep guessing until it hits. The
 * refusal is remembered in this process (no Redis call per lookup); each process learns of it
 * at that address's next miss.
 */
export class ProbeGuard {
  private readonly blocked = new Map<string, number>();

  constructor(
    private readonly limiter: Limiter,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until `address` may look rooms up again; 0 when it may now. */
  refusedFor(address: string): number {
    const until = this.blocked.get(address);
    if (until === undefined) return 0;
    if (until > this.now()) return Math.ceil((until - this.now()) / 1000);
    this.blocked.delete(address);
    return 0;
  }

  /** Counts a miss; the seconds `address` is now refused for, or 0 while within its budget. */
  async miss(address: string): Promise<number> {
    const result = await this.limiter.limit(address);
    if (result.success || result.unchecked) return 0;
    if (this.blocked.size >= 10_000) this.blocked.clear(); // a bound, not a policy
    this.blocked.set(address, result.reset);
    return this.refusedFor(address) || 1;
  }
}
