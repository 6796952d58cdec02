/**
 * Every setting comes from the environment, parsed and checked once at start.
 * `.env.example` lists them all with their defaults.
 */
import { z } from "zod";
import { DEFAULT_PRESETS, PresetTable, type Preset } from "./openai/presets.js";

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const iceServer = z.object({
  urls: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  username: z.string().optional(),
  credential: z.string().optional(),
});

export const EnvSchema = z.object({
  UPSTASH_REDIS_REST_URL: z.url().optional(),
  UPSTASH_REDIS_REST_TOKEN: z.string().min(1).optional(),
  KV_REST_API_URL: z.url().optional(),
  KV_REST_API_TOKEN: z.string().min(1).optional(),
  REDIS_URL: z.string().regex(/^rediss?:\/\/./, "must be a redis:// or rediss:// URL").optional(),
  KV_URL: z.string().regex(/^rediss?:\/\/./, "must be a redis:// or rediss:// URL").optional(),
  REDIS_CLUSTER: z.enum(["true", "false"], { error: "must be true or false" }).default("false"),
  STORE: z.enum(["rest", "tcp", "memory"], { error: "must be rest, tcp or memory" }).optional(),
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
  ROOM_MAIL_MAX_BYTES: z.coerce.number().int().min(65_536, "must be at least 65536").default(4 * 1024 * 1024),
  WAITING_READS_PER_ADDRESS: positiveInt(100),
  REQUEST_TIMEOUT_MS: positiveInt(10_000),
  // Under api/events.ts's maxDuration (300 s in vercel.json), so the stream ends itself first.
  EVENTS_STREAM_SECONDS: z.coerce.number().int().min(5, "must be at least 5").max(3600, "must be at most 3600").default(250),
  // Well inside the client's stall limit (45 s of silence: lib/client) and the idle timeouts of
  // common proxies (60 s), or quiet streams would be cut and reopened over and over.
  EVENTS_HEARTBEAT_SECONDS: z.coerce.number().int().min(1, "must be at least 1").max(30, "must be at most 30").default(15),
  CONNECTIONS_PER_ADDRESS: positiveInt(128),
  REDIS_TIMEOUT_MS: positiveInt(3000),
  REDIS_MAX_IN_FLIGHT: positiveInt(256),
  RATE_LIMIT_ROOMS_PER_HOUR: positiveInt(50),
  RATE_LIMIT_CALLS_PER_HOUR: positiveInt(2000),
  RATE_LIMIT_CHAT_PER_MINUTE: positiveInt(60),
  RATE_LIMIT_ROOM_CHAT_PER_MINUTE: positiveInt(120),
  RATE_LIMIT_JOINS_PER_HOUR: positiveInt(300),
  RATE_LIMIT_PROBES_PER_HOUR: positiveInt(100),
  RATE_LIMITS: z.enum(["on", "off"]).default("on"),
  TURN_URLS: z.string().optional(),
  TURN_SECRET: z.string().min(8, "must be at least 8 characters").optional(),
  TURN_TTL_SECONDS: z.coerce.number().int().min(60).max(7 * 86_400).default(86_400),
  TURN_USERNAME: z.string().min(1).optional(),
  TURN_CREDENTIAL: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(["info", "warn", "error", "off"], { error: "must be info, warn, error or off" }).default("info"),
  PORT: z.coerce.number({ error: "must be a port number, 0 to 65535" }).int("must be a port number, 0 to 65535").min(0, "must be a port number, 0 to 65535").max(65_535, "must be a port number, 0 to 65535").default(3000),
  HOST: z.string().min(1).default("127.0.0.1"),
  AUTH_SECRET: z.string().min(16, "must be at least 16 characters").optional(),
  AUTH_JWKS_URL: z.url().optional(),
  AUTH_JWT_ISSUER: z.string().min(1).optional(),
  AUTH_JWT_AUDIENCE: z.string().min(1).optional(),
  TRUST_PROXY: z
    .string()
    .regex(/^(true|false|\d{1,2})$/, "must be true, false, or the number of proxies in front (e.g. 1)")
    .optional()
    .transform((v) => (v === "true" ? 1 : v === "false" || v === undefined ? 0 : Number(v))),
  VERCEL: z.string().optional(),
  /** Set by the Vercel CLI in what it runs: here, the functions under `vercel dev`. */
  VERCEL_CLI_VERSION: z.string().optional(),
  OPENAI_API_KEY: z.string().min(1).optional(),
  OPENAI_MODE: z.enum(["simulate", "live"]).optional(),
  OPENAI_BASE_URL: z.url().default("https://api.openai.com/v1"),
  OPENAI_PRESETS: z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (!text) return DEFAULT_PRESETS;
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: "custom", message: "must be a JSON object of presets" });
        return z.NEVER;
      }
    })
    .pipe(PresetTable),
  OPENAI_DEFAULT_PRESET: z.string().optional(),
  OPENAI_ALLOWED_PRESETS: z.string().optional(),
  OPENAI_MAX_SESSIONS_PER_ROOM: positiveInt(2),
  OPENAI_CONNECT_TIMEOUT_MS: positiveInt(5000),
  OPENAI_TIMEOUT_MS: positiveInt(20_000),
  OPENAI_ATTEMPTS: positiveInt(3),
  OPENAI_OFFER_TIMEOUT_MS: positiveInt(20_000),
  OPENAI_SECRET_TTL_SECONDS: z.coerce.number().int().min(10).max(7200).default(60),
  OPENAI_MAX_SESSION_SECONDS: z.coerce.number().int().min(1).max(3600).default(900),
  CRON_SECRET: z.string().min(16, "must be at least 16 characters").optional(),
  // Upstash QStash (the Vercel integration sets these): a delayed message hangs an AI call up at its deadline.
  QSTASH_TOKEN: z.string().optional(),
  QSTASH_URL: z.url().default("https://qstash.upstash.io"),
  QSTASH_CURRENT_SIGNING_KEY: z.string().optional(),
  QSTASH_NEXT_SIGNING_KEY: z.string().optional(),
  // This deployment as its users reach it, for callbacks (QStash's); else each request's own origin.
  PUBLIC_URL: z.url().optional(),
  OPENAI_CLIENT_CALLS_URL: z.url().default("https://api.openai.com/v1/realtime/calls"),
  RATE_LIMIT_SESSIONS_PER_HOUR: positiveInt(30),
});

export type IceServer = z.infer<typeof iceServer>;

/** Redis commands: a timeout (ms; then 503) and how many may be in flight before new ones are shed (503). */
interface RedisLimits {
  timeoutMs: number;
  maxInFlight: number;
}

/** Where state lives, and why: the start-up log and /api/diagnostics say both. */
export type StoreConfig =
  | { transport: "memory"; reason: string }
  | ({ transport: "rest"; url: string; token: string; reason: string } & RedisLimits)
  | ({ transport: "tcp"; url: string; cluster: boolean; reason: string } & RedisLimits);

export interface Config {
  store: StoreConfig;
  allowedOrigins: "*" | string[];
  iceServers: IceServer[];
  roomTtlMs: number;
  roomMaxLifetimeMs: number;
  inboxMaxMessages: number;
  /** Unread mail a room may hold, all inboxes together (bytes); chat may fill at most half. */
  roomMailMaxBytes: number;
  /** Long-polls one client address may hold open at once, in this process. */
  waitingReadsPerAddress: number;
  /** Self-hosted server: a request's headers and body must arrive within this (ms). */
  requestTimeoutMs: number;
  /** An event stream ends itself after this (ms), before a function's maxDuration; its client reconnects at once. */
  eventsStreamMs: number;
  /** A comment line this often (ms) keeps proxies from closing a quiet stream, and tells the client it is alive. */
  eventsHeartbeatMs: number;
  /** Self-hosted server, with no proxy in front: sockets one address may hold open. */
  connectionsPerAddress: number;
  /** `enabled: false` (RATE_LIMITS=off) where a gateway in front already limits, or to measure without them. */
  rateLimits: {
    enabled: boolean;
    roomsPerHour: number;
    callsPerHour: number;
    /** Chat per sender, and per room whoever sends. */
    chatPerMinute: number;
    roomChatPerMinute: number;
    probesPerHour: number;
    /** Joins per client address: each join mints a new sender. */
    joinsPerHour: number;
  };
  authSecret: string | null;
  /** Vercel Cron's bearer secret: it may call GET /api/session/expire. */
  cronSecret: string | null;
  /** QStash: its token (to send delayed messages) and signing keys (to know its calls), or null. */
  qstash: { token: string; url: string; signingKeys: [string, string] } | null;
  /** This deployment's public origin, for callbacks; null: each request's own. */
  publicUrl: string | null;
  /** On Vercel: a function ends with its response, so nothing may wait on a timer. */
  serverless: boolean;
  /** Room creation by JWT: the JWKS that signs them, and the issuer and audiences required. */
  jwt: { jwksUrl: string; issuer?: string; audience?: string[] } | null;
  /**
   * How many proxies in front append to X-Forwarded-For (Vercel: 1); the client address is the
   * entry that many places from the right. 0: the socket's address.
   */
  trustProxy: number;
  /** TURN for every peer: time-limited credentials from a shared secret, or static ones. */
  turn: { urls: string[]; secret?: string; ttlSeconds: number; username?: string; credential?: string } | null;
  /** info: a line per request; warn/error: only problems; off: nothing. */
  logLevel: "info" | "warn" | "error" | "off";
  /** Where the self-hosted server (npm start) listens. */
  listen: { port: number; host: string };
  openai: OpenAIConfig;
}

export interface OpenAIConfig {
  /** "live" talks to OpenAI with the server's key; "simulate" answers with an in-process peer. */
  mode: "live" | "simulate";
  /** Never returned, never logged. */
  apiKey: string | null;
  baseUrl: string;
  presets: Record<string, Preset>;
  defaultPreset: string;
  /** Presets a browser may pick by name. */
  allowedPresets: string[];
  maxSessionsPerRoom: number;
  connectTimeoutMs: number;
  timeoutMs: number;
  attempts: number;
  /** How long a room-mode session waits for the host's offer. */
  offerTimeoutMs: number;
  secretTtlSeconds: number;
  /** Where clients holding a minted secret post their offer (OpenAI's, not OPENAI_BASE_URL). */
  clientCallsUrl: string;
  /** How long an AI call may run before the server hangs it up. */
  maxSessionMs: number;
  sessionsPerHour: number;
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
  const store = storeConfig(e);
  if (e.VERCEL_CLI_VERSION && store.transport === "memory") {
    // `vercel dev` runs each function in a process of its own: a room made by one is unknown to the next.
    throw new ConfigError(
      "Invalid configuration:\n  under vercel dev each function runs in a process of its own, so the memory store cannot be shared: run `npm run dev` (it starts Redis and the REST bridge), or set UPSTASH_REDIS_REST_URL/TOKEN",
    );
  }
  if (e.VERCEL && store.transport === "memory") {
    // Serverless instances share nothing in memory: without Redis, peers on different instances never meet.
    throw new ConfigError("Invalid configuration:\n  on Vercel, UPSTASH_REDIS_REST_URL/TOKEN (or KV_REST_API_URL/TOKEN) are required");
  }
  const origins = e.ALLOWED_ORIGINS.trim();
  const presetNames = Object.keys(e.OPENAI_PRESETS);
  const defaultPreset = e.OPENAI_DEFAULT_PRESET ?? (presetNames.includes("transcribe") ? "transcribe" : presetNames[0]);
  const allowedPresets = e.OPENAI_ALLOWED_PRESETS ? e.OPENAI_ALLOWED_PRESETS.split(",").map((p) => p.trim()).filter(Boolean) : presetNames;
  const unknown = [defaultPreset, ...allowedPresets].filter((p) => !presetNames.includes(p));
  if (unknown.length) throw new ConfigError(`Invalid configuration:\n  OPENAI_DEFAULT_PRESET/OPENAI_ALLOWED_PRESETS name unknown presets: ${unknown.join(", ")}`);
  const mode = e.OPENAI_MODE ?? (e.OPENAI_API_KEY ? "live" : "simulate");
  const turnUrls = (e.TURN_URLS ?? "").split(",").map((u) => u.trim()).filter(Boolean);
  if (turnUrls.some((u) => !/^turns?:/.test(u))) throw new ConfigError("Invalid configuration:\n  TURN_URLS: each must start with turn: or turns:");
  if (turnUrls.length && !e.TURN_SECRET && !(e.TURN_USERNAME && e.TURN_CREDENTIAL)) {
    throw new ConfigError("Invalid configuration:\n  TURN_URLS needs TURN_SECRET, or TURN_USERNAME and TURN_CREDENTIAL");
  }
  if ((e.AUTH_JWT_ISSUER || e.AUTH_JWT_AUDIENCE) && !e.AUTH_JWKS_URL) throw new ConfigError("Invalid configuration:\n  AUTH_JWT_ISSUER/AUTH_JWT_AUDIENCE need AUTH_JWKS_URL");
  if (mode === "live" && !e.OPENAI_API_KEY) throw new ConfigError("Invalid configuration:\n  OPENAI_MODE=live needs OPENAI_API_KEY");
  if (e.QSTASH_TOKEN && !(e.QSTASH_CURRENT_SIGNING_KEY && e.QSTASH_NEXT_SIGNING_KEY)) {
    throw new ConfigError("Invalid configuration:\n  QSTASH_TOKEN needs QSTASH_CURRENT_SIGNING_KEY and QSTASH_NEXT_SIGNING_KEY, to know QStash's calls from anyone's");
  }
  return {
    store,
    allowedOrigins: origins === "*" ? "*" : origins.split(",").map((o) => o.trim()).filter(Boolean),
    iceServers: e.ICE_SERVERS,
    roomTtlMs: e.ROOM_TTL_SECONDS * 1000,
    roomMaxLifetimeMs: Math.max(e.ROOM_MAX_LIFETIME_SECONDS, e.ROOM_TTL_SECONDS) * 1000,
    inboxMaxMessages: e.INBOX_MAX_MESSAGES,
    roomMailMaxBytes: e.ROOM_MAIL_MAX_BYTES,
    waitingReadsPerAddress: e.WAITING_READS_PER_ADDRESS,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    eventsStreamMs: e.EVENTS_STREAM_SECONDS * 1000,
    eventsHeartbeatMs: e.EVENTS_HEARTBEAT_SECONDS * 1000,
    connectionsPerAddress: e.CONNECTIONS_PER_ADDRESS,
    rateLimits: {
      enabled: e.RATE_LIMITS === "on",
      roomsPerHour: e.RATE_LIMIT_ROOMS_PER_HOUR,
      callsPerHour: e.RATE_LIMIT_CALLS_PER_HOUR,
      chatPerMinute: e.RATE_LIMIT_CHAT_PER_MINUTE,
      roomChatPerMinute: e.RATE_LIMIT_ROOM_CHAT_PER_MINUTE,
      probesPerHour: e.RATE_LIMIT_PROBES_PER_HOUR,
      joinsPerHour: e.RATE_LIMIT_JOINS_PER_HOUR,
    },
    authSecret: e.AUTH_SECRET ?? null,
    cronSecret: e.CRON_SECRET ?? null,
    qstash: e.QSTASH_TOKEN ? { token: e.QSTASH_TOKEN, url: e.QSTASH_URL.replace(/\/$/, ""), signingKeys: [e.QSTASH_CURRENT_SIGNING_KEY!, e.QSTASH_NEXT_SIGNING_KEY!] } : null,
    publicUrl: e.PUBLIC_URL ? new URL(e.PUBLIC_URL).origin : null,
    serverless: Boolean(e.VERCEL),
    jwt: e.AUTH_JWKS_URL
      ? { jwksUrl: e.AUTH_JWKS_URL, issuer: e.AUTH_JWT_ISSUER, audience: e.AUTH_JWT_AUDIENCE?.split(",").map((a) => a.trim()).filter(Boolean) }
      : null,
    trustProxy: e.TRUST_PROXY || (e.VERCEL ? 1 : 0),
    logLevel: e.LOG_LEVEL,
    listen: { port: e.PORT, host: e.HOST },
    turn: turnUrls.length
      ? { urls: turnUrls, secret: e.TURN_SECRET, ttlSeconds: e.TURN_TTL_SECONDS, username: e.TURN_USERNAME, credential: e.TURN_CREDENTIAL }
      : null,
    openai: {
      mode,
      apiKey: e.OPENAI_API_KEY ?? null,
      baseUrl: e.OPENAI_BASE_URL.replace(/\/$/, ""),
      presets: e.OPENAI_PRESETS,
      defaultPreset,
      allowedPresets,
      maxSessionsPerRoom: e.OPENAI_MAX_SESSIONS_PER_ROOM,
      connectTimeoutMs: e.OPENAI_CONNECT_TIMEOUT_MS,
      timeoutMs: e.OPENAI_TIMEOUT_MS,
      attempts: e.OPENAI_ATTEMPTS,
      offerTimeoutMs: e.OPENAI_OFFER_TIMEOUT_MS,
      secretTtlSeconds: e.OPENAI_SECRET_TTL_SECONDS,
      clientCallsUrl: e.OPENAI_CLIENT_CALLS_URL,
      maxSessionMs: e.OPENAI_MAX_SESSION_SECONDS * 1000,
      sessionsPerHour: e.RATE_LIMIT_SESSIONS_PER_HOUR,
    },
  };
}

/**
 * Which store, by explicit rules: STORE (rest, tcp or memory) decides when set; otherwise the
 * REST variables win when present (Vercel's Upstash integration sets them and REDIS_URL/KV_URL
 * at once, and serverless functions should not open a TCP connection per instance), then
 * REDIS_URL (or KV_URL) for TCP, then the memory store.
 */
function storeConfig(e: z.infer<typeof EnvSchema>): StoreConfig {
  const url = e.UPSTASH_REDIS_REST_URL ?? e.KV_REST_API_URL;
  const token = e.UPSTASH_REDIS_REST_TOKEN ?? e.KV_REST_API_TOKEN;
  if (Boolean(url) !== Boolean(token)) {
    throw new ConfigError("Invalid configuration:\n  UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set together");
  }
  const tcpUrl = e.REDIS_URL ?? e.KV_URL;
  const limits = { timeoutMs: e.REDIS_TIMEOUT_MS, maxInFlight: e.REDIS_MAX_IN_FLIGHT };
  const restVar = e.UPSTASH_REDIS_REST_URL ? "UPSTASH_REDIS_REST_URL" : "KV_REST_API_URL";
  const tcpVar = e.REDIS_URL ? "REDIS_URL" : "KV_URL";
  const rest = (reason: string): StoreConfig => ({ transport: "rest", url: url!, token: token!, reason, ...limits });
  const tcp = (reason: string): StoreConfig => ({ transport: "tcp", url: tcpUrl!, cluster: e.REDIS_CLUSTER === "true", reason, ...limits });
  switch (e.STORE) {
    case "memory":
      return { transport: "memory", reason: "STORE=memory" };
    case "rest":
      if (!url) throw new ConfigError("Invalid configuration:\n  STORE=rest needs UPSTASH_REDIS_REST_URL/TOKEN (or KV_REST_API_URL/TOKEN)");
      return rest("STORE=rest");
    case "tcp":
      if (!tcpUrl) throw new ConfigError("Invalid configuration:\n  STORE=tcp needs REDIS_URL (or KV_URL)");
      return tcp("STORE=tcp");
  }
  if (url) return rest(`${restVar} is set${tcpUrl ? ` (${tcpVar} too: REST wins unless STORE=tcp)` : ""}`);
  if (tcpUrl) return tcp(`${tcpVar} is set`);
  return { transport: "memory", reason: "no Redis is configured" };
}
