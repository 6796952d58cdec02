/**
 * Rate limits: @upstash/ratelimit on Redis; with the memory store, the same sliding-window
 * algorithm in process memory.
 */
import { Ratelimit } from "@upstash/ratelimit";
import type { Redis } from "@upstash/redis";
import type { Config } from "./config.js";

export interface LimitResult {
  success: boolean;
  limit: number;
  remaining: number;
  /** When the window resets, ms since the epoch. */
  reset: number;
  /** The limiter could not be asked (its store is down): the request was let through. */
  unchecked?: boolean;
}

export interface Limiter {
  limit(key: string): Promise<LimitResult>;
}

export interface RateLimits {
  /** Room creation, per client address. */
  rooms: Limiter;
  /** Every other API call, per peer token (per address when unauthenticated). */
  calls: Limiter;
  /** AI sessions started, per host token. */
  sessions: Limiter;
  /** Room lookups without a token that found no room, per client address. */
  probes: Limiter;
  /** Chat messages, per sender in a room (per peer token). */
  chat: Limiter;
}

const HOUR_MS = 3_600_000;

const unchecked: Limiter = { limit: async () => ({ success: true, limit: 0, remaining: 0, reset: 0, unchecked: true }) };
const noLimits: RateLimits = { rooms: unchecked, calls: unchecked, sessions: unchecked, probes: unchecked, chat: unchecked };

export function redisRateLimits(redis: Redis, config: Config): RateLimits {
  if (!config.rateLimits.enabled) return noLimits;
  const limiter = (max: number, name: string, window: "1 h" | "1 m" = "1 h"): Limiter => {
    const ratelimit = new Ratelimit({
      redis,
      limiter: Ratelimit.slidingWindow(max, window),
      // Counters are per policy: a changed limit starts afresh rather than inheriting counts.
      prefix: `sb:rl:${name}:${max}/${window.replace(" ", "")}`,
      analytics: false,
      // Fails open after this long: a slow Redis must not stop signaling.
      timeout: 1000,
    });
    return {
      // It throws when Redis cannot be reached at all; fail open there too, and let the
      // store's own call answer 503 (or diagnostics say what is down).
      limit: (key) =>
        ratelimit.limit(key).catch(() => ({ success: true, limit: max, remaining: max, reset: Date.now(), unchecked: true })),
    };
  };
  return {
    rooms: limiter(config.rateLimits.roomsPerHour, "rooms"),
    calls: limiter(config.rateLimits.callsPerHour, "calls"),
    sessions: limiter(config.openai.sessionsPerHour, "sessions"),
    probes: limiter(config.rateLimits.probesPerHour, "probes"),
    chat: limiter(config.rateLimits.chatPerMinute, "chat", "1 m"),
  };
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
    const now = this.now();
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
  if (!config.rateLimits.enabled) return noLimits;
  return {
    rooms: new MemoryLimiter(config.rateLimits.roomsPerHour, HOUR_MS),
    calls: new MemoryLimiter(config.rateLimits.callsPerHour, HOUR_MS),
    sessions: new MemoryLimiter(config.openai.sessionsPerHour, HOUR_MS),
    probes: new MemoryLimiter(config.rateLimits.probesPerHour, HOUR_MS),
    chat: new MemoryLimiter(config.rateLimits.chatPerMinute, 60_000),
  };
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
