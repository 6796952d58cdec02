/**
 * The upstream that answers a browser's offer: OpenAI's Realtime API (calls, client secrets, a
 * REST hangup) and its GPT-Live API (sessions, closed over the sideband: lib/openai/live.ts), or
 * the in-process simulator. One small interface for all of them.
 */
import { nanoid } from "nanoid";
import type { Context } from "../context.js";
import { failure, retryDelay, shouldRetry, upstreamProblem, type Attempt } from "./attempts.js";
import { sessionJson, type Preset, type RealtimePreset } from "./presets.js";

/** Which OpenAI API a session is on: its preset's type says ("live" presets: GPT-Live). */
export type AiApi = "realtime" | "live";
export const apiOf = (preset: Preset): AiApi => (preset.type === "live" ? "live" : "realtime");

export interface RealtimeUpstream {
  readonly kind: "openai" | "simulated";
  /**
   * Sends the offer (with all its candidates: upstream has no trickle ICE); returns the answer,
   * and the call's id (a Realtime call's, or a GPT-Live session's).
   */
  connect(offerSdp: string, preset: Preset): Promise<{ answerSdp: string; callId: string }>;
  /** An ephemeral client secret for a browser to connect with directly (Realtime only: GPT-Live has none). */
  mintSecret(preset: RealtimePreset, ttlSeconds: number): Promise<{ value: string; expiresAt: number }>;
  /** Ends a call: a Realtime call by REST, a GPT-Live session over its sideband. */
  hangup(callId: string, api: AiApi): Promise<void>;
}

export interface UpstreamOptions {
  apiKey: string;
  /** e.g. https://api.openai.com/v1 (a gateway's, or a test server's). */
  baseUrl: string;
  /** Until response headers arrive. */
  connectTimeoutMs: number;
  /** For the whole exchange, body included. */
  totalTimeoutMs: number;
  /** Attempts in all, the first included. */
  attempts: number;
  /** Base of the exponential backoff between attempts. */
  backoffMs: number;
}

/** The call's id: the last segment of the Location path (a query string or trailing slash aside). */
export function callIdOf(location: string | null): string | undefined {
  if (!location) return undefined;
  const path = new URL(location, "http://upstream.invalid").pathname;
  return decodeURIComponent(path.split("/").filter(Boolean).at(-1) ?? "") || undefined;
}

/**
 * multipart/form-data of plain parts, each a name and a type and no filename, as OpenAI's
 * reference and clients send them (FormData can give a part a type only by making it a file).
 */
export function multipart(parts: { name: string; type: string; body: string }[]) {
  const boundary = `signalbox-${nanoid(24)}`;
  const body = parts.map((p) => `--${boundary}\r\ncontent-disposition: form-data; name="${p.name}"\r\ncontent-type: ${p.type}\r\n\r\n${p.body}\r\n`).join("") + `--${boundary}--\r\n`;
  return { body, type: `multipart/form-data; boundary=${boundary}` };
}

export class OpenAIUpstream implements RealtimeUpstream {
  readonly kind = "openai" as const;

  constructor(private readonly o: UpstreamOptions) {}

  async connect(offerSdp: string, preset: Preset) {
    if (preset.type === "live") {
      const live = await import("./live.js");
      return live.startLive(this.o, offerSdp, preset);
    }
    let res: Response;
    let body: string;
    if (preset.type === "transcription") {
      // A transcription-only call: mint a transcription secret, then post the raw offer with it.
      const secret = await this.mintSecret(preset, 60);
      ({ res, body } = await this.request("/realtime/calls", { "content-type": "application/sdp" }, offerSdp, secret.value));
    } else {
      const form = multipart([
        { name: "sdp", type: "application/sdp", body: offerSdp },
        { name: "session", type: "application/json", body: JSON.stringify(sessionJson(preset)) },
      ]);
      ({ res, body } = await this.request("/realtime/calls", { "content-type": form.type }, form.body));
    }
    const callId = callIdOf(res.headers.get("location"));
    if (!callId) throw upstreamProblem(502, "upstream_error", "Unexpected answer from OpenAI", "OpenAI's answer had no call id (Location header)");
    return { answerSdp: body, callId };
  }

  async mintSecret(preset: RealtimePreset, ttlSeconds: number) {
    const payload = { expires_after: { anchor: "created_at", seconds: ttlSeconds }, session: sessionJson(preset) };
    const { body } = await this.request("/realtime/client_secrets", { "content-type": "application/json" }, JSON.stringify(payload));
    const parsed = JSON.parse(body) as { value?: string; expires_at?: number };
    if (!parsed.value) throw upstreamProblem(502, "upstream_error", "Unexpected answer from OpenAI", "OpenAI's answer had no client secret");
    return { value: parsed.value, expiresAt: (parsed.expires_at ?? 0) * 1000 };
  }

  async hangup(callId: string, api: AiApi) {
    if (api === "live") return (await import("./live.js")).closeLive(this.o, callId);
    await this.request(`/realtime/calls/${encodeURIComponent(callId)}/hangup`, {}, undefined);
  }

  /** POSTs with timeouts and retries; resolves on 2xx, throws our Problem otherwise. */
  private async request(path: string, headers: Record<string, string>, body: BodyInit | undefined, bearer = this.o.apiKey) {
    const startsCall = path === "/realtime/calls";
    let last: Attempt = {};
    for (let attempt = 0; attempt < this.o.attempts; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, retryDelay(last.res, attempt - 1, this.o.backoffMs)));
      last = await this.once(path, headers, body, bearer);
      if (last.res?.ok) return { res: last.res, body: last.body ?? "" };
      // A failure that names a call still opened one: hang it up, or it runs (and bills) unheard.
      const orphan = startsCall ? callIdOf(last.res?.headers.get("location") ?? null) : undefined;
      if (orphan) {
        void this.hangup(orphan, "realtime").catch(() => {});
        break;
      }
      if (!shouldRetry(last, startsCall)) break;
    }
    throw failure(last, this.o.attempts > 1, [this.o.apiKey]);
  }

  private async once(path: string, headers: Record<string, string>, body: BodyInit | undefined, bearer: string): Promise<Attempt> {
    const controller = new AbortController();
    let timedOut = false;
    const timeout = (ms: number) =>
      setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, ms);
    const total = timeout(this.o.totalTimeoutMs);
    const headersDue = timeout(this.o.connectTimeoutMs);
    try {
      const res = await fetch(this.o.baseUrl + path, {
        method: "POST",
        headers: { authorization: `Bearer ${bearer}`, ...headers },
        body,
        signal: controller.signal,
      });
      clearTimeout(headersDue);
      return { res, body: await res.text() };
    } catch (error) {
      return { error, timedOut };
    } finally {
      clearTimeout(total);
      clearTimeout(headersDue);
    }
  }
}

const upstreams = new WeakMap<Context, Promise<RealtimeUpstream>>();

/**
 * Who answers the context's AI calls: OpenAI, or (no key) the in-process simulator, made on
 * first use. The simulator (werift, a WebRTC stack) is loaded only then, and only for it.
 */
export function upstreamFor(ctx: Context): Promise<RealtimeUpstream> {
  let upstream = upstreams.get(ctx);
  if (!upstream) upstreams.set(ctx, (upstream = makeUpstream(ctx)));
  return upstream;
}

async function makeUpstream({ config }: Context): Promise<RealtimeUpstream> {
  const o = config.openai;
  if (o.mode === "simulate") {
    const { SimulatedUpstream } = await import("./simulator.js");
    return new SimulatedUpstream();
  }
  return new OpenAIUpstream({
    apiKey: o.apiKey!,
    baseUrl: o.baseUrl,
    connectTimeoutMs: o.connectTimeoutMs,
    totalTimeoutMs: o.timeoutMs,
    attempts: o.attempts,
    backoffMs: 500,
  });
}
