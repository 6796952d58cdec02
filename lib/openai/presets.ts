/**
 * Session presets: everything OpenAI is told about a session (model, voice, instructions,
 * transcription, turn detection) comes from the server's configuration, by name. A browser
 * may only pick one of the allowed names; nothing free-form from a client reaches OpenAI.
 */
import { z } from "zod";

/** The OpenAI models the default presets name: the one place to move them forward. */
export const MODELS = { voice: "gpt-realtime-2.1", voiceMini: "gpt-realtime-2.1-mini", transcription: "gpt-live-transcribe" } as const;

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

export const Preset = z.strictObject({
  /** "realtime": a voice agent (with input transcription); "transcription": transcription only. */
  type: z.enum(["realtime", "transcription"]).default("realtime"),
  model: z.string().min(1).optional(),
  voice: z.union([z.string().min(1), z.strictObject({ id: z.string().min(1) })]).optional(),
  instructions: z.string().optional(),
  transcription: Transcription.optional(),
  turnDetection: TurnDetection.nullable().optional(),
  noiseReduction: z.strictObject({ type: z.enum(["near_field", "far_field"]) }).nullable().optional(),
});
export type Preset = z.infer<typeof Preset>;

export const DEFAULT_PRESETS: Record<string, Preset> = {
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
};

/** What the shapes alone cannot say: rules between fields, each in words for the operator. */
function presetRules(name: string, p: Preset): string[] {
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

/** The `session` object OpenAI's Realtime API takes (calls and client secrets alike). */
export function sessionJson(preset: Preset): Record<string, unknown> {
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
