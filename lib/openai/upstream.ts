/**
 * The upstream that answers a browser's offer. One small interface, so another OpenAI API
 * (or the in-process simulator) plugs in beside the Realtime "calls" API.
 */
import { nanoid } from "nanoid";
import type { Context } from "../context.js";
import { Problem } from "../problem.js";
import { sessionJson, type Preset } from "./presets.js";

export interface RealtimeUpstream {
  readonly kind: "openai" | "simulated";
  /** Sends the offer (with all its candidates: upstream has no trickle ICE); returns the answer. */
  connect(offerSdp: string, preset: Preset): Promise<{ answerSdp: string; callId: string }>;
  /** An ephemeral client secret for a browser to connect with directly. */
  mintSecret(preset: Preset, ttlSeconds: number): Promise<{ value: string; expiresAt: number }>;
  hangup(callId: string): Promise<void>;
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

const upstreamProblem = (status: number, code: string, title: string, detail: string, headers: Record<string, string> = {}) =>
  new Problem(status, code, title, detail, {}, headers);

/**
 * OpenAI's (or a gateway's) error messages can quote a key, whole or masked; never pass one on.
 * Gone: anything shaped like an OpenAI key, and any word holding the start of one of `secrets`
 * (the configured key, whatever its format), or masked with its last four characters.
 */
export function redactSecrets(text: string, secrets: string[] = []): string {
  let redacted = text.replace(/\b(sk|ek|rk)[-_][A-Za-z0-9_*\-.]{4,}/g, "[redacted]");
  for (const secret of secrets.filter((s) => s.length >= 8)) {
    const head = secret.slice(0, 8);
    const tail = secret.slice(-4);
    redacted = redacted.split(secret).join("[redacted]");
    redacted = redacted.replace(/[^\s"'`,;()[\]{}<>]+/g, (word) =>
      word.includes(head) || (word.includes("*") && word.endsWith(tail)) ? "[redacted]" : word,
    );
  }
  return redacted;
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

interface Attempt {
  res?: Response;
  body?: string;
  error?: unknown;
  timedOut?: boolean;
}

/** Delay before the next attempt: OpenAI's retry-after-ms, then retry-after, else backoff with jitter. */
function retryDelay(res: Response | undefined, attempt: number, backoffMs: number, random = Math.random): number {
  const ms = Number(res?.headers.get("retry-after-ms"));
  if (Number.isFinite(ms) && ms > 0 && ms < 60_000) return ms;
  const seconds = Number(res?.headers.get("retry-after"));
  if (Number.isFinite(seconds) && seconds > 0 && seconds <= 60) return seconds * 1000;
  return backoffMs * 2 ** attempt * (0.75 + random() / 2);
}

/** Errors raised before a request could leave: nothing reached OpenAI, so nothing started. */
const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

/**
 * A request that starts a billed call is retried only when it cannot have started one: it never
 * left (connection refused), or OpenAI refused it (one naming a call is never retried: see
 * request). Other requests retry on any network error.
 */
function shouldRetry(attempt: Attempt, startsCall: boolean): boolean {
  if (attempt.timedOut) return false;
  if (!attempt.res) return !startsCall || NOT_SENT.has(((attempt.error as Error)?.cause as NodeJS.ErrnoException)?.code ?? "");
  const hint = attempt.res.headers.get("x-should-retry");
  if (hint === "true") return true;
  if (hint === "false") return false;
  const status = attempt.res.status;
  if (status === 429) return !attempt.body?.includes("insufficient_quota");
  return status === 408 || status === 409 || status >= 500;
}

function upstreamMessage(body: string | undefined, secrets: string[]): string {
  try {
    const message = (JSON.parse(body ?? "") as { error?: { message?: string } }).error?.message;
    return message ? redactSecrets(message, secrets) : "no details";
  } catch {
    return "no details";
  }
}

/** Turns a final upstream failure into our problem document (no upstream secrets in it, nor `secrets`). */
function failure(attempt: Attempt, retried: boolean, secrets: string[]): Problem {
  if (attempt.timedOut) return upstreamProblem(504, "upstream_timeout", "OpenAI did not answer in time", "OpenAI did not answer in time; try again");
  const res = attempt.res;
  if (!res) return upstreamProblem(503, "upstream_unavailable", "OpenAI unreachable", "OpenAI could not be reached; try again shortly", { "retry-after": "5" });
  const status = res.status;
  if (status === 401) return upstreamProblem(502, "upstream_auth_failed", "OpenAI refused the server's credentials", "OpenAI rejected this server's API key: the operator must fix OPENAI_API_KEY");
  if (status === 403) return upstreamProblem(502, "upstream_forbidden", "OpenAI refused the request", `OpenAI refused access: ${upstreamMessage(attempt.body, secrets)}`);
  if (status === 429 && attempt.body?.includes("insufficient_quota")) {
    return upstreamProblem(503, "upstream_quota_exhausted", "OpenAI quota exhausted", "The OpenAI account behind this server has no quota left");
  }
  if (status === 429 || status >= 500 || status === 408 || status === 409) {
    const seconds = Math.ceil(retryDelay(res, 0, 1000) / 1000);
    return upstreamProblem(503, "upstream_unavailable", "OpenAI unavailable", `OpenAI answered ${status}${retried ? " on every attempt" : ""}; try again shortly`, { "retry-after": String(seconds) });
  }
  if (status === 400 || status === 404 || status === 422) {
    return upstreamProblem(400, "upstream_rejected", "OpenAI rejected the session", `OpenAI rejected the offer or session: ${upstreamMessage(attempt.body, secrets)}`);
  }
  return upstreamProblem(502, "upstream_error", "Unexpected answer from OpenAI", `OpenAI answered ${status}`);
}

export class OpenAIRealtimeUpstream implements RealtimeUpstream {
  readonly kind = "openai" as const;

  constructor(private readonly o: UpstreamOptions) {}

  async connect(offerSdp: string, preset: Preset) {
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

  async mintSecret(preset: Preset, ttlSeconds: number) {
    const payload = { expires_after: { anchor: "created_at", seconds: ttlSeconds }, session: sessionJson(preset) };
    const { body } = await this.request("/realtime/client_secrets", { "content-type": "application/json" }, JSON.stringify(payload));
    const parsed = JSON.parse(body) as { value?: string; expires_at?: number };
    if (!parsed.value) throw upstreamProblem(502, "upstream_error", "Unexpected answer from OpenAI", "OpenAI's answer had no client secret");
    return { value: parsed.value, expiresAt: (parsed.expires_at ?? 0) * 1000 };
  }

  async hangup(callId: string) {
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
        void this.hangup(orphan).catch(() => {});
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
  return new OpenAIRealtimeUpstream({
    apiKey: o.apiKey!,
    baseUrl: o.baseUrl,
    connectTimeoutMs: o.connectTimeoutMs,
    totalTimeoutMs: o.timeoutMs,
    attempts: o.attempts,
    backoffMs: 500,
  });
}
