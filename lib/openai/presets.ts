/**
 * Session presets: everything OpenAI is told about a session (model, voice, instructions,
 * transcription, turn detection, what the browser may do on its data channel) comes from the
 * server's configuration, by name. A browser may only pick one of the allowed names; nothing
 * free-form from a client reaches OpenAI. Two APIs: Realtime (`realtime`, `transcription`
 * presets: /v1/realtime/calls) and GPT-Live (`live` presets: /v1/live/sessions).
 */
import type { BuiltInVoice, ClientEvent, MediaSessionConfig, ServerEvent } from "openai/resources/live/live";
import { z } from "zod";

/** The OpenAI models the default presets name: the one place to move them forward. */
export const MODELS = { voice: "gpt-realtime-2.1", voiceMini: "gpt-realtime-2.1-mini", transcription: "gpt-live-transcribe", live: "gpt-live-1.1" } as const;

/** Streaming transcribers that take their own turns: a transcription session with one takes no turn detection. */
const SELF_TURNING = ["gpt-live-transcribe", "gpt-realtime-whisper"];

// Shapes as OpenAI's Realtime API reference gives them (snake_case fields pass through as they are).
const TurnDetection = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("server_vad"),
    threshold: z.number().min(0).max(1).optional(),
    prefix_padding_ms: z.number().int().min(0).optional(),
    silence_duration_ms: z.number().int().min(0).optional(),
    idle_timeout_ms: z.number().int().min(0).nullable().optional(),
    create_response: z.boolean().optional(),
    interrupt_response: z.boolean().optional(),
  }),
  z.strictObject({
    type: z.literal("semantic_vad"),
    eagerness: z.enum(["low", "medium", "high", "auto"]).optional(),
    create_response: z.boolean().optional(),
    interrupt_response: z.boolean().optional(),
  }),
]);

const Transcription = z.strictObject({
  model: z.string().min(1),
  language: z.string().min(2).optional(),
  languages: z.array(z.string().min(2)).min(1).optional(),
  prompt: z.string().optional(),
  keywords: z.array(z.string().min(1)).optional(),
  delay: z.enum(["minimal", "low", "medium", "high", "xhigh"]).optional(),
});

/**
 * GPT-Live, as the openai SDK types it (openai/resources/live/live): its voices, the events a
 * browser may send on its data channel (the primary WebSocket's own two aside), and the events
 * it may receive. The lists are checked against the SDK's unions when this compiles (below).
 */
const LIVE_VOICES = ["alloy", "ash", "ballad", "beacon", "bossa", "cedar", "cinder", "coral", "delta", "echo", "gleam", "marin", "meridian", "quartz", "ripple", "sage", "shida", "shimmer", "stone", "tempo", "verse", "vesper", "willow"] as const;
const LIVE_CLIENT_EVENTS = [
  "session.update", "session.input_audio.mute", "session.input_audio.unmute", "session.output_audio.fixture.play", "session.instructions.append",
  "session.thinking.append", "session.commentary.append", "decision.create", "decision.item.create", "decision.item.delete", "response.item.create",
  "response.create", "session.close",
] as const;
const LIVE_SERVER_EVENTS = [
  "session.started", "session.updated", "session.input_audio.muted", "session.input_audio.unmuted", "session.output_audio.fixture.playing",
  "session.output_audio.fixture.played", "session.instructions.appended", "session.thinking.appended", "session.commentary.appended",
  "session.input_audio.append", "session.output_audio.delta", "session.input_transcript.delta", "session.output_transcript.delta",
  "session.delegation.created", "decision.event", "decision.item.created", "decision.item.deleted", "response.event", "session.usage.updated",
  "session.closed", "error", "info", "transport.dtmf.received", "transport.dtmf.send", "transport.dtmf.sent", "transport.ringing",
  "transport.answered", "transport.failed",
] as const;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const liveListsMatchTheSdk: [
  Same<(typeof LIVE_VOICES)[number], BuiltInVoice>,
  Same<(typeof LIVE_CLIENT_EVENTS)[number], Exclude<ClientEvent["type"], "session.start" | "session.input_audio.append">>,
  Same<(typeof LIVE_SERVER_EVENTS)[number], ServerEvent["type"]>,
] = [true, true, true];
void liveListsMatchTheSdk;

/**
 * What a voice page needs of its data channel, and no more: mute and unmute its input, end its
 * own session; hear that it started, the transcripts both ways, errors and the end. Not
 * session.update nor any *.append: the session's instructions and delegation are the preset's.
 */
export const VOICE_PAGE_CHANNEL = {
  allowedClientEvents: ["session.input_audio.mute", "session.input_audio.unmute", "session.close"],
  allowedServerEvents: ["session.started", "session.input_audio.muted", "session.input_audio.unmuted", "session.input_transcript.delta", "session.output_transcript.delta", "session.closed", "error"],
} satisfies { allowedClientEvents: (typeof LIVE_CLIENT_EVENTS)[number][]; allowedServerEvents: (typeof LIVE_SERVER_EVENTS)[number][] };

/** A GPT-Live session: the model, its voice and instructions, and what the browser's data channel may carry. */
const LivePreset = z.strictObject({
  type: z.literal("live"),
  model: z.string().min(1).default(MODELS.live),
  voice: z.union([z.enum(LIVE_VOICES), z.strictObject({ id: z.string().min(1) })]).optional(),
  instructions: z.string().max(65_536).optional(),
  dataChannel: z
    .strictObject({ allowedClientEvents: z.array(z.enum(LIVE_CLIENT_EVENTS)), allowedServerEvents: z.array(z.enum(LIVE_SERVER_EVENTS)) })
    .default(VOICE_PAGE_CHANNEL),
});

const RealtimePreset = z.strictObject({
  /** "realtime": a voice agent (with input transcription); "transcription": transcription only. */
  type: z.enum(["realtime", "transcription"]).default("realtime"),
  model: z.string().min(1).optional(),
  voice: z.union([z.string().min(1), z.strictObject({ id: z.string().min(1) })]).optional(),
  instructions: z.string().optional(),
  transcription: Transcription.optional(),
  turnDetection: TurnDetection.nullable().optional(),
  noiseReduction: z.strictObject({ type: z.enum(["near_field", "far_field"]) }).nullable().optional(),
});

export const Preset = z.union([LivePreset, RealtimePreset]);
export type Preset = z.infer<typeof Preset>;
export type LivePreset = z.infer<typeof LivePreset>;
export type RealtimePreset = z.infer<typeof RealtimePreset>;

export const DEFAULT_PRESETS = {
  transcribe: {
    type: "transcription",
    transcription: { model: MODELS.transcription },
    turnDetection: null,
    noiseReduction: { type: "near_field" },
  },
  assistant: {
    type: "realtime",
    model: MODELS.voice,
    voice: "marin",
    instructions: "You are a helpful, concise voice assistant.",
    transcription: { model: MODELS.transcription },
    turnDetection: { type: "semantic_vad" },
  },
  "assistant-mini": {
    type: "realtime",
    model: MODELS.voiceMini,
    voice: "marin",
    instructions: "You are a helpful, concise voice assistant.",
    transcription: { model: MODELS.transcription },
    turnDetection: { type: "semantic_vad" },
  },
  live: {
    type: "live",
    model: MODELS.live,
    voice: "marin",
    instructions: "You are a helpful, concise voice assistant.",
    dataChannel: VOICE_PAGE_CHANNEL,
  },
} satisfies Record<string, Preset>;

/** What the shapes alone cannot say: rules between fields, each in words for the operator. */
function presetRules(name: string, p: Preset): string[] {
  if (p.type === "live") return [];
  const model = p.transcription?.model;
  const problems: string[] = [];
  if (p.type === "realtime" && !p.model) problems.push(`${name}: a realtime preset needs a model`);
  if (p.type === "transcription" && !model) problems.push(`${name}: a transcription preset needs transcription.model`);
  if (p.type === "transcription" && model && SELF_TURNING.includes(model) && p.turnDetection) {
    problems.push(`${name}: ${model} takes its own turns; set turnDetection to null`);
  }
  if (model === "gpt-realtime-whisper" && p.transcription?.prompt !== undefined) problems.push(`${name}: gpt-realtime-whisper takes no transcription.prompt`);
  if (p.transcription?.language && p.transcription.languages) problems.push(`${name}: give transcription.language or transcription.languages, not both`);
  return problems;
}

export const PresetTable = z
  .record(z.string().regex(/^[a-z0-9-]{1,32}$/, "preset names are 1-32 of a-z, 0-9, -"), Preset)
  .superRefine((table, ctx) => {
    for (const [name, preset] of Object.entries(table)) for (const message of presetRules(name, preset)) ctx.addIssue({ code: "custom", message, path: [name] });
  });

/** The `session` a GPT-Live session starts with (POST /v1/live/sessions), as the SDK types it. */
export function liveSessionJson(preset: LivePreset): MediaSessionConfig {
  return {
    model: preset.model,
    ...(preset.instructions !== undefined ? { instructions: preset.instructions } : {}),
    ...(preset.voice ? { audio: { output: { voice: preset.voice } } } : {}),
    client: { data_channel: { allowed_client_events: preset.dataChannel.allowedClientEvents, allowed_server_events: preset.dataChannel.allowedServerEvents.map((type) => ({ type })) } },
  };
}

/** The `session` object OpenAI's Realtime API takes (calls and client secrets alike). */
export function sessionJson(preset: RealtimePreset): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  if (preset.transcription) input.transcription = preset.transcription;
  if (preset.turnDetection !== undefined) input.turn_detection = preset.turnDetection;
  if (preset.noiseReduction !== undefined) input.noise_reduction = preset.noiseReduction;
  if (preset.type === "transcription") return { type: "transcription", audio: { input } };
  return {
    type: "realtime",
    model: preset.model,
    ...(preset.instructions !== undefined ? { instructions: preset.instructions } : {}),
    audio: { input, ...(preset.voice ? { output: { voice: preset.voice } } : {}) },
  };
}
