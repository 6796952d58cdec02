/**
 * GPT-Live through the bridge's upstream, OpenAI played at its edge: msw answers
 * POST /v1/live/sessions with the SDK's own response shape, a WebSocket server on loopback is
 * its sideband. What OpenAI receives (body, headers, the browser's narrow data channel), how its
 * refusals come back (never with the key), that nothing which may have reached it is sent twice,
 * and that a close goes over the sideband.
 */
import { createServer, type AddressInfo } from "node:net";
import { http, HttpResponse, passthrough } from "msw";
import { setupServer } from "msw/node";
import type { LiveCreateParams, LiveCreateResponse } from "openai/resources/live/live";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_PRESETS, liveSessionJson } from "../lib/openai/presets.js";
import { OpenAIUpstream } from "../lib/openai/upstream.js";
import { Problem } from "../lib/problem.js";
import { freePort } from "./support/redis-server.js";
import { startLiveSideband, type LiveSideband } from "./support/live-sideband.js";
import { openAiError } from "./support/openai.js";

const KEY = "sk-live-test-9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n";
const ANSWER = "v=0\r\no=- 9 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 3478 UDP/TLS/RTP/SAVPF 111\r\na=setup:active\r\n";
const created = (id: string): LiveCreateResponse => ({ session: { id }, transport: { type: "webrtc", sdp: ANSWER } });

const msw = setupServer();
let sideband: LiveSideband;
beforeAll(async () => {
  msw.listen({ onUnhandledRequest: "bypass" });
  sideband = await startLiveSideband();
});
afterEach(() => msw.resetHandlers());
afterAll(async () => {
  msw.close();
  await sideband.close();
});

const upstream = (overrides: Partial<ConstructorParameters<typeof OpenAIUpstream>[0]> = {}) =>
  new OpenAIUpstream({ apiKey: KEY, baseUrl: sideband.base, connectTimeoutMs: 2000, totalTimeoutMs: 4000, attempts: 3, backoffMs: 10, ...overrides });

async function problemOf(promise: Promise<unknown>): Promise<Problem> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Problem) return error;
    throw error;
  }
  throw new Error("expected a problem");
}

describe("GPT-Live sessions", () => {
  it("start from the browser's offer with the project key, the preset's session and a narrow data channel; the answer is OpenAI's", async () => {
    const seen: { body: LiveCreateParams; headers: Headers }[] = [];
    msw.use(http.post(`${sideband.base}/live/sessions`, async ({ request }) => (seen.push({ body: (await request.json()) as LiveCreateParams, headers: request.headers }), HttpResponse.json(created("live_abc123")))));
    expect(await upstream().connect(OFFER, DEFAULT_PRESETS.live)).toEqual({ answerSdp: ANSWER, callId: "live_abc123" });
    expect(seen).toHaveLength(1);
    const [{ body, headers }] = seen;
    expect(headers.get("authorization")).toBe(`Bearer ${KEY}`);
    expect(headers.get("content-type")).toBe("application/json");
    expect(body).toEqual({
      session: {
        model: "gpt-live-1.1",
        instructions: "You are a helpful, concise voice assistant.",
        audio: { output: { voice: "marin" } },
        client: {
          data_channel: {
            allowed_client_events: ["session.input_audio.mute", "session.input_audio.unmute", "session.close"],
            allowed_server_events: ["session.started", "session.input_audio.muted", "session.input_audio.unmuted", "session.input_transcript.delta", "session.output_transcript.delta", "session.closed", "error"].map((type) => ({ type })),
          },
        },
      },
      transport: { type: "webrtc", sdp: OFFER },
    });
    // The browser may not rewrite the session: no update, no appended instructions or context.
    const allowed = body.session.client!.data_channel.allowed_client_events as string[];
    for (const forbidden of ["session.update", "session.instructions.append", "session.thinking.append", "session.commentary.append", "response.create"]) expect(allowed).not.toContain(forbidden);
    // A preset omitting the channel still gets the narrow one, never OpenAI's allow-all default.
    expect(liveSessionJson({ ...DEFAULT_PRESETS.live }).client?.data_channel.allowed_client_events).toEqual(allowed);
  });

  it("refusals in our words: an offer OpenAI rejects (its message, the key cut), a key it refuses", async () => {
    msw.use(http.post(`${sideband.base}/live/sessions`, () => HttpResponse.json(openAiError(`Invalid SDP offer (key ${KEY} was used)`, "invalid_request_error", "invalid_sdp", "transport.sdp"), { status: 400 })));
    const rejected = await problemOf(upstream().connect(OFFER, DEFAULT_PRESETS.live));
    expect([rejected.status, rejected.code]).toEqual([400, "upstream_rejected"]);
    expect(rejected.detail).toContain("Invalid SDP offer");
    expect(JSON.stringify(rejected)).not.toContain(KEY.slice(8, 30));
    msw.use(http.post(`${sideband.base}/live/sessions`, () => HttpResponse.json(openAiError("Incorrect API key provided: sk-live-***1a0", "invalid_request_error", "invalid_api_key"), { status: 401 })));
    const refused = await problemOf(upstream().connect(OFFER, DEFAULT_PRESETS.live));
    expect([refused.status, refused.code]).toEqual([502, "upstream_auth_failed"]);
    expect(JSON.stringify(refused)).not.toContain("1a0");
  });

  it("never sends a second POST that could open a second billed session; retries only what cannot have reached OpenAI", async () => {
    // A server that read the whole request and reset the connection may have started a session.
    let received = 0;
    const resetting = createServer((socket) => {
      let request = "";
      socket.on("data", (chunk) => {
        request += chunk;
        const head = request.indexOf("\r\n\r\n");
        const length = Number(/content-length: *(\d+)/i.exec(request)?.[1] ?? 0);
        if (head >= 0 && Buffer.byteLength(request) - head - 4 >= length) (received++, socket.resetAndDestroy());
      });
    });
    await new Promise<void>((resolve) => resetting.listen(0, "127.0.0.1", resolve));
    const resets = `http://127.0.0.1:${(resetting.address() as AddressInfo).port}/v1`;
    try {
      const reset = await problemOf(upstream({ baseUrl: resets }).connect(OFFER, DEFAULT_PRESETS.live));
      expect([reset.status, reset.code]).toEqual([503, "upstream_unavailable"]);
      expect(received).toBe(1);
    } finally {
      resetting.close();
    }
    // So may one that answered 5xx with x-should-retry: false.
    let posts = 0;
    msw.use(http.post(`${sideband.base}/live/sessions`, () => (posts++, HttpResponse.json(openAiError("oops", "server_error"), { status: 500, headers: { "x-should-retry": "false" } }))));
    expect((await problemOf(upstream().connect(OFFER, DEFAULT_PRESETS.live))).code).toBe("upstream_unavailable");
    expect(posts).toBe(1);
    // Refused before anything was sent (nothing listens): safe to try again.
    const closed = `http://127.0.0.1:${await freePort()}/v1`;
    posts = 0;
    msw.use(http.post(`${closed}/live/sessions`, () => (posts++, passthrough())));
    expect((await problemOf(upstream({ baseUrl: closed }).connect(OFFER, DEFAULT_PRESETS.live))).code).toBe("upstream_unavailable");
    expect(posts).toBe(3);
  });

  it("a slow OpenAI is cut off at the configured timeout, once", async () => {
    let posts = 0;
    msw.use(http.post(`${sideband.base}/live/sessions`, async () => (posts++, await new Promise((r) => setTimeout(r, 2000)), HttpResponse.json(created("live_slow")))));
    const started = Date.now();
    const slow = await problemOf(upstream({ connectTimeoutMs: 300, totalTimeoutMs: 600 }).connect(OFFER, DEFAULT_PRESETS.live));
    expect([slow.status, slow.code]).toEqual([504, "upstream_timeout"]);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(posts).toBe(1);
  });

  it("ends over the sideband: session.close with the key as bearer, then OpenAI's session.closed", async () => {
    const before = sideband.attached.length;
    await upstream().hangup("live_to_close", "live");
    expect(sideband.attached.slice(before)).toEqual([{ sessionId: "live_to_close", auth: `Bearer ${KEY}`, events: [{ type: "session.close" }] }]);
  });
});
