/**
 * Rules every route must keep, checked over the routes table itself, so a route added later
 * is covered without anyone remembering to: each authenticated route refuses missing,
 * malformed, foreign and forged tokens (changing nothing), and each strict body refuses a
 * field it does not know. A route without a sample request here fails the first test.
 */
import { describe, expect } from "vitest";
import { routes } from "../lib/routes/index.js";
import { apiClient, createRoom, drain, joinRoom, STORES, useHarness, type Api, type ApiResponse, type Peer } from "./support/harness.js";

interface Fixture {
  host: Peer;
  viewer: Peer;
}

type Sample = (f: Fixture) => { query?: string; body?: Record<string, unknown> };

const OFFER_SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendrecv\r\n";

/** A request each method of each route would accept from the right caller. */
const SAMPLES: Record<string, Sample> = {
  "POST /api/rooms": () => ({ body: { topology: "star" } }),
  "DELETE /api/rooms": (f) => ({ query: `roomId=${f.host.roomId}` }),
  "PATCH /api/rooms": (f) => ({ body: { roomId: f.host.roomId, locked: true } }),
  "POST /api/rooms/key": (f) => ({ body: { roomId: f.host.roomId } }),
  "POST /api/peers": (f) => ({ body: { roomId: f.host.roomId, name: "Ann" } }),
  "GET /api/peers": (f) => ({ query: `roomId=${f.host.roomId}` }),
  "DELETE /api/peers": (f) => ({ query: `roomId=${f.host.roomId}&peerId=${f.viewer.peerId}` }),
  "POST /api/admit": (f) => ({ body: { roomId: f.host.roomId, peerId: f.viewer.peerId, allow: true } }),
  "POST /api/offer": (f) => ({ body: { roomId: f.host.roomId, to: f.viewer.peerId, description: { type: "offer", sdp: "v=0\r\n" } } }),
  "GET /api/offer": (f) => ({ query: `roomId=${f.host.roomId}` }),
  "POST /api/answer": (f) => ({ body: { roomId: f.host.roomId, to: f.host.peerId, description: { type: "answer", sdp: "v=0\r\n" } } }),
  "GET /api/answer": (f) => ({ query: `roomId=${f.host.roomId}` }),
  "POST /api/candidate": (f) => ({ body: { roomId: f.host.roomId, to: f.host.peerId, candidates: [null] } }),
  "GET /api/candidate": (f) => ({ query: `roomId=${f.host.roomId}` }),
  "GET /api/poll": (f) => ({ query: `roomId=${f.host.roomId}` }),
  "GET /api/events": (f) => ({ query: `roomId=${f.host.roomId}` }),
  "POST /api/events/ticket": (f) => ({ body: { roomId: f.host.roomId } }),
  "POST /api/chat": (f) => ({ body: { roomId: f.host.roomId, text: "hello" } }),
  "GET /api/chat": (f) => ({ query: `roomId=${f.host.roomId}` }),
  "GET /api/ice-servers": (f) => ({ query: `roomId=${f.host.roomId}` }),
  "POST /api/session": (f) => ({ body: { roomId: f.host.roomId, sdp: OFFER_SDP } }),
  "DELETE /api/session": (f) => ({ query: `roomId=${f.host.roomId}&id=ses_${"a".repeat(20)}` }),
  "POST /api/session/peer": (f) => ({ body: { roomId: f.host.roomId } }),
  "POST /api/session/token": (f) => ({ body: { roomId: f.host.roomId } }),
  "GET /api/session/expire": () => ({}),
  "POST /api/session/expire": (f) => ({ body: { roomId: f.host.roomId, sessionId: `ses_${"a".repeat(20)}` } }),
  "GET /api/openapi.json": () => ({}),
  "GET /api/diagnostics": (f) => ({ query: `roomId=${f.host.roomId}` }),
};

/** Every method of every route in the table, with what it requires. */
const METHODS = Object.entries(routes).flatMap(([path, handler]) =>
  Object.entries(handler.spec).map(([method, spec]) => ({ key: `${method} ${path}`, method, path, auth: spec!.auth === "peer", strict: Boolean(spec!.body) })),
);

function expectProblem(res: ApiResponse, status: number, code: string, what: string) {
  expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBe(status);
  expect(res.body, what).toMatchObject({ status, code });
}

describe.each(STORES)("every route, from the routes table [%s]", (kind) => {
  let api: Api;
  // Simulated AI (no key): a session started by mistake would still answer.
  const test = useHarness(kind, (h) => (api = apiClient(h.url)), { OPENAI_MAX_SESSIONS_PER_ROOM: "5" });

  const fixture = async (): Promise<Fixture> => {
    const host = await createRoom(api);
    return { host, viewer: await joinRoom(api, host.roomId) };
  };
  const call = (key: string, f: Fixture, token?: string, extra: Record<string, unknown> = {}) => {
    const [method, path] = key.split(" ");
    const { query, body } = SAMPLES[key](f);
    return api.call(method, `${path}${query ? `?${query}` : ""}`, { token, body: body || Object.keys(extra).length ? { ...body, ...extra } : undefined });
  };

  test("has a sample request for each method of each route", () => {
    expect(METHODS.map((m) => m.key).filter((key) => !SAMPLES[key])).toEqual([]);
  });

  test("each authenticated route refuses missing, malformed, foreign and forged tokens, and changes nothing", async () => {
    const f = await fixture();
    const elsewhere = await createRoom(api);
    const authenticated = METHODS.filter((m) => m.auth);
    expect(authenticated.length).toBeGreaterThanOrEqual(17);
    for (const { key } of authenticated) {
      for (const [who, token, code] of [
        ["no token", undefined, "missing_token"],
        ["malformed", "not-a-token", "invalid_token"],
        ["another room's", elsewhere.token, "invalid_token"],
        ["forged host", `${f.host.peerId}.${"A".repeat(32)}`, "invalid_token"],
        ["forged viewer", `${f.viewer.peerId}.${"B".repeat(32)}`, "invalid_token"],
      ] as const) {
        expectProblem(await call(key, f, token), 401, code, `${key} with ${who} token`);
      }
    }
    // None of that changed anything: the same two peers, no mail but the join, no chat, no session.
    expect((await api.get(`/api/peers?roomId=${f.host.roomId}`, f.host.token)).body.peers).toHaveLength(2);
    expect((await drain(api, f.host)).messages.map((m) => m.type)).toEqual(["peer-joined"]);
    expect((await api.get(`/api/poll?roomId=${f.host.roomId}`, f.viewer.token)).status).toBe(204);
    expect((await api.get(`/api/chat?roomId=${f.host.roomId}`, f.host.token)).body.messages).toEqual([]);
  });

  test("each body refuses a field it does not know, naming it", async () => {
    const f = await fixture();
    for (const { key } of METHODS.filter((m) => m.strict)) {
      const res = await call(key, f, f.host.token, { surplus: 1 });
      expectProblem(res, 400, "invalid_request", key);
      expect(res.body.detail, key).toContain("surplus");
    }
  });
});
