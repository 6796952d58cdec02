/**
 * What OpenAI would receive, field by field, with msw standing in for OpenAI at the HTTP
 * boundary; and how its failures come back to our clients (retries, timeouts, error codes),
 * never carrying the key.
 */
import { createServer, type AddressInfo } from "node:net";
import { http, HttpResponse, delay, passthrough } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { DEFAULT_PRESETS, sessionJson } from "../lib/openai/presets.js";
import { redactSecrets } from "../lib/openai/attempts.js";
import { callIdOf, OpenAIUpstream } from "../lib/openai/upstream.js";
import { Problem } from "../lib/problem.js";
import { clientSecret, openAiError } from "./support/openai.js";
import { freePort } from "./support/redis-server.js";

// A loopback base: even a request msw failed to catch could not leave the machine.
const BASE = "http://127.0.0.1:9/v1";
const KEY = "sk-test-5f2c9a1be0d84c7f9e6a3b2d1c0f8e7a";
const OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n";
const ANSWER = "v=0\r\no=- 9 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 3478 UDP/TLS/RTP/SAVPF 111\r\na=setup:active\r\n";

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

const upstream = (overrides: Partial<ConstructorParameters<typeof OpenAIUpstream>[0]> = {}) =>
  new OpenAIUpstream({ apiKey: KEY, baseUrl: BASE, connectTimeoutMs: 2000, totalTimeoutMs: 4000, attempts: 3, backoffMs: 10, ...overrides });

const answered = () => new HttpResponse(ANSWER, { status: 201, headers: { "content-type": "application/sdp", location: "/v1/realtime/calls/rtc_abc123" } });

async function problemOf(promise: Promise<unknown>): Promise<Problem> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Problem) return error;
    throw error;
  }
  throw new Error("expected a problem");
}

describe("OpenAI Realtime upstream (msw)", () => {
  it("takes the call id from Location's path, whatever follows it", () => {
    for (const location of ["/v1/realtime/calls/rtc_abc123", "/v1/realtime/calls/rtc_abc123?region=eu", "https://api.openai.com/v1/realtime/calls/rtc_abc123/", "rtc_abc123#x"]) {
      expect(callIdOf(location), location).toBe("rtc_abc123");
    }
    expect(callIdOf(null)).toBeUndefined();
    expect(callIdOf("/")).toBeUndefined();
  });

  it("posts a realtime session as multipart sdp + session to /v1/realtime/calls with the server key", async () => {
    const seen: Request[] = [];
    server.use(http.post(`${BASE}/realtime/calls`, ({ request }) => (seen.push(request.clone()), answered())));
    const result = await upstream().connect(OFFER, DEFAULT_PRESETS.assistant);
    expect(result).toEqual({ answerSdp: ANSWER, callId: "rtc_abc123" });

    expect(seen).toHaveLength(1);
    const request = seen[0];
    const url = new URL(request.url);
    expect(request.method).toBe("POST");
    expect(url.pathname).toBe("/v1/realtime/calls");
    expect(url.search).toBe(""); // no ?model=
    expect(request.headers.get("authorization")).toBe(`Bearer ${KEY}`);
    expect(request.headers.get("openai-beta")).toBeNull();
    const boundary = /^multipart\/form-data; boundary=(.+)$/.exec(request.headers.get("content-type") ?? "")?.[1];
    expect(boundary).toBeTruthy();
    // Plain parts, as OpenAI's reference shows them: a name and a type each, no filename.
    const raw = await request.clone().text();
    const parts = raw.split(`--${boundary}`).slice(1, -1).map((part) => {
      const [head, ...body] = part.replace(/^\r\n/, "").replace(/\r\n$/, "").split("\r\n\r\n");
      return { headers: head.toLowerCase().split("\r\n"), body: body.join("\r\n\r\n") };
    });
    expect(parts.map((p) => p.headers)).toEqual([
      ['content-disposition: form-data; name="sdp"', "content-type: application/sdp"],
      ['content-disposition: form-data; name="session"', "content-type: application/json"],
    ]);
    expect(raw.endsWith(`--${boundary}--\r\n`)).toBe(true);
    const form = await request.formData();
    expect([...form.keys()].sort()).toEqual(["sdp", "session"]);
    expect(parts[0].body).toBe(OFFER);
    expect(form.get("sdp")).toBe(OFFER);
    expect(JSON.parse(parts[1].body)).toEqual({
      type: "realtime",
      model: "gpt-realtime-2.1",
      instructions: "You are a helpful, concise voice assistant.",
      audio: {
        input: { transcription: { model: "gpt-live-transcribe" }, turn_detection: { type: "semantic_vad" } },
        output: { voice: "marin" },
      },
    });
  });

  it("connects a transcription session with a minted transcription secret and the raw offer", async () => {
    const seen: { path: string; auth: string | null; type: string | null; body: string }[] = [];
    server.use(
      http.post(`${BASE}/realtime/client_secrets`, async ({ request }) => {
        seen.push({ path: "client_secrets", auth: request.headers.get("authorization"), type: request.headers.get("content-type"), body: await request.text() });
        return HttpResponse.json(clientSecret("ek_transcribe_1", 1_900_000_000, DEFAULT_PRESETS.transcribe));
      }),
      http.post(`${BASE}/realtime/calls`, async ({ request }) => {
        seen.push({ path: "calls", auth: request.headers.get("authorization"), type: request.headers.get("content-type"), body: await request.text() });
        return answered();
      }),
    );
    const result = await upstream().connect(OFFER, DEFAULT_PRESETS.transcribe);
    expect(result.callId).toBe("rtc_abc123");
    expect(seen.map((s) => s.path)).toEqual(["client_secrets", "calls"]);
    expect(seen[0].auth).toBe(`Bearer ${KEY}`);
    expect(seen[0].type).toBe("application/json");
    expect(JSON.parse(seen[0].body)).toEqual({
      expires_after: { anchor: "created_at", seconds: 60 },
      session: {
        type: "transcription",
        audio: { input: { transcription: { model: "gpt-live-transcribe" }, turn_detection: null, noise_reduction: { type: "near_field" } } },
      },
    });
    // The offer itself goes with the ephemeral key, never the server's.
    expect(seen[1]).toEqual({ path: "calls", auth: "Bearer ek_transcribe_1", type: "application/sdp", body: OFFER });
  });

  it("mints client secrets and hangs calls up as the reference describes", async () => {
    const seen: string[] = [];
    server.use(
      http.post(`${BASE}/realtime/client_secrets`, async ({ request }) => {
        seen.push(await request.text());
        return HttpResponse.json(clientSecret("ek_abc", 1_900_000_600, DEFAULT_PRESETS.assistant));
      }),
      http.post(`${BASE}/realtime/calls/:id/hangup`, ({ params, request }) => {
        seen.push(`hangup ${params.id} ${request.headers.get("authorization")} ${request.headers.get("content-length") ?? "0"}`);
        return new HttpResponse(null, { status: 200 });
      }),
    );
    expect(await upstream().mintSecret(DEFAULT_PRESETS.assistant, 600)).toEqual({ value: "ek_abc", expiresAt: 1_900_000_600_000 });
    expect(JSON.parse(seen[0])).toEqual({ expires_after: { anchor: "created_at", seconds: 600 }, session: sessionJson(DEFAULT_PRESETS.assistant) });
    await upstream().hangup("rtc_abc123", "realtime");
    expect(seen[1]).toBe(`hangup rtc_abc123 Bearer ${KEY} 0`);
  });

  it("retries 429 and 5xx with backoff, honouring retry-after-ms, then succeeds", async () => {
    const times: number[] = [];
    server.use(
      http.post(`${BASE}/realtime/calls`, () => {
        times.push(Date.now());
        if (times.length === 1) return HttpResponse.json(openAiError("Rate limit reached for requests", "requests", "rate_limit_exceeded"), { status: 429, headers: { "retry-after-ms": "300" } });
        if (times.length === 2) return HttpResponse.json(openAiError("The server had an error while processing your request.", "server_error"), { status: 502 });
        return answered();
      }),
    );
    expect((await upstream().connect(OFFER, DEFAULT_PRESETS.assistant)).callId).toBe("rtc_abc123");
    expect(times).toHaveLength(3);
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(290);
  });

  it("maps what OpenAI refuses to our problems and never retries a 4xx but 429", async () => {
    const cases: [number, Record<string, unknown>, number, string][] = [
      [401, openAiError(`Incorrect API key provided: ${KEY.slice(0, 8)}****${KEY.slice(-4)}`, "invalid_request_error", "invalid_api_key"), 502, "upstream_auth_failed"],
      [400, openAiError(`Invalid SDP offer (key ${KEY})`, "invalid_request_error", null, "sdp"), 400, "upstream_rejected"],
      [403, openAiError("Country, region, or territory not supported", "request_forbidden", "unsupported_country_region_territory"), 502, "upstream_forbidden"],
      [429, openAiError("You exceeded your current quota", "insufficient_quota", "insufficient_quota"), 503, "upstream_quota_exhausted"],
    ];
    for (const [status, body, ours, code] of cases) {
      let calls = 0;
      server.use(http.post(`${BASE}/realtime/calls`, () => (calls++, HttpResponse.json(body, { status }))));
      const problem = await problemOf(upstream().connect(OFFER, DEFAULT_PRESETS.assistant));
      expect([problem.status, problem.code], String(status)).toEqual([ours, code]);
      expect(calls, `${status} is not retried`).toBe(1);
      expect(JSON.stringify(problem)).not.toContain(KEY);
      expect(JSON.stringify(problem)).not.toContain(KEY.slice(0, 8));
    }
  });

  it("never passes on a gateway's key, whatever its format, when the gateway quotes it", async () => {
    const gatewayKey = "gw-live-0a9b8c7d6e5f4a3b2c1d";
    server.use(http.post(`${BASE}/realtime/calls`, () => HttpResponse.json(openAiError(`Bad offer for key ${gatewayKey} (gw-live-0a9b****2c1d)`, "invalid_request_error"), { status: 400 })));
    const problem = await problemOf(upstream({ apiKey: gatewayKey }).connect(OFFER, DEFAULT_PRESETS.assistant));
    expect([problem.status, problem.code]).toEqual([400, "upstream_rejected"]);
    expect(problem.detail).toContain("Bad offer for key");
    for (const part of [gatewayKey, gatewayKey.slice(0, 8), "2c1d"]) expect(JSON.stringify(problem)).not.toContain(part);
  });

  it("answers 503 once retries are spent, 504 on a timeout, 503 when OpenAI cannot be reached", async () => {
    let calls = 0;
    server.use(http.post(`${BASE}/realtime/calls`, () => (calls++, HttpResponse.json(openAiError("The engine is currently overloaded, please try again later", "server_error"), { status: 503 }))));
    const spent = await problemOf(upstream().connect(OFFER, DEFAULT_PRESETS.assistant));
    expect([spent.status, spent.code, calls]).toEqual([503, "upstream_unavailable", 3]);
    expect(spent.headers["retry-after"]).toBeDefined();

    server.use(http.post(`${BASE}/realtime/calls`, async () => (await delay(2000), answered())));
    const started = Date.now();
    const slow = await problemOf(upstream({ connectTimeoutMs: 300, totalTimeoutMs: 600 }).connect(OFFER, DEFAULT_PRESETS.assistant));
    expect([slow.status, slow.code]).toEqual([504, "upstream_timeout"]);
    expect(Date.now() - started).toBeLessThan(1500);

    server.use(http.post(`${BASE}/realtime/calls`, () => HttpResponse.error()));
    const down = await problemOf(upstream().connect(OFFER, DEFAULT_PRESETS.assistant));
    expect([down.status, down.code]).toEqual([503, "upstream_unavailable"]);
  });

  it("retries a call only when it cannot have started one, and hangs up a call a failure names", async () => {
    // A dropped connection may have reached OpenAI: no second call.
    let calls = 0;
    server.use(http.post(`${BASE}/realtime/calls`, () => (calls++, HttpResponse.error())));
    expect((await problemOf(upstream().connect(OFFER, DEFAULT_PRESETS.assistant))).code).toBe("upstream_unavailable");
    expect(calls).toBe(1);

    // A 5xx that carries a call id opened a call: hang it up, and do not open another.
    const hungUp: string[] = [];
    calls = 0;
    server.use(
      http.post(`${BASE}/realtime/calls`, () => (calls++, HttpResponse.json(openAiError("The server had an error while processing your request.", "server_error"), { status: 502, headers: { location: "/v1/realtime/calls/rtc_orphan" } }))),
      http.post(`${BASE}/realtime/calls/:id/hangup`, ({ params }) => (hungUp.push(String(params.id)), new HttpResponse(null, { status: 200 }))),
    );
    expect((await problemOf(upstream().connect(OFFER, DEFAULT_PRESETS.assistant))).code).toBe("upstream_unavailable");
    expect(calls).toBe(1);
    await vi.waitFor(() => expect(hungUp).toEqual(["rtc_orphan"]));

    // Refused before anything was sent: safe to try again (a loopback port nothing listens on).
    const closed = `http://127.0.0.1:${await freePort()}/v1`;
    calls = 0;
    server.use(http.post(`${closed}/realtime/calls`, () => (calls++, passthrough())));
    expect((await problemOf(upstream({ baseUrl: closed }).connect(OFFER, DEFAULT_PRESETS.assistant))).code).toBe("upstream_unavailable");
    expect(calls).toBe(3);

    // A server that read the whole offer and then reset the connection may have started a call:
    // a reset is not a refusal, so no second request (a real socket reset, not a mocked error).
    let received = 0;
    const resetting = createServer((socket) => {
      let request = "";
      socket.on("data", (chunk) => {
        request += chunk;
        const head = request.indexOf("\r\n\r\n");
        const length = Number(/content-length: *(\d+)/i.exec(request)?.[1] ?? 0);
        if (head >= 0 && Buffer.byteLength(request) - head - 4 >= length) {
          received++;
          socket.resetAndDestroy();
        }
      });
    });
    await new Promise<void>((resolve) => resetting.listen(0, "127.0.0.1", resolve));
    const resets = `http://127.0.0.1:${(resetting.address() as AddressInfo).port}/v1`;
    server.use(http.post(`${resets}/realtime/calls`, () => passthrough()));
    try {
      const reset = await problemOf(upstream({ baseUrl: resets }).connect(OFFER, DEFAULT_PRESETS.assistant));
      expect([reset.status, reset.code]).toEqual([503, "upstream_unavailable"]);
      expect(received, "requests that reached the resetting server").toBe(1);
    } finally {
      resetting.close();
    }

    // Minting a secret starts nothing billed: a dropped connection is retried.
    calls = 0;
    server.use(http.post(`${BASE}/realtime/client_secrets`, () => (++calls < 3 ? HttpResponse.error() : HttpResponse.json(clientSecret("ek_3", 1_900_000_000, DEFAULT_PRESETS.assistant)))));
    expect((await upstream().mintSecret(DEFAULT_PRESETS.assistant, 60)).value).toBe("ek_3");
    expect(calls).toBe(3);
  });

  it("follows OpenAI's retry hints: x-should-retry either way, 408/409/5xx retried, and its wait passed on as retry-after", async () => {
    const attempts = async (reply: () => Response, tries = 3) => {
      let calls = 0;
      server.use(http.post(`${BASE}/realtime/calls`, () => (calls++, reply())));
      const problem = await problemOf(upstream({ attempts: tries }).connect(OFFER, DEFAULT_PRESETS.assistant));
      return { calls, code: problem.code, retryAfter: problem.headers["retry-after"] };
    };
    const error = (status: number, headers: Record<string, string> = {}) => () => HttpResponse.json(openAiError("nope", "server_error"), { status, headers });
    expect(await attempts(error(503, { "x-should-retry": "false" }))).toMatchObject({ calls: 1, code: "upstream_unavailable" });
    expect(await attempts(error(400, { "x-should-retry": "true" }))).toMatchObject({ calls: 3, code: "upstream_rejected" });
    // Retried, and once spent, "unavailable" (a 429 that is not about quota included).
    for (const status of [408, 409, 429, 500]) expect(await attempts(error(status)), String(status)).toMatchObject({ calls: 3, code: "upstream_unavailable" });
    // The wait OpenAI asks for, rounded up to seconds; an absurd one is not believed (one attempt: no waiting here).
    expect((await attempts(error(503, { "retry-after-ms": "2500" }), 1)).retryAfter).toBe("3");
    expect((await attempts(error(503, { "retry-after": "7" }), 1)).retryAfter).toBe("7");
    expect((await attempts(error(503, { "retry-after": "60" }), 1)).retryAfter).toBe("60");
    const disbelieved: Record<string, string>[] = [{}, { "retry-after-ms": "60000" }, { "retry-after": "61" }, { "retry-after": "0" }, { "retry-after-ms": "-5" }];
    for (const headers of disbelieved) {
      expect(["1", "2"], JSON.stringify(headers)).toContain((await attempts(error(503, headers), 1)).retryAfter);
    }
  });

  it("maps every other answer to a problem that says what happened", async () => {
    const answer = async (reply: () => Response) => {
      server.use(http.post(`${BASE}/realtime/calls`, reply));
      const p = await problemOf(upstream({ attempts: 1 }).connect(OFFER, DEFAULT_PRESETS.assistant));
      return [p.status, p.code, p.title, p.detail];
    };
    for (const status of [404, 422]) {
      expect(await answer(() => HttpResponse.json(openAiError("Unknown model", "invalid_request_error", "model_not_found"), { status }))).toEqual([
        400, "upstream_rejected", "OpenAI rejected the session", "OpenAI rejected the offer or session: Unknown model",
      ]);
    }
    expect(await answer(() => new HttpResponse("teapot", { status: 418 }))).toEqual([502, "upstream_error", "Unexpected answer from OpenAI", "OpenAI answered 418"]);
    expect(await answer(() => new HttpResponse(ANSWER, { status: 201 }))).toEqual([502, "upstream_error", "Unexpected answer from OpenAI", "OpenAI's answer had no call id (Location header)"]);
    expect(await answer(() => HttpResponse.json(openAiError("Unauthorized", "invalid_request_error"), { status: 401 }))).toEqual([
      502, "upstream_auth_failed", "OpenAI refused the server's credentials", "OpenAI rejected this server's API key: the operator must fix OPENAI_API_KEY",
    ]);
    expect(await answer(() => new HttpResponse("<html>blocked</html>", { status: 403 }))).toEqual([502, "upstream_forbidden", "OpenAI refused the request", "OpenAI refused access: no details"]);
    expect(await answer(() => HttpResponse.json(openAiError("quota", "insufficient_quota", "insufficient_quota"), { status: 429 }))).toEqual([
      503, "upstream_quota_exhausted", "OpenAI quota exhausted", "The OpenAI account behind this server has no quota left",
    ]);
    expect(await answer(() => HttpResponse.json(openAiError("busy", "server_error"), { status: 503 }))).toEqual([503, "upstream_unavailable", "OpenAI unavailable", "OpenAI answered 503; try again shortly"]);
    server.use(http.post(`${BASE}/realtime/calls`, () => HttpResponse.json(openAiError("busy", "server_error"), { status: 503 })));
    expect((await problemOf(upstream({ attempts: 2 }).connect(OFFER, DEFAULT_PRESETS.assistant))).detail).toBe("OpenAI answered 503 on every attempt; try again shortly");
    server.use(http.post(`${BASE}/realtime/calls`, () => HttpResponse.error()));
    const down = await problemOf(upstream({ attempts: 1 }).connect(OFFER, DEFAULT_PRESETS.assistant));
    expect([down.title, down.detail, down.headers["retry-after"]]).toEqual(["OpenAI unreachable", "OpenAI could not be reached; try again shortly", "5"]);
    // A timed-out call is not tried again: it may be running.
    let calls = 0;
    server.use(http.post(`${BASE}/realtime/calls`, async () => (calls++, await delay(1000), answered())));
    const slow = await problemOf(upstream({ connectTimeoutMs: 200, totalTimeoutMs: 300 }).connect(OFFER, DEFAULT_PRESETS.assistant));
    expect([slow.title, slow.detail, calls]).toEqual(["OpenAI did not answer in time", "OpenAI did not answer in time; try again", 1]);
    // A client secret without its value.
    server.use(http.post(`${BASE}/realtime/client_secrets`, () => HttpResponse.json({ expires_at: 1_900_000_000 })));
    const noSecret = await problemOf(upstream().mintSecret(DEFAULT_PRESETS.assistant, 60));
    expect([noSecret.status, noSecret.code, noSecret.detail]).toEqual([502, "upstream_error", "OpenAI's answer had no client secret"]);
  });

  it("redacts the configured key, whatever its format, whole or masked", () => {
    const gateway = "gw-live-9f8e7d6c5b4a3928";
    expect(redactSecrets(`key ${gateway} refused`, [gateway])).toBe("key [redacted] refused");
    expect(redactSecrets(`key 'gw-live-9f8e****' or '***3928' refused; 3928 requests`, [gateway])).toBe("key '[redacted]' or '[redacted]' refused; 3928 requests");
    // Eight characters and more count as a secret; shorter ones would redact ordinary words.
    expect(redactSecrets("token abcdefgh here", ["abcdefgh"])).toBe("token [redacted] here");
    expect(redactSecrets("token abcdefg here", ["abcdefg"])).toBe("token abcdefg here");
    expect(redactSecrets("a plain message")).toBe("a plain message");
  });

  it("redacts key-shaped strings from anything it passes on", () => {
    expect(redactSecrets(`bad key ${KEY} and ek_abcdef123 and sk-proj-abc_DEF-123`)).toBe("bad key [redacted] and [redacted] and [redacted]");
  });
});
