/** Configuration: defaults with no environment, and a clear refusal of every bad value. */
import { describe, expect, it } from "vitest";
import { STREAM_STALL_MS } from "../lib/client/signaling-client.js";
import { readFileSync } from "node:fs";
import { ConfigError, EnvSchema, loadConfig } from "../lib/config.js";

const refusal = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error("expected a ConfigError");
};

describe("configuration", () => {
  it("runs with no environment at all: memory store, simulated AI, the documented defaults", () => {
    const c = loadConfig({});
    expect(c.store).toEqual({ transport: "memory", reason: "no Redis is configured" });
    expect(c.openai).toMatchObject({ mode: "simulate", apiKey: null, baseUrl: "https://api.openai.com/v1", defaultPreset: "transcribe", allowedPresets: ["transcribe", "assistant", "assistant-mini", "live"] });
    expect(c).toMatchObject({
      allowedOrigins: "*", roomTtlMs: 3_600_000, roomMaxLifetimeMs: 86_400_000, inboxMaxMessages: 1000, roomMailMaxBytes: 4 * 1024 * 1024,
      waitingReadsPerAddress: 100, rateLimits: { roomsPerHour: 50, callsPerHour: 2000, joinsPerHour: 300, chatPerMinute: 60, roomChatPerMinute: 120 },
      authSecret: null, trustProxy: 0,
    });
  });

  it("counts trusted proxies: true is one, a number is that many, and Vercel is one", () => {
    expect(loadConfig({ TRUST_PROXY: "true" }).trustProxy).toBe(1);
    expect(loadConfig({ TRUST_PROXY: "2" }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: "false" }).trustProxy).toBe(0);
    expect(loadConfig({ VERCEL: "1", KV_REST_API_URL: "https://kv.example", KV_REST_API_TOKEN: "t" }).trustProxy).toBe(1);
    expect(() => loadConfig({ TRUST_PROXY: "yes" })).toThrow(/TRUST_PROXY/);
  });

  it("takes Redis from the Upstash or the Vercel KV names, and goes live with an OpenAI key", () => {
    expect(loadConfig({ KV_REST_API_URL: "https://kv.example", KV_REST_API_TOKEN: "t" }).store).toEqual({ transport: "rest", url: "https://kv.example", token: "t", reason: "KV_REST_API_URL is set", timeoutMs: 3000, maxInFlight: 256 });
    const c = loadConfig({ UPSTASH_REDIS_REST_URL: "https://u.example", UPSTASH_REDIS_REST_TOKEN: "u", OPENAI_API_KEY: "sk-x", ALLOWED_ORIGINS: "https://a.example, https://b.example" });
    expect(c.store).toMatchObject({ transport: "rest", url: "https://u.example", token: "u" });
    expect(loadConfig({ KV_REST_API_URL: "https://kv.example", KV_REST_API_TOKEN: "t", REDIS_MAX_IN_FLIGHT: "8" }).store).toMatchObject({ maxInFlight: 8 });
    expect(c.openai.mode).toBe("live");
    expect(c.allowedOrigins).toEqual(["https://a.example", "https://b.example"]);
    expect(loadConfig({ OPENAI_API_KEY: "sk-x", OPENAI_MODE: "simulate" }).openai.mode).toBe("simulate");
  });

  it("picks the store by explicit rules: STORE decides; else REST over REDIS_URL (Vercel sets both), then REDIS_URL, then memory", () => {
    const rest = { UPSTASH_REDIS_REST_URL: "https://u.example", UPSTASH_REDIS_REST_TOKEN: "u" };
    const both = { ...rest, REDIS_URL: "rediss://default:p@u.example:6379" };
    expect(loadConfig({ ...both, VERCEL: "1" }).store).toMatchObject({ transport: "rest", reason: "UPSTASH_REDIS_REST_URL is set (REDIS_URL too: REST wins unless STORE=tcp)" });
    expect(loadConfig({ ...both, STORE: "tcp" }).store).toMatchObject({ transport: "tcp", url: both.REDIS_URL, cluster: false, reason: "STORE=tcp" });
    expect(loadConfig({ ...both, STORE: "memory" }).store).toEqual({ transport: "memory", reason: "STORE=memory" });
    expect(loadConfig({ KV_URL: "redis://127.0.0.1:6379" }).store).toMatchObject({ transport: "tcp", url: "redis://127.0.0.1:6379", reason: "KV_URL is set" });
    expect(loadConfig({ REDIS_URL: "redis://r:7000", REDIS_CLUSTER: "true" }).store).toMatchObject({ transport: "tcp", cluster: true, reason: "REDIS_URL is set" });
    expect(() => loadConfig({ STORE: "tcp" })).toThrow(/STORE=tcp needs REDIS_URL/);
    expect(() => loadConfig({ STORE: "rest", REDIS_URL: "redis://r" })).toThrow(/STORE=rest needs UPSTASH_REDIS_REST_URL/);
    expect(() => loadConfig({ REDIS_URL: "http://r" })).toThrow(/REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL/);
    expect(() => loadConfig({ STORE: "disk" })).toThrow(/STORE: must be rest, tcp or memory/);
  });

  it("refuses bad values, naming each", () => {
    expect(refusal({ ICE_SERVERS: "stun:x" })).toContain("ICE_SERVERS");
    expect(refusal({ ROOM_TTL_SECONDS: "-5" })).toContain("ROOM_TTL_SECONDS");
    expect(refusal({ EVENTS_STREAM_SECONDS: "2" })).toContain("EVENTS_STREAM_SECONDS");
    expect(refusal({ EVENTS_HEARTBEAT_SECONDS: "0" })).toContain("EVENTS_HEARTBEAT_SECONDS");
    expect(refusal({ EVENTS_HEARTBEAT_SECONDS: "31" })).toContain("EVENTS_HEARTBEAT_SECONDS: must be at most 30");
    expect(refusal({ EVENTS_HEARTBEAT_SECONDS: "90" })).toContain("EVENTS_HEARTBEAT_SECONDS");
    // The longest heartbeat allowed keeps a quiet stream alive in the client's eyes, with room to spare.
    expect(loadConfig({ EVENTS_HEARTBEAT_SECONDS: "30" }).eventsHeartbeatMs).toBeLessThanOrEqual(STREAM_STALL_MS * 2 / 3);
    expect(refusal({ REDIS_MAX_IN_FLIGHT: "none" })).toContain("REDIS_MAX_IN_FLIGHT");
    expect(refusal({ UPSTASH_REDIS_REST_URL: "https://u.example" })).toContain("must be set together");
    expect(refusal({ VERCEL: "1" })).toContain("on Vercel");
    expect(refusal({ VERCEL_CLI_VERSION: "60.1.3" })).toContain("under vercel dev each function runs in a process of its own");
    expect(refusal({ AUTH_SECRET: "short" })).toContain("AUTH_SECRET");
    expect(refusal({ AUTH_JWKS_URL: "not a url" })).toContain("AUTH_JWKS_URL");
    expect(refusal({ AUTH_JWT_AUDIENCE: "signalbox" })).toContain("need AUTH_JWKS_URL");
    expect(refusal({ OPENAI_MODE: "live" })).toContain("needs OPENAI_API_KEY");
    expect(refusal({ OPENAI_PRESETS: "{nope" })).toContain("OPENAI_PRESETS");
    expect(refusal({ OPENAI_PRESETS: '{"x":{"type":"realtime"}}' })).toContain("needs a model");
    expect(refusal({ OPENAI_PRESETS: '{"x":{"type":"realtime","model":"m","temperature":2}}' })).toContain("OPENAI_PRESETS");
    expect(refusal({ OPENAI_ALLOWED_PRESETS: "transcribe,ghost" })).toContain("ghost");
  });

  it("checks presets at start against OpenAI's session shapes, saying which preset and what is wrong", () => {
    const presets = (table: Record<string, unknown>) => refusal({ OPENAI_PRESETS: JSON.stringify(table) });
    const live = { type: "transcription", transcription: { model: "gpt-live-transcribe" } };
    expect(presets({ live: { ...live, turnDetection: { type: "server_vad" } } })).toContain("live: gpt-live-transcribe takes its own turns; set turnDetection to null");
    expect(presets({ w: { type: "transcription", transcription: { model: "gpt-realtime-whisper", prompt: "names" }, turnDetection: null } })).toContain("w: gpt-realtime-whisper takes no transcription.prompt");
    expect(presets({ w: { type: "transcription", transcription: { model: "gpt-realtime-whisper" }, turnDetection: { type: "semantic_vad" } } })).toContain("gpt-realtime-whisper takes its own turns");
    expect(presets({ t: { ...live, turnDetection: { type: "client_vad" } } })).toContain("OPENAI_PRESETS");
    expect(presets({ t: { ...live, turnDetection: { type: "server_vad", eagerness: "high" } } })).toContain("OPENAI_PRESETS");
    expect(presets({ t: { ...live, transcription: { model: "gpt-live-transcribe", delay: "soon" } } })).toContain("OPENAI_PRESETS");
    expect(presets({ t: { ...live, transcription: { model: "gpt-live-transcribe", language: "en", languages: ["en", "fr"] } } })).toContain("t: give transcription.language or transcription.languages, not both");
    expect(presets({ a: { type: "realtime", model: "gpt-realtime-2.1", voice: { name: "x" } } })).toContain("OPENAI_PRESETS");
    expect(presets({ t: { type: "transcription" } })).toContain("t: a transcription preset needs transcription.model");
    // What the reference allows passes: every field, a custom voice by id, semantic VAD with eagerness.
    const ok = loadConfig({
      OPENAI_PRESETS: JSON.stringify({
        notes: { type: "transcription", transcription: { model: "gpt-realtime-whisper", languages: ["en", "de"], keywords: ["signalbox"], delay: "low" }, turnDetection: null },
        agent: { type: "realtime", model: "gpt-realtime-2.1-mini", voice: { id: "voice_123" }, transcription: { model: "gpt-4o-mini-transcribe", prompt: "names" }, turnDetection: { type: "semantic_vad", eagerness: "low" } },
        vad: { type: "transcription", transcription: { model: "gpt-4o-transcribe" }, turnDetection: { type: "server_vad", threshold: 0.6, silence_duration_ms: 400 } },
      }),
    });
    expect(Object.keys(ok.openai.presets)).toEqual(["notes", "agent", "vad"]);
  });

  it("reads each variable as the README documents it", () => {
    // Empty means unset (as a blank line in .env gives).
    expect(loadConfig({ ROOM_TTL_SECONDS: "", ALLOWED_ORIGINS: "" }).roomTtlMs).toBe(3_600_000);
    expect(loadConfig({ ALLOWED_ORIGINS: " * " }).allowedOrigins).toBe("*");
    expect(loadConfig({ ALLOWED_ORIGINS: "https://a.example,, https://b.example " }).allowedOrigins).toEqual(["https://a.example", "https://b.example"]);
    expect(loadConfig({}).rateLimits.enabled).toBe(true);
    expect(loadConfig({ RATE_LIMITS: "off" }).rateLimits.enabled).toBe(false);
    expect(loadConfig({}).cronSecret).toBeNull();
    expect(loadConfig({ CRON_SECRET: "a-long-enough-cron-secret" }).cronSecret).toBe("a-long-enough-cron-secret");
    expect(loadConfig({}).listen).toEqual({ port: 3000, host: "127.0.0.1" });
    expect(loadConfig({ OPENAI_BASE_URL: "https://gateway.example/v1/" }).openai.baseUrl).toBe("https://gateway.example/v1");
    expect(loadConfig({ OPENAI_MAX_SESSION_SECONDS: "120" }).openai.maxSessionMs).toBe(120_000);
    expect(loadConfig({ AUTH_JWKS_URL: "https://id.example/jwks", AUTH_JWT_AUDIENCE: " app , api ,", AUTH_JWT_ISSUER: "https://id.example" }).jwt).toEqual({
      jwksUrl: "https://id.example/jwks", issuer: "https://id.example", audience: ["app", "api"],
    });
    // Presets: the allowed list is trimmed; with no "transcribe", the first preset is the default.
    expect(loadConfig({ OPENAI_ALLOWED_PRESETS: " assistant , transcribe ," }).openai.allowedPresets).toEqual(["assistant", "transcribe"]);
    const own = loadConfig({ OPENAI_PRESETS: JSON.stringify({ notes: { type: "transcription", transcription: { model: "gpt-4o-transcribe" } }, agent: { model: "gpt-realtime-2.1" } }) });
    expect(own.openai.defaultPreset).toBe("notes");
    const later = loadConfig({ OPENAI_PRESETS: JSON.stringify({ agent: { model: "gpt-realtime-2.1" }, transcribe: { type: "transcription", transcription: { model: "gpt-4o-transcribe" } } }) });
    expect(later.openai.defaultPreset).toBe("transcribe");
    expect(loadConfig({ AUTH_JWKS_URL: "https://id.example/jwks" }).jwt).toEqual({ jwksUrl: "https://id.example/jwks", issuer: undefined, audience: undefined });
  });

  it("says every problem at once, one line each, naming its variable", () => {
    const message = refusal({ ROOM_TTL_SECONDS: "-5", ICE_SERVERS: "[not json", OPENAI_PRESETS: "{nope" });
    const lines = message.split("\n");
    expect(lines[0]).toBe("Invalid configuration:");
    expect(lines.slice(1).sort()).toEqual([
      "  ICE_SERVERS: must be a JSON array of RTCIceServer objects",
      "  OPENAI_PRESETS: must be a JSON object of presets",
      expect.stringMatching(/^ {2}ROOM_TTL_SECONDS: /),
    ]);
    expect(refusal({ OPENAI_DEFAULT_PRESET: "ghost", OPENAI_ALLOWED_PRESETS: "transcribe,phantom" })).toContain("name unknown presets: ghost, phantom");
  });

  it("refuses TURN without credentials, or with URLs that are not TURN's", () => {
    expect(refusal({ TURN_URLS: "turn:turn.example:3478" })).toContain("TURN_URLS needs TURN_SECRET, or TURN_USERNAME and TURN_CREDENTIAL");
    expect(refusal({ TURN_URLS: "turn:turn.example:3478", TURN_USERNAME: "u" })).toContain("TURN_URLS needs");
    expect(refusal({ TURN_URLS: "stun:stun.example:3478", TURN_SECRET: "a-long-enough-secret" })).toContain("TURN_URLS: each must start with turn: or turns:");
    expect(refusal({ TURN_URLS: "xturn:turn.example:3478", TURN_SECRET: "a-long-enough-secret" })).toContain("TURN_URLS: each must start with turn: or turns:");
    expect(loadConfig({ TURN_URLS: "turn:a.example, turns:b.example", TURN_SECRET: "a-long-enough-secret" }).turn?.urls).toEqual(["turn:a.example", "turns:b.example"]);
    expect(loadConfig({ TURN_URLS: "turn:a.example", TURN_USERNAME: "u", TURN_CREDENTIAL: "c" }).turn).toMatchObject({ username: "u", credential: "c" });
  });

  it("names a secret that is refused, never its value", () => {
    const secrets = { AUTH_SECRET: "hunter2-secret", TURN_SECRET: "s3cr3t7", CRON_SECRET: "cron-s3cret", UPSTASH_REDIS_REST_URL: "sk-live-in-a-url" };
    const message = refusal({ ...secrets, UPSTASH_REDIS_REST_TOKEN: "t" });
    for (const [name, value] of Object.entries(secrets)) {
      expect(message).toContain(name);
      expect(message).not.toContain(value);
    }
  });

  it("lists every variable it reads in .env.example (but those the platform sets)", () => {
    const listed = new Set([...readFileSync(".env.example", "utf8").matchAll(/^#? ?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));
    const unlisted = Object.keys(EnvSchema.shape).filter((name) => !listed.has(name) && !name.startsWith("VERCEL"));
    expect(unlisted).toEqual([]);
  });
});
