/**
 * Every setting comes from the environment, parsed and checked once at start.
 * `.env.example` lists them all with their defaults.
 */
import { z } from "zod";

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const iceServer = z.object({
  urls: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  username: z.string().optional(),
  credential: z.string().optional(),
});

const flag = z
  .enum(["true", "false", "1", "0", ""])
  .optional()
  .transform((v) => v === "true" || v === "1");

const EnvSchema = z.object({
  UPSTASH_REDIS_REST_URL: z.url().optional(),
  UPSTASH_REDIS_REST_TOKEN: z.string().min(1).optional(),
  KV_REST_API_URL: z.url().optional(),
  KV_REST_API_TOKEN: z.string().min(1).optional(),
  ALLOWED_ORIGINS: z.string().default("*"),
  ICE_SERVERS: z
    .string()
    .default('[{"urls":"stun:stun.l.google.com:19302"}]')
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: "custom", message: "must be a JSON array of RTCIceServer objects" });
        return z.NEVER;
      }
    })
    .pipe(z.array(iceServer)),
  ROOM_TTL_SECONDS: positiveInt(3600),
  ROOM_MAX_LIFETIME_SECONDS: positiveInt(86_400),
  INBOX_MAX_MESSAGES: positiveInt(1000),
  RATE_LIMIT_ROOMS_PER_HOUR: positiveInt(50),
  RATE_LIMIT_CALLS_PER_HOUR: positiveInt(2000),
  AUTH_SECRET: z.string().min(16, "must be at least 16 characters").optional(),
  TRUST_PROXY: flag,
  VERCEL: z.string().optional(),
});

export type IceServer = z.infer<typeof iceServer>;

export interface Config {
  redis: { url: string; token: string } | null;
  allowedOrigins: "*" | string[];
  iceServers: IceServer[];
  roomTtlMs: number;
  roomMaxLifetimeMs: number;
  inboxMaxMessages: number;
  rateLimits: { roomsPerHour: number; callsPerHour: number };
  authSecret: string | null;
  /** Take the client address from X-Forwarded-For (set by Vercel or a trusted reverse proxy). */
  trustProxy: boolean;
}

export class ConfigError extends Error {}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Blank values count as unset, as in most .env tooling.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = EnvSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join("\n")}`);
  }
  const e = parsed.data;
  const url = e.UPSTASH_REDIS_REST_URL ?? e.KV_REST_API_URL;
  const token = e.UPSTASH_REDIS_REST_TOKEN ?? e.KV_REST_API_TOKEN;
  if (Boolean(url) !== Boolean(token)) {
    throw new ConfigError("Invalid configuration:\n  UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set together");
  }
  if (e.VERCEL && !url) {
    // Serverless instances share nothing in memory: without Redis, peers on different instances never meet.
    throw new ConfigError("Invalid configuration:\n  on Vercel, UPSTASH_REDIS_REST_URL/TOKEN (or KV_REST_API_URL/TOKEN) are required");
  }
  const origins = e.ALLOWED_ORIGINS.trim();
  return {
    redis: url && token ? { url, token } : null,
    allowedOrigins: origins === "*" ? "*" : origins.split(",").map((o) => o.trim()).filter(Boolean),
    iceServers: e.ICE_SERVERS,
    roomTtlMs: e.ROOM_TTL_SECONDS * 1000,
    roomMaxLifetimeMs: Math.max(e.ROOM_MAX_LIFETIME_SECONDS, e.ROOM_TTL_SECONDS) * 1000,
    inboxMaxMessages: e.INBOX_MAX_MESSAGES,
    rateLimits: { roomsPerHour: e.RATE_LIMIT_ROOMS_PER_HOUR, callsPerHour: e.RATE_LIMIT_CALLS_PER_HOUR },
    authSecret: e.AUTH_SECRET ?? null,
    trustProxy: e.TRUST_PROXY || Boolean(e.VERCEL),
  };
}
