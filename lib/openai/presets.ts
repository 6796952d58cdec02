/**
 * Session presets: everything OpenAI is told about a session (model, voice, instructions,
 * transcription, turn detection) comes from the server's configuration, by name. A browser
 * may only pick one of the allowed names; nothing free-form from a client reaches OpenAI.
 */
import { z } from "zod";

export const Preset = z.strictObject({
  /** "realtime": a voice agent (with input transcription); "transcription": transcription only. */
  type: z.enum(["realtime", "transcription"]).default("realtime"),
  model: z.string().min(1).optional(),
  voice: z.string().min(1).optional(),
  instructions: z.string().optional(),
  transcription: z.strictObject({ model: z.string().min(1), language: z.string().optional(), prompt: z.string().optional() }).optional(),
  turnDetection: z.record(z.string(), z.unknown()).nullable().optional(),
  noiseReduction: z.strictObject({ type: z.enum(["near_field", "far_field"]) }).nullable().optional(),
});
export type Preset = z.infer<typeof Preset>;

export const DEFAULT_PRESETS: Record<string, Preset> = {
  transcribe: {
    type: "transcription",
    transcription: { model: "gpt-4o-transcribe" },
    turnDetection: { type: "server_vad" },
    noiseReduction: { type: "near_field" },
  },
  assistant: {
    type: "realtime",
    model: "gpt-realtime",
    voice: "marin",
    instructions: "You are a helpful, concise voice assistant.",
    transcription: { model: "gpt-4o-mini-transcribe" },
    turnDetection: { type: "semantic_vad" },
  },
};

export const PresetTable = z.record(z.string().regex(/^[a-z0-9-]{1,32}$/, "preset names are 1-32 of a-z, 0-9, -"), Preset).refine(
  (table) => Object.values(table).every((p) => p.type === "transcription" ? Boolean(p.transcription) : Boolean(p.model)),
  "a realtime preset needs a model; a transcription preset needs transcription.model",
);

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
