/** Replies shaped as OpenAI's reference gives them, for the msw stand-ins of its API. */
import { sessionJson, type RealtimePreset } from "../../lib/openai/presets.js";

/** OpenAI's error body: every field present, null where it has nothing to say. */
export const openAiError = (message: string, type: string, code: string | null = null, param: string | null = null) => ({ error: { message, type, param, code } });

/** A client secret as `POST /v1/realtime/client_secrets` returns it: the value, its expiry, the session. */
export const clientSecret = (value: string, expiresAt: number, preset: RealtimePreset) => ({
  value,
  expires_at: expiresAt,
  session: { id: `sess_${value.slice(-8)}`, object: preset.type === "transcription" ? "realtime.transcription_session" : "realtime.session", ...sessionJson(preset) },
});
