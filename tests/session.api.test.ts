/**
 * The AI bridge through the HTTP API with OpenAI played by msw (and its GPT-Live sideband by a
 * WebSocket server on loopback): both ways of connecting (SDP proxy, the AI as a room peer) on
 * both APIs (Realtime, GPT-Live), ephemeral secrets, hang-up and every other way a call ends,
 * who may do what, the per-room cap, and that the server's key appears in no response and no
 * log line.
 */
import { createHash } from "node:crypto";
import { http, HttpResponse } from "msw";
import { setupServer } from "msw/node";
import type { LiveCreateParams, LiveCreateResponse } from "openai/resources/live/live";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_PRESETS } from "../lib/openai/presets.js";
import { apiClient, createRoom, drain, hasRedis, joinRoom, STORES, useHarness, type Api, type ApiResponse, type StoreKind } from "./support/harness.js";
import { startLiveSideband } from "./support/live-sideband.js";
import { clientSecret, openAiError } from "./support/openai.js";

// OpenAI's base: the sideband's server on loopback (msw answers HTTP to it), so nothing leaves the machine.
const sideband = await startLiveSideband();
const BASE = sideband.base;
const KEY = "sk-live-test-0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6";
const OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendrecv\r\n";
const ANSWER = "v=0\r\no=- 9 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 3478 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=setup:active\r\n";

const upstream = setupServer();
const calls: { path: string; auth: string | null; sdp?: string; session?: unknown }[] = [];
let callCount = 0;
let liveCount = 0;

/** OpenAI as msw plays it: answers every call, records what it got. */
function openAiAnswers() {
  upstream.use(
    http.post(`${BASE}/live/sessions`, async ({ request }) => {
      const { session, transport } = (await request.json()) as LiveCreateParams;
      calls.push({ path: "live", auth: request.headers.get("authorization"), sdp: transport.sdp, session });
      return HttpResponse.json({ session: { id: `live_${++liveCount}` }, transport: { type: "webrtc", sdp: ANSWER } } satisfies LiveCreateResponse);
    }),
    http.post(`${BASE}/realtime/calls`, async ({ request }) => {
      const auth = request.headers.get("authorization");
      if (request.headers.get("content-type") === "application/sdp") {
        calls.push({ path: "calls", auth, sdp: await request.text() });
      } else {
        const form = await request.formData();
        calls.push({ path: "calls", auth, sdp: form.get("sdp") as string, session: JSON.parse(form.get("session") as string) });
      }
      return new HttpResponse(ANSWER, { status: 201, headers: { "content-type": "application/sdp", location: `/v1/realtime/calls/rtc_${++callCount}` } });
    }),
    http.post(`${BASE}/realtime/calls/:id/hangup`, ({ params, request }) => {
      calls.push({ path: `hangup ${params.id}`, auth: request.headers.get("authorization") });
      return new HttpResponse(null, { status: 200 });
    }),
    http.post(`${BASE}/realtime/client_secrets`, ({ request }) => {
      calls.push({ path: "client_secrets", auth: request.headers.get("authorization") });
      return HttpResponse.json(clientSecret("ek_minted_123", 1_900_000_000, DEFAULT_PRESETS.assistant));
    }),
  );
}

/** Everything written to stdout/stderr while the suite runs (passed through as well). */
const logged: string[] = [];
const writers = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
beforeAll(() => {
  upstream.listen({ onUnhandledRequest: "bypass" });
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => (logged.push(String(chunk)), writers.out(chunk, ...(rest as [])))) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => (logged.push(String(chunk)), writers.err(chunk, ...(rest as [])))) as typeof process.stderr.write;
});
afterEach(() => {
  upstream.resetHandlers();
  calls.length = 0;
});
afterAll(async () => {
  process.stdout.write = writers.out;
  process.stderr.write = writers.err;
  upstream.close();
  await sideband.close();
});

/** The GPT-Live sessions closed over the sideband since `since` attaches, each with the bearer it came with. */
const liveClosed = (since: number) => sideband.attached.slice(since).filter((a) => a.events.some((e) => e.type === "session.close")).map((a) => `${a.sessionId} ${a.auth}`);

const ENV = {
  LOG_LEVEL: "info", // every request's log line is searched for the key too
  OPENAI_API_KEY: KEY,
  OPENAI_BASE_URL: BASE,
  OPENAI_MAX_SESSIONS_PER_ROOM: "1",
  OPENAI_ALLOWED_PRESETS: "assistant,transcribe,live",
  OPENAI_OFFER_TIMEOUT_MS: "3000",
  OPENAI_ATTEMPTS: "2",
};

/** Every response, checked for the key. */
function keyless(res: ApiResponse) {
  expect(JSON.stringify(res.body) + JSON.stringify([...res.headers])).not.toContain(KEY);
  return res;
}

/** Room mode as a host drives it: ask for the AI peer, offer to it once it joins, end candidates; the start's response. */
async function agentAnswering(api: Api, host: { roomId: string; token: string }, preset: string) {
  const adding = api.post("/api/session/peer", { roomId: host.roomId, preset }, host.token);
  let agentId = "";
  while (!agentId) agentId = (await api.get(`/api/peers?roomId=${host.roomId}`, host.token)).body.peers.find((p: any) => p.role === "agent")?.peerId ?? "";
  await api.post("/api/offer", { roomId: host.roomId, to: agentId, description: { type: "offer", sdp: OFFER } }, host.token);
  await api.post("/api/candidate", { roomId: host.roomId, to: agentId, candidates: [null] }, host.token);
  return keyless(await adding);
}

describe.each(STORES)("AI sessions over HTTP [%s]", (kind) => {
  let api: Api;
  let base = "";
  const test = useHarness(
    kind,
    (h) => {
      api = apiClient(h.url);
      base = h.url;
    },
    ENV,
  );

  test("SDP proxy, JSON in and out: the host's offer reaches OpenAI with the server key; the answer comes back", async () => {
    openAiAnswers();
    const host = await createRoom(api);
    const res = keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER, preset: "assistant" }, host.token));
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ sessionId: expect.stringMatching(/^ses_/), sdp: ANSWER, preset: "assistant", upstream: "openai" });
    expect(res.headers.get("location")).toBe(`/api/session?roomId=${host.roomId}&id=${res.body.sessionId}`);
    expect(calls).toEqual([{ path: "calls", auth: `Bearer ${KEY}`, sdp: OFFER, session: expect.objectContaining({ type: "realtime", model: "gpt-realtime-2.1" }) }]);

    // Hanging up ends the call upstream, once.
    expect((await api.del(`/api/session?roomId=${host.roomId}&id=${res.body.sessionId}`, host.token)).status).toBe(204);
    expect(calls.at(-1)).toEqual({ path: "hangup rtc_" + callCount, auth: `Bearer ${KEY}` });
    expect(keyless(await api.del(`/api/session?roomId=${host.roomId}&id=${res.body.sessionId}`, host.token)).body.code).toBe("session_not_found");
  });

  test("closing the room, or the host leaving it, hangs up each of its AI calls", async () => {
    openAiAnswers();
    const start = async (host: { roomId: string; token: string }) =>
      keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER }, host.token)).status;
    const closing = await createRoom(api);
    expect(await start(closing)).toBe(201);
    expect((await api.del(`/api/rooms?roomId=${closing.roomId}`, closing.token)).status).toBe(204);
    expect(calls.filter((c) => c.path.startsWith("hangup"))).toEqual([{ path: `hangup rtc_${callCount}`, auth: `Bearer ${KEY}` }]);

    calls.length = 0;
    const leaving = await createRoom(api);
    expect(await start(leaving)).toBe(201);
    expect((await api.del(`/api/peers?roomId=${leaving.roomId}&peerId=${leaving.peerId}`, leaving.token)).status).toBe(204);
    expect(calls.filter((c) => c.path.startsWith("hangup"))).toEqual([{ path: `hangup rtc_${callCount}`, auth: `Bearer ${KEY}` }]);
    // A viewer leaving hangs up nothing.
    calls.length = 0;
    const staying = await createRoom(api);
    expect(await start(staying)).toBe(201);
    const viewer = await joinRoom(api, staying.roomId);
    expect((await api.del(`/api/peers?roomId=${staying.roomId}&peerId=${viewer.peerId}`, viewer.token)).status).toBe(204);
    expect(calls.filter((c) => c.path.startsWith("hangup"))).toEqual([]);
  });

  test("SDP proxy, raw SDP in and out, as OpenAI's own endpoint answers", async () => {
    openAiAnswers();
    const host = await createRoom(api);
    const res = await fetch(`${base}/api/session?roomId=${host.roomId}&preset=assistant`, {
      method: "POST",
      headers: { authorization: `Bearer ${host.token}`, "content-type": "application/sdp" },
      body: OFFER,
    });
    expect(res.status).toBe(201);
    expect(res.headers.get("content-type")).toBe("application/sdp");
    expect(await res.text()).toBe(ANSWER);
    const sessionId = res.headers.get("x-session-id");
    expect(sessionId).toMatch(/^ses_/);
    expect(res.headers.get("location")).toBe(`/api/session?roomId=${host.roomId}&id=${sessionId}`);
    expect(calls).toEqual([expect.objectContaining({ path: "calls", auth: `Bearer ${KEY}`, sdp: OFFER })]);
  });

  test("only the host, with an allowed preset, within the room's cap", async () => {
    openAiAnswers();
    const host = await createRoom(api);
    const viewer = await joinRoom(api, host.roomId);
    expect(keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER })).status).toBe(401);
    const byViewer = keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER }, viewer.token));
    expect([byViewer.status, byViewer.body.code]).toEqual([403, "forbidden"]);
    const unknown = keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER, preset: "nope" }, host.token));
    expect([unknown.status, unknown.body.code]).toEqual([400, "unknown_preset"]);
    const freeForm = keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER, session: { model: "x" } }, host.token));
    expect([freeForm.status, freeForm.body.code]).toEqual([400, "invalid_request"]);
    expect(calls).toEqual([]); // none of that reached OpenAI

    const first = keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER }, host.token));
    expect(first.status).toBe(201);
    // The default preset transcribes: a transcription secret is minted, the raw offer posted with it.
    expect(first.body.preset).toBe("transcribe");
    expect(calls).toEqual([
      { path: "client_secrets", auth: `Bearer ${KEY}` },
      { path: "calls", auth: "Bearer ek_minted_123", sdp: OFFER },
    ]);
    const second = keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER }, host.token));
    expect([second.status, second.body.code]).toEqual([429, "too_many_sessions"]);
    await api.del(`/api/session?roomId=${host.roomId}&id=${first.body.sessionId}`, host.token);
    expect(keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER }, host.token)).status).toBe(201);
  });

  test("an upstream failure frees the room's place and says what went wrong, without the key", async () => {
    upstream.use(http.post(`${BASE}/realtime/calls`, () => HttpResponse.json(openAiError(`Incorrect API key provided: ${KEY}`, "invalid_request_error", "invalid_api_key"), { status: 401 })));
    const host = await createRoom(api);
    const failed = keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER, preset: "assistant" }, host.token));
    expect([failed.status, failed.body.code]).toEqual([502, "upstream_auth_failed"]);
    openAiAnswers();
    expect(keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER, preset: "assistant" }, host.token)).status).toBe(201);
  });

  test("mints an ephemeral secret for the host", async () => {
    openAiAnswers();
    const host = await createRoom(api);
    const viewer = await joinRoom(api, host.roomId);
    const minted = keyless(await api.post("/api/session/token", { roomId: host.roomId, preset: "assistant" }, host.token));
    expect(minted.status).toBe(201);
    // Clients are sent to OpenAI itself, never to the server's OPENAI_BASE_URL (a gateway, maybe internal).
    expect(minted.body).toEqual({ value: "ek_minted_123", expiresAt: 1_900_000_000_000, preset: "assistant", upstream: "openai", callsUrl: "https://api.openai.com/v1/realtime/calls" });
    expect(JSON.stringify(minted.body)).not.toContain(BASE);
    expect(keyless(await api.post("/api/session/token", { roomId: host.roomId }, viewer.token)).status).toBe(403);
    expect(calls.map((c) => c.path)).toEqual(["client_secrets"]);
    // A secret takes one of the room's places (here 1) while it can be redeemed: minting cannot outrun the cap.
    const second = keyless(await api.post("/api/session/token", { roomId: host.roomId }, host.token));
    expect([second.status, second.body.code]).toEqual([429, "too_many_sessions"]);
    const call = keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER }, host.token));
    expect([call.status, call.body.code]).toEqual([429, "too_many_sessions"]);
    expect(calls.map((c) => c.path)).toEqual(["client_secrets"]);
  });

  test("room mode: the AI joins as a peer (the host's own: past key, lobby and lock), takes the host's offer and trickled candidates, and answers through the room", async () => {
    openAiAnswers();
    const host = await createRoom(api, { access: "key", lobby: true });
    expect((await api.call("PATCH", "/api/rooms", { token: host.token, body: { roomId: host.roomId, locked: true } })).status).toBe(204);
    const adding = api.post("/api/session/peer", { roomId: host.roomId, preset: "assistant" }, host.token);
    // The host sees the AI join like any peer, and offers to it, trickling candidates after.
    let agentId = "";
    let cursor: string | undefined;
    while (!agentId) {
      const mail = await api.get(`/api/poll?roomId=${host.roomId}&wait=5${cursor ? `&after=${cursor}` : ""}`, host.token);
      if (mail.status !== 200) continue;
      cursor = mail.body.cursor;
      agentId = mail.body.messages.find((m: any) => m.type === "peer-joined" && m.peer.role === "agent")?.peer.peerId ?? "";
    }
    await api.post("/api/offer", { roomId: host.roomId, to: agentId, description: { type: "offer", sdp: OFFER } }, host.token);
    const candidate = "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host";
    await api.post("/api/candidate", { roomId: host.roomId, to: agentId, candidates: [{ candidate, sdpMid: "0", sdpMLineIndex: 0 }, null] }, host.token);

    const added = keyless(await adding);
    expect(added.status).toBe(201);
    expect(added.body).toEqual({ sessionId: expect.stringMatching(/^ses_/), peerId: agentId, preset: "assistant", upstream: "openai" });
    // OpenAI got one complete offer: the trickled candidate and end-of-candidates written into it.
    expect(calls).toHaveLength(1);
    expect(calls[0].sdp).toBe(`${OFFER}a=${candidate}\r\na=end-of-candidates\r\n`);
    // And the host got OpenAI's answer from the AI peer, through its mail.
    const { messages } = await drain(api, host, cursor);
    expect(messages).toEqual([expect.objectContaining({ type: "answer", from: agentId, description: { type: "answer", sdp: ANSWER } })]);
    const peers = await api.get(`/api/peers?roomId=${host.roomId}`, host.token);
    expect(peers.body.peers.map((p: any) => p.role)).toEqual(["host", "agent"]);

    // Hanging up removes the AI peer too.
    expect((await api.del(`/api/session?roomId=${host.roomId}&id=${added.body.sessionId}`, host.token)).status).toBe(204);
    expect((await api.get(`/api/peers?roomId=${host.roomId}`, host.token)).body.peers.map((p: any) => p.role)).toEqual(["host"]);
  });

  test("room mode times out with a clear error when the host never offers, and leaves no AI peer behind", async () => {
    openAiAnswers();
    const host = await createRoom(api);
    const res = keyless(await api.post("/api/session/peer", { roomId: host.roomId }, host.token));
    expect([res.status, res.body.code, res.body.title]).toEqual([504, "offer_timeout", "No offer received from host"]);
    expect((await api.get(`/api/peers?roomId=${host.roomId}`, host.token)).body.peers).toHaveLength(1);
    expect(calls).toEqual([]);
  });
});

// GPT-Live's ends run in the request that causes them: on Vercel (VERCEL=1, no timers) as self-hosted.
const LIVE_SETUPS: [StoreKind, string, Record<string, string>][] = [...STORES.map((kind): [StoreKind, string, Record<string, string>] => [kind, "self-hosted", {}]), ["redis", "on Vercel", { VERCEL: "1", CRON_SECRET: "cron-secret-for-the-tests" }]];
describe.each(LIVE_SETUPS)("GPT-Live sessions over HTTP [%s, %s]", (kind, _where, deployment) => {
  let api: Api;
  let base = "";
  const test = useHarness(
    kind,
    (h) => {
      api = apiClient(h.url);
      base = h.url;
    },
    { ...ENV, ...deployment },
  );

  test("GPT-Live: a live preset's offer goes to /v1/live/sessions with the server key and the preset's narrow data channel; JSON or raw SDP back; DELETE closes it over the sideband", async () => {
    openAiAnswers();
    const host = await createRoom(api);
    const since = sideband.attached.length;
    const res = keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER, preset: "live" }, host.token));
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ sessionId: expect.stringMatching(/^ses_/), sdp: ANSWER, preset: "live", upstream: "openai" });
    expect(calls).toEqual([{ path: "live", auth: `Bearer ${KEY}`, sdp: OFFER, session: expect.objectContaining({ model: "gpt-live-1.1", client: { data_channel: expect.objectContaining({ allowed_client_events: ["session.input_audio.mute", "session.input_audio.unmute", "session.close"] }) } }) }]);
    expect((await api.del(`/api/session?roomId=${host.roomId}&id=${res.body.sessionId}`, host.token)).status).toBe(204);
    expect(liveClosed(since)).toEqual([`live_${liveCount} Bearer ${KEY}`]);
    expect(calls.filter((c) => c.path.startsWith("hangup")), "no Realtime hangup for a Live session").toEqual([]);

    const raw = await fetch(`${base}/api/session?roomId=${host.roomId}&preset=live`, {
      method: "POST",
      headers: { authorization: `Bearer ${host.token}`, "content-type": "application/sdp" },
      body: OFFER,
    });
    expect([raw.status, raw.headers.get("content-type"), await raw.text()]).toEqual([201, "application/sdp", ANSWER]);
    expect(calls.at(-1)).toEqual(expect.objectContaining({ path: "live", auth: `Bearer ${KEY}`, sdp: OFFER }));
    await api.del(`/api/session?roomId=${host.roomId}&id=${raw.headers.get("x-session-id")}`, host.token);
  });

  test("GPT-Live: no client secret to mint; a room closing, or its host leaving, closes each Live session over the sideband", async () => {
    openAiAnswers();
    const host = await createRoom(api);
    const minted = keyless(await api.post("/api/session/token", { roomId: host.roomId, preset: "live" }, host.token));
    expect([minted.status, minted.body.code]).toEqual([400, "no_client_secret"]);
    expect(calls).toEqual([]);

    let since = sideband.attached.length;
    expect(keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER, preset: "live" }, host.token)).status).toBe(201);
    expect((await api.del(`/api/rooms?roomId=${host.roomId}`, host.token)).status).toBe(204);
    expect(liveClosed(since)).toEqual([`live_${liveCount} Bearer ${KEY}`]);

    since = sideband.attached.length;
    const leaving = await createRoom(api);
    expect(keyless(await api.post("/api/session", { roomId: leaving.roomId, sdp: OFFER, preset: "live" }, leaving.token)).status).toBe(201);
    expect((await api.del(`/api/peers?roomId=${leaving.roomId}&peerId=${leaving.peerId}`, leaving.token)).status).toBe(204);
    expect(liveClosed(since)).toEqual([`live_${liveCount} Bearer ${KEY}`]);
  });

  test("GPT-Live room mode: the AI peer's complete offer goes to /v1/live/sessions, its answer through the room; hanging up closes it over the sideband", async () => {
    openAiAnswers();
    const host = await createRoom(api);
    const added = await agentAnswering(api, host, "live");
    expect(added.status).toBe(201);
    expect(added.body).toEqual(expect.objectContaining({ preset: "live", upstream: "openai" }));
    expect(calls).toEqual([expect.objectContaining({ path: "live", sdp: `${OFFER}a=end-of-candidates\r\n` })]);
    expect((await drain(api, host)).messages.filter((m: any) => m.type === "answer")).toEqual([expect.objectContaining({ from: added.body.peerId, description: { type: "answer", sdp: ANSWER } })]);
    const since = sideband.attached.length;
    expect((await api.del(`/api/session?roomId=${host.roomId}&id=${added.body.sessionId}`, host.token)).status).toBe(204);
    expect(liveClosed(since)).toEqual([`live_${liveCount} Bearer ${KEY}`]);
    expect((await api.get(`/api/peers?roomId=${host.roomId}`, host.token)).body.peers.map((p: any) => p.role)).toEqual(["host"]);
  });
});

describe.each(STORES)("AI call deadline [%s]", (kind) => {
  let api: Api;
  const test = useHarness(kind, (h) => (api = apiClient(h.url)), { ...ENV, OPENAI_MAX_SESSION_SECONDS: "1" });

  test("a call is hung up at OPENAI_MAX_SESSION_SECONDS, its AI peer leaves, and its place frees", async () => {
    openAiAnswers();
    const host = await createRoom(api);
    const started = keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER, preset: "assistant" }, host.token));
    expect(started.status).toBe(201);
    const callId = `rtc_${callCount}`;
    const t = Date.now();
    while (!calls.some((c) => c.path === `hangup ${callId}`)) {
      expect(Date.now() - t, "hung up by its deadline").toBeLessThan(5000);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(Date.now() - t).toBeGreaterThanOrEqual(700);
    expect(keyless(await api.del(`/api/session?roomId=${host.roomId}&id=${started.body.sessionId}`, host.token)).body.code).toBe("session_not_found");
    const again = keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER, preset: "assistant" }, host.token));
    expect(again.status).toBe(201);
    await api.del(`/api/session?roomId=${host.roomId}&id=${again.body.sessionId}`, host.token);
  });

  test("a GPT-Live session is closed over the sideband at OPENAI_MAX_SESSION_SECONDS", async () => {
    openAiAnswers();
    const host = await createRoom(api);
    const since = sideband.attached.length;
    const started = keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER, preset: "live" }, host.token));
    expect(started.status).toBe(201);
    const t = Date.now();
    while (!liveClosed(since).length) {
      expect(Date.now() - t, "closed by its deadline").toBeLessThan(5000);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(Date.now() - t).toBeGreaterThanOrEqual(700);
    expect(liveClosed(since)).toEqual([`live_${liveCount} Bearer ${KEY}`]);
    expect(keyless(await api.del(`/api/session?roomId=${host.roomId}&id=${started.body.sessionId}`, host.token)).body.code).toBe("session_not_found");
  });
});

// On every Redis setup: the deadline must enter the index the sweep reads, wherever the room's keys live.
describe.each(["redis", "redis-tcp", "redis-cluster"] satisfies StoreKind[])("AI call deadline on Vercel, through Cron [%s]", (kind) => {
  let api: Api;
  const CRON_SECRET = "cron-secret-for-the-tests";
  // VERCEL=1: no timers (functions end with their response); Cron calls the sweep instead.
  const test = useHarness(kind, (h) => (api = apiClient(h.url)), { ...ENV, OPENAI_MAX_SESSION_SECONDS: "1", VERCEL: "1", CRON_SECRET });

  test("GET /api/session/expire, with CRON_SECRET, hangs up every call past its deadline and removes its AI peer", async () => {
    openAiAnswers();
    const host = await createRoom(api);
    expect((await agentAnswering(api, host, "assistant")).status).toBe(201);
    const ours = `hangup rtc_${callCount}`;
    const sweep = (token?: string) => api.get("/api/session/expire", token);
    expect((await sweep()).status).toBe(401);
    expect((await sweep("not-the-cron-secret")).status).toBe(403);
    expect((await sweep(CRON_SECRET)).status).toBe(200); // ours is not due yet
    expect(calls.some((c) => c.path === ours)).toBe(false);
    await new Promise((r) => setTimeout(r, 1300));
    expect(calls.some((c) => c.path === ours)).toBe(false); // no timer did it
    // (Other suites' calls may be due in this Redis too.)
    expect((await sweep(CRON_SECRET)).body.ended).toBeGreaterThanOrEqual(1);
    expect(calls.filter((c) => c.path === ours)).toEqual([{ path: ours, auth: `Bearer ${KEY}` }]);
    expect((await api.get(`/api/peers?roomId=${host.roomId}`, host.token)).body.peers.map((p: any) => p.role)).toEqual(["host"]);
    expect((await sweep(CRON_SECRET)).body).toEqual({ ended: 0 });
  });
});

describe.skipIf(!hasRedis())("AI call deadline on Vercel, through QStash [redis]", () => {
  let api: Api;
  let base = "";
  // QStash's stand-in at its HTTP edge (msw): it takes the delayed message; the test delivers it, signed, as QStash would.
  const QSTASH = "http://127.0.0.1:9/qstash";
  const SIGNING = { QSTASH_CURRENT_SIGNING_KEY: "sig_current_0123456789abcdef", QSTASH_NEXT_SIGNING_KEY: "sig_next_0123456789abcdefgh" };
  const published: { url: string; delay: string | null; auth: string | null; body: string }[] = [];
  const test = useHarness("redis", (h) => ((api = apiClient(h.url)), (base = h.url)), {
    ...ENV, OPENAI_MAX_SESSION_SECONDS: "1", VERCEL: "1", QSTASH_TOKEN: "qstash-token-for-the-tests", QSTASH_URL: QSTASH, ...SIGNING,
  });

  /** A message as QStash signs it (its reference: HS256, the destination as `sub`, the body's SHA-256 as `body`). */
  async function signed(url: string, body: string, key = SIGNING.QSTASH_CURRENT_SIGNING_KEY) {
    const { SignJWT } = await import("jose");
    const digest = createHash("sha256").update(body).digest("base64url");
    return new SignJWT({ body: digest }).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuer("Upstash").setSubject(url)
      .setIssuedAt().setNotBefore("0s").setExpirationTime("5m").setJti(`msg_${Math.random()}`).sign(new TextEncoder().encode(key));
  }

  test("each call's start sends QStash a message for its deadline; delivered, signed, it hangs the call up (no timer, no cron)", async () => {
    openAiAnswers();
    upstream.use(
      http.post(`${QSTASH}/v2/publish/*`, async ({ request }) => {
        published.push({ url: decodeURIComponent(new URL(request.url).pathname.slice("/qstash/v2/publish/".length)), delay: request.headers.get("upstash-delay"), auth: request.headers.get("authorization"), body: await request.text() });
        return HttpResponse.json({ messageId: `msg_${published.length}` });
      }),
    );
    const host = await createRoom(api);
    const started = keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER, preset: "assistant" }, host.token));
    expect(started.status).toBe(201);
    const ours = `hangup rtc_${callCount}`;
    const expire = `${base}/api/session/expire`;
    expect(published).toEqual([{ url: expire, delay: "1s", auth: "Bearer qstash-token-for-the-tests", body: JSON.stringify({ roomId: host.roomId, sessionId: started.body.sessionId }) }]);
    await new Promise((r) => setTimeout(r, 1300));
    expect(calls.some((c) => c.path === ours), "no timer hung it up").toBe(false);
    // QStash delivers at the deadline. Only its signature, over this body and this URL, counts.
    const { body } = published[0];
    const deliver = (signature?: string, sent = body) =>
      api.call("POST", "/api/session/expire", { raw: sent, headers: { "content-type": "application/json", ...(signature ? { "upstash-signature": signature } : {}) } });
    expect((await deliver()).body.code).toBe("invalid_signature");
    expect((await deliver(await signed(expire, body, "not-the-signing-key-at-all"))).status).toBe(401);
    expect((await deliver(await signed("https://elsewhere.example/api/session/expire", body))).status).toBe(401);
    expect((await deliver(await signed(expire, body), body.replace("}", ' }'))).status).toBe(401);
    expect(calls.some((c) => c.path === ours)).toBe(false);
    const delivered = await deliver(await signed(expire, body));
    expect([delivered.status, delivered.body.ended]).toEqual([200, expect.any(Number)]);
    expect(calls.filter((c) => c.path === ours)).toEqual([{ path: ours, auth: `Bearer ${KEY}` }]);
    // A key rotated in (QStash signs with the next key for a while): still QStash's.
    expect((await deliver(await signed(expire, body, SIGNING.QSTASH_NEXT_SIGNING_KEY))).body).toEqual({ ended: 0 });
  });

  test("a GPT-Live session's delivered deadline closes it over the sideband, in the function that takes the message", async () => {
    published.length = 0;
    openAiAnswers();
    upstream.use(http.post(`${QSTASH}/v2/publish/*`, async ({ request }) => (published.push({ url: "", delay: request.headers.get("upstash-delay"), auth: null, body: await request.text() }), HttpResponse.json({ messageId: "msg_live" }))));
    const host = await createRoom(api);
    const started = keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER, preset: "live" }, host.token));
    expect(started.status).toBe(201);
    const since = sideband.attached.length;
    await new Promise((r) => setTimeout(r, 1300));
    expect(liveClosed(since), "no timer closed it").toEqual([]);
    const [{ body, delay }] = published;
    expect(delay).toBe("1s");
    const delivered = await api.call("POST", "/api/session/expire", { raw: body, headers: { "content-type": "application/json", "upstash-signature": await signed(`${base}/api/session/expire`, body) } });
    expect(delivered.status).toBe(200);
    expect(liveClosed(since)).toEqual([`live_${liveCount} Bearer ${KEY}`]);
  });

  test("a call whose deadline cannot be scheduled is hung up at once, and the start fails", async () => {
    openAiAnswers();
    upstream.use(http.post(`${QSTASH}/v2/publish/*`, () => HttpResponse.json({ error: "quota" }, { status: 500 })));
    const host = await createRoom(api);
    const failed = keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER, preset: "assistant" }, host.token));
    expect([failed.status, failed.body.code]).toEqual([503, "scheduler_unavailable"]);
    expect(calls.map((c) => c.path)).toEqual(["calls", `hangup rtc_${callCount}`]);
    // Its place in the room (one here) is free again.
    upstream.use(http.post(`${QSTASH}/v2/publish/*`, () => HttpResponse.json({ messageId: "msg_ok" })));
    expect(keyless(await api.post("/api/session", { roomId: host.roomId, sdp: OFFER, preset: "assistant" }, host.token)).status).toBe(201);
  });
});

// Last in the file: what every test above made the server log.
it("logged the key in no line, in any test above", () => {
  expect(logged.length).toBeGreaterThan(100);
  expect(logged.join("")).not.toContain(KEY);
  expect(logged.join("")).not.toContain(KEY.slice(8, 24));
});
