/**
 * GPT-Live through the official openai SDK: a session started from the browser's offer
 * (`client.live.create`: POST /v1/live/sessions, the project key server-side: GPT-Live has no
 * client secrets), and ended over its sideband (`SidebandWS`: /v1/live/sessions/{id}/attach, a
 * WebSocket with the key as bearer; `session.close`, answered by `session.closed`). WebRTC Live
 * sessions have no REST hangup (the SDK's `live.sessions.hangup` is for SIP).
 *
 * What is the SDK's and what is ours: its client sends the request (the key in the
 * Authorization header only) and types both ways; its retries are off (`maxRetries: 0`), as a
 * POST it resent after a lost reply would open a second billed session, and ours decide
 * (lib/openai/attempts.ts: only what cannot have reached OpenAI, or what OpenAI said to retry);
 * the timeouts are ours (until headers, and in all), through the fetch it is given; its errors
 * become our problem documents, the key cut from anything OpenAI says.
 */
import OpenAI, { APIConnectionError, APIError } from "openai";
import type { LiveCreateResponse } from "openai/resources/live/live";
import { SidebandWS } from "openai/resources/live/sideband/ws";
import { failure, retryDelay, shouldRetry, upstreamProblem, type Attempt } from "./attempts.js";
import { liveSessionJson, type LivePreset } from "./presets.js";
import type { UpstreamOptions } from "./upstream.js";

/** How long a close waits for OpenAI's `session.closed` before it lets the socket go. */
export const CLOSE_WAIT_MS = 5000;

/** A client for one attempt, whose fetch keeps our timeouts and says whether one ran out. */
function clientFor(o: UpstreamOptions) {
  let timedOut = false;
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const controller = new AbortController();
    const expire = (ms: number) => setTimeout(() => ((timedOut = true), controller.abort()), ms);
    const total = expire(o.totalTimeoutMs);
    const headersDue = expire(o.connectTimeoutMs);
    init?.signal?.addEventListener("abort", () => controller.abort(), { once: true });
    try {
      const res = await globalThis.fetch(input, { ...init, signal: controller.signal });
      clearTimeout(headersDue);
      // The body is read within the total time too: the SDK reads it from this response.
      const body = await res.arrayBuffer();
      return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    } finally {
      clearTimeout(total);
      clearTimeout(headersDue);
    }
  };
  const client = new OpenAI({ apiKey: o.apiKey, baseURL: o.baseUrl, maxRetries: 0, timeout: o.totalTimeoutMs + 1000, fetch });
  return { client, timedOut: () => timedOut };
}

/** What a failed SDK call came to, in the terms our retry policy and problem documents take. */
function attemptOf(error: unknown, timedOut: boolean): Attempt {
  if (timedOut) return { timedOut: true };
  if (error instanceof APIError && typeof error.status === "number") {
    const headers = error.headers instanceof Headers ? error.headers : new Headers((error.headers as Record<string, string> | undefined) ?? {});
    return { res: new Response(null, { status: error.status, headers }), body: JSON.stringify({ error: error.error }) };
  }
  // A connection error carries what fetch threw (whose cause says whether the request left).
  return { error: error instanceof APIConnectionError ? error.cause : error };
}

/** Starts a GPT-Live session from the browser's complete offer: the answer SDP and the session's id. */
export async function startLive(o: UpstreamOptions, offerSdp: string, preset: LivePreset): Promise<{ answerSdp: string; callId: string }> {
  let last: Attempt = {};
  for (let attempt = 0; attempt < o.attempts; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, retryDelay(last.res, attempt - 1, o.backoffMs)));
    const { client, timedOut } = clientFor(o);
    let created: LiveCreateResponse;
    try {
      created = await client.live.create({ session: liveSessionJson(preset), transport: { type: "webrtc", sdp: offerSdp } }, { maxRetries: 0 });
    } catch (error) {
      last = attemptOf(error, timedOut());
      if (!shouldRetry(last, true)) break;
      continue;
    }
    if (!created.session?.id || !created.transport?.sdp) throw upstreamProblem(502, "upstream_error", "Unexpected answer from OpenAI", "OpenAI's answer had no session id or SDP");
    return { answerSdp: created.transport.sdp, callId: created.session.id };
  }
  throw failure(last, o.attempts > 1, [o.apiKey]);
}

/**
 * Ends a GPT-Live session over its sideband: `session.close`, then up to CLOSE_WAIT_MS for OpenAI's
 * `session.closed` (after which the socket goes anyway); throws if the sideband could not be reached.
 */
export async function closeLive(o: UpstreamOptions, sessionId: string): Promise<void> {
  const { client } = clientFor(o);
  const sideband = new SidebandWS(client, { session_id: sessionId });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, CLOSE_WAIT_MS);
      const done = (error?: Error) => (clearTimeout(timer), error ? reject(error) : resolve());
      sideband.on("session.closed", () => done());
      sideband.on("error", (error) => done(new Error(`the sideband failed: ${error.message}`)));
      sideband.on("close", () => done());
      sideband.send({ type: "session.close" });
    });
  } finally {
    sideband.close();
  }
}
