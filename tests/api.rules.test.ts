/**
 * Who may do what, and what bad input gets: forbidden actions, malformed requests (always a
 * 4xx problem document, never a 500, nothing changed), CORS and rate limits — on both stores.
 * (Every route × missing, malformed, foreign and forged tokens: tests/routes.construction.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { hashToken } from "../lib/ids.js";
import type { RateLimits } from "../lib/ratelimit.js";
import { apiClient, clearOfWindowEdge, useHarness, createRoom, drain, freshAddress, hasRedis, joinRoom, signalboxKeys, startHarness, STORES, waitingReadBegins, type Api, type ApiResponse, type Harness } from "./support/harness.js";

const offer = { type: "offer", sdp: "v=0\r\n" };

/** Every rate limit: the limiter's, and chat's two (charged inside the chat's own step). */
type Limit = keyof RateLimits | "chat" | "roomChat";

/** The variable setting each rate limit: typed by the limits themselves, so none is left untested. */
const LIMIT_VARIABLES: Record<Limit, string> = {
  rooms: "RATE_LIMIT_ROOMS_PER_HOUR",
  joins: "RATE_LIMIT_JOINS_PER_HOUR",
  calls: "RATE_LIMIT_CALLS_PER_HOUR",
  sessions: "RATE_LIMIT_SESSIONS_PER_HOUR",
  probes: "RATE_LIMIT_PROBES_PER_HOUR",
  chat: "RATE_LIMIT_CHAT_PER_MINUTE",
  roomChat: "RATE_LIMIT_ROOM_CHAT_PER_MINUTE",
};
const answer = { type: "answer", sdp: "v=0\r\n" };

function expectProblem(res: ApiResponse, status: number, code: string) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ type: `urn:signalbox:problem:${code}`, status, code, title: expect.any(String), detail: expect.any(String) });
}

describe.each(STORES)("rules over HTTP [%s]", (kind) => {
  let h: Harness;
  let api: Api;
  const test = useHarness(kind, (started) => {
    h = started;
    api = apiClient(h.url);
  });

  test("valid tokens may not act beyond their role", async () => {
    const host = await createRoom(api);
    const a = await joinRoom(api, host.roomId);
    const b = await joinRoom(api, host.roomId);
    expectProblem(await api.del(`/api/rooms?roomId=${host.roomId}`, a.token), 403, "forbidden");
    expectProblem(await api.del(`/api/peers?roomId=${host.roomId}&peerId=${b.peerId}`, a.token), 403, "forbidden");
    expectProblem(await api.post("/api/offer", { roomId: host.roomId, to: b.peerId, description: offer }, a.token), 403, "forbidden");
    expectProblem(await api.post("/api/offer", { roomId: host.roomId, to: "zzzzzzzzzz", description: offer }, host.token), 404, "peer_not_found");
    // A peer reads only its own mail.
    await api.post("/api/offer", { roomId: host.roomId, to: a.peerId, description: offer }, host.token);
    expect((await api.get(`/api/poll?roomId=${host.roomId}`, b.token)).status).toBe(204);
    expect((await api.get(`/api/offer?roomId=${host.roomId}`, b.token)).status).toBe(204);
    expect((await api.get(`/api/offer?roomId=${host.roomId}`, a.token)).status).toBe(200);
    expect((await api.get(`/api/peers?roomId=${host.roomId}`, host.token)).body.peers).toHaveLength(3);
  });

  test("leaving, removal and closing take effect at once", async () => {
    const host = await createRoom(api);
    const a = await joinRoom(api, host.roomId);
    const b = await joinRoom(api, host.roomId);
    await drain(api, host);
    expect((await api.del(`/api/peers?roomId=${host.roomId}&peerId=${a.peerId}`, a.token)).status).toBe(204);
    expectProblem(await api.get(`/api/poll?roomId=${host.roomId}`, a.token), 401, "invalid_token");
    // A waiting read of a removed peer ends at once rather than at its deadline.
    const bWaits = await waitingReadBegins(h, b);
    const waiting = api.get(`/api/poll?roomId=${host.roomId}&wait=20`, b.token);
    await bWaits();
    const started = performance.now();
    expect((await api.del(`/api/peers?roomId=${host.roomId}&peerId=${b.peerId}`, host.token)).status).toBe(204);
    expectProblem(await waiting, 401, "invalid_token");
    expect(performance.now() - started).toBeLessThan(2000);
    const left = await drain(api, host);
    expect(left.messages.map((m) => [m.type, m.peerId, m.reason])).toEqual([
      ["peer-left", a.peerId, "left"],
      ["peer-left", b.peerId, "removed"],
    ]);

    const c = await joinRoom(api, host.roomId);
    const cWaits = await waitingReadBegins(h, c);
    const closing = api.get(`/api/poll?roomId=${host.roomId}&wait=20`, c.token);
    await cWaits();
    expect((await api.del(`/api/rooms?roomId=${host.roomId}`, host.token)).status).toBe(204);
    const closed = await closing;
    expect(closed.status).toBe(200);
    expect(closed.body.messages).toEqual([expect.objectContaining({ type: "room-closed", from: host.peerId })]);
    // Its peers still read that it closed (a poller between polls, a stream reconnecting), but a
    // token not of the room cannot tell a closed room from a wrong token (only budgeted lookups say "not found").
    const later = await api.get(`/api/poll?roomId=${host.roomId}`, c.token);
    expect([later.status, later.body.messages]).toEqual([200, [expect.objectContaining({ id: "0-0", type: "room-closed", from: host.peerId })]]);
    expectProblem(await api.get(`/api/poll?roomId=${host.roomId}`, `${c.peerId}.${"x".repeat(32)}`), 401, "invalid_token");
    expectProblem(await api.get(`/api/peers?roomId=${host.roomId}`, c.token), 401, "invalid_token");
    expectProblem(await api.get(`/api/diagnostics?roomId=${host.roomId}`), 404, "room_not_found");
    expectProblem(await api.post("/api/peers", { roomId: host.roomId }), 404, "room_not_found");
  });

  test("a full room refuses the next peer with 409", async () => {
    const host = await createRoom(api, { topology: "mesh", maxPeers: 2 });
    const joined = await joinRoom(api, host.roomId);
    expect(joined.body.peers.map((p: { role: string }) => p.role)).toEqual(["host", "viewer"]);
    const full = await api.post("/api/peers", { roomId: host.roomId });
    expectProblem(full, 409, "room_full");
    expect(full.body.detail).toBe("This room holds at most 2 peers");
  });

  test("bad input on every route gets a 4xx problem naming the problem, and changes nothing", async () => {
    const host = await createRoom(api);
    const viewer = await joinRoom(api, host.roomId);
    await drain(api, host);
    const r = host.roomId;
    // This room's keys (other suites write theirs to the same Redis meanwhile).
    const roomKeys = async () => (h.redis ? (await signalboxKeys(h.redis, `sb:{${r}}*`)).sort() : []);
    const roomKeysBefore = await roomKeys();
    const bigSdp = { type: "offer", sdp: "a".repeat(64 * 1024 + 1) };
    const cases: { method: string; path: string; token?: string; raw?: string; body?: unknown; headers?: Record<string, string>; status: number; code: string; names?: string }[] = [
      { method: "POST", path: "/api/rooms", raw: "{nope", headers: { "content-type": "application/json" }, status: 400, code: "invalid_json" },
      { method: "POST", path: "/api/rooms", raw: "topology=mesh", headers: { "content-type": "application/x-www-form-urlencoded" }, status: 415, code: "unsupported_media_type" },
      { method: "POST", path: "/api/rooms", body: { topology: "ring" }, status: 400, code: "invalid_request", names: "topology" },
      { method: "POST", path: "/api/rooms", body: { maxPeers: "ten" }, status: 400, code: "invalid_request", names: "maxPeers" },
      { method: "POST", path: "/api/rooms", body: { topolgy: "mesh" }, status: 400, code: "invalid_request", names: "topolgy" },
      { method: "POST", path: "/api/rooms", body: [1, 2], status: 400, code: "invalid_request" },
      { method: "POST", path: "/api/rooms", raw: Buffer.from([0x7b, 0xff, 0x7d]).toString("latin1"), headers: { "content-type": "application/json" }, status: 400, code: "invalid_json" },
      { method: "POST", path: "/api/peers", body: { roomId: "../../etc" }, status: 400, code: "invalid_request", names: "roomId" },
      { method: "POST", path: "/api/peers", body: {}, status: 400, code: "invalid_request", names: "roomId" },
      { method: "POST", path: "/api/peers", body: { roomId: r, name: "x".repeat(65) }, status: 400, code: "invalid_request", names: "name" },
      { method: "POST", path: "/api/offer", token: host.token, body: { roomId: r, to: viewer.peerId, description: bigSdp }, status: 413, code: "payload_too_large", names: "description.sdp" },
      { method: "POST", path: "/api/offer", token: host.token, body: { roomId: r, to: viewer.peerId, description: answer }, status: 400, code: "invalid_request", names: "description.type" },
      { method: "POST", path: "/api/offer", token: host.token, body: { roomId: r, to: viewer.peerId }, status: 400, code: "invalid_request", names: "description" },
      { method: "POST", path: "/api/answer", token: viewer.token, body: { roomId: r, to: "HOST!", description: answer }, status: 400, code: "invalid_request", names: "to" },
      { method: "POST", path: "/api/candidate", token: host.token, body: { roomId: r, to: viewer.peerId, candidates: Array(65).fill(null) }, status: 413, code: "payload_too_large", names: "candidates" },
      { method: "POST", path: "/api/candidate", token: host.token, body: { roomId: r, to: viewer.peerId, candidates: [] }, status: 400, code: "invalid_request", names: "candidates" },
      { method: "POST", path: "/api/candidate", token: host.token, body: { roomId: r, to: viewer.peerId, candidates: [{ sdpMid: "0" }] }, status: 400, code: "invalid_request", names: "candidates.0.candidate" },
      { method: "POST", path: "/api/candidate", token: host.token, body: { roomId: r, to: viewer.peerId, candidate: [null] }, status: 400, code: "invalid_request" },
      { method: "POST", path: "/api/candidate", token: host.token, raw: JSON.stringify({ roomId: r, to: viewer.peerId, candidates: [{ candidate: "x".repeat(300 * 1024) }] }), headers: { "content-type": "application/json" }, status: 413, code: "payload_too_large" },
      { method: "GET", path: "/api/poll?roomId=short", token: host.token, status: 400, code: "invalid_request", names: "roomId" },
      { method: "GET", path: `/api/poll?roomId=${r}&wait=abc`, token: host.token, status: 400, code: "invalid_request", names: "wait" },
      { method: "GET", path: `/api/poll?roomId=${r}&wait=26`, token: host.token, status: 400, code: "invalid_request", names: "wait" },
      { method: "GET", path: `/api/poll?roomId=${r}&after=yesterday`, token: host.token, status: 400, code: "invalid_request", names: "after" },
      { method: "GET", path: `/api/offer?roomId=${r}&wait=-1`, token: viewer.token, status: 400, code: "invalid_request", names: "wait" },
      { method: "DELETE", path: `/api/peers?roomId=${r}`, token: host.token, status: 400, code: "invalid_request", names: "peerId" },
      { method: "DELETE", path: "/api/rooms", token: host.token, status: 400, code: "invalid_request", names: "roomId" },
      { method: "GET", path: "/api/diagnostics?roomId=%2F..%2F", status: 400, code: "invalid_request", names: "roomId" },
      { method: "PUT", path: "/api/rooms", status: 405, code: "method_not_allowed" },
      { method: "GET", path: "/api/nope", status: 404, code: "not_found" },
    ];
    for (const c of cases) {
      const res = await api.call(c.method, c.path, { token: c.token, body: c.body, raw: c.raw, headers: c.headers });
      expectProblem(res, c.status, c.code);
      if (c.names) expect(res.body.detail, `${c.method} ${c.path}`).toContain(c.names);
    }
    expect((await api.call("PUT", "/api/rooms")).headers.get("allow")).toBe("POST, PATCH, DELETE");
    // Nothing changed: no message anywhere, the same peers, the same keys.
    expect((await api.get(`/api/poll?roomId=${r}`, host.token)).status).toBe(204);
    expect((await api.get(`/api/poll?roomId=${r}`, viewer.token)).status).toBe(204);
    expect((await api.get(`/api/peers?roomId=${r}`, host.token)).body.peers).toHaveLength(2);
    expect(await roomKeys()).toEqual(roomKeysBefore);
  });

  test("answers CORS preflights and marks every response", async () => {
    const preflight = await fetch(`${h.url}/api/offer`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    expect(preflight.headers.get("access-control-allow-methods")).toContain("POST");
    expect(preflight.headers.get("access-control-allow-headers")).toContain("authorization");
    const res = await api.post("/api/rooms", {});
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("diagnostics reports health and a room's public facts", async () => {
    const health = await api.get("/api/diagnostics");
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: "ok", version: expect.any(String), store: { kind, reachable: true, latencyMs: expect.any(Number) } });
    const host = await createRoom(api, { topology: "mesh" });
    await joinRoom(api, host.roomId);
    const room = await api.get(`/api/diagnostics?roomId=${host.roomId.toUpperCase()}`);
    expect(room.body).toEqual({ room: { roomId: host.roomId, topology: "mesh", peers: 2, maxPeers: 8, hostPresent: true, expiresAt: host.body.expiresAt, access: "open", lobby: false, locked: false } });
    expect(JSON.stringify(room.body)).not.toContain(host.peerId);
  });
});

describe.each(STORES)("limits and deployment auth [%s]", (kind) => {
  const test = it.skipIf(kind === "redis" && !hasRedis());

  test("answers 429 with Retry-After and RateLimit headers past the limits", async () => {
    const h = await startHarness(kind, { RATE_LIMIT_ROOMS_PER_HOUR: "2", RATE_LIMIT_CALLS_PER_HOUR: "4", TRUST_PROXY: "true" });
    try {
      // One proxy in front: the client is the entry it appended (the rightmost); what the client wrote to its left is ignored.
      const ip = freshAddress();
      const headers = { "x-forwarded-for": `192.0.2.7, ${ip}` };
      const api = apiClient(h.url);
      const create = () => api.call("POST", "/api/rooms", { body: {}, headers });
      const host = (await create()).body;
      const second = await create();
      expect(second.status).toBe(201);
      expect(second.headers.get("ratelimit-limit")).toBe("2");
      expect(second.headers.get("ratelimit-remaining")).toBe("0");
      const third = await create();
      expectProblem(third, 429, "rate_limited");
      expect(Number(third.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(Number(third.headers.get("ratelimit-reset"))).toBeGreaterThan(0);
      // A client writing other addresses in front of its own gets no new budget...
      for (const spoofed of ["192.0.2.8", "192.0.2.9, 192.0.2.10"]) {
        expectProblem(await api.call("POST", "/api/rooms", { body: {}, headers: { "x-forwarded-for": `${spoofed}, ${ip}` } }), 429, "rate_limited");
      }
      // ...nor does one with another address of its /64; another address is not affected.
      const sibling = ip.replace(/::1$/, "::2");
      expectProblem(await api.call("POST", "/api/rooms", { body: {}, headers: { "x-forwarded-for": sibling } }), 429, "rate_limited");
      expect((await api.call("POST", "/api/rooms", { body: {}, headers: { "x-forwarded-for": freshAddress() } })).status).toBe(201);
      // Calls are counted per peer token: the host's fifth call is refused...
      const poll = () => api.call("GET", `/api/poll?roomId=${host.roomId}`, { token: host.token, headers });
      for (let i = 0; i < 4; i++) expect((await poll()).status).toBe(204);
      expectProblem(await poll(), 429, "rate_limited");
      // The waiting itself is free: a long-poll woken by a message after it waited is not charged...
      const hostWaits = await waitingReadBegins(h, host);
      const waiting = api.call("GET", `/api/poll?roomId=${host.roomId}&wait=10`, { token: host.token, headers });
      await hostWaits();
      await api.call("POST", "/api/peers", { body: { roomId: host.roomId }, headers: { "x-forwarded-for": freshAddress() } });
      const woken = await waiting;
      expect(woken.status).toBe(200);
      // ...but one that answers at once, with mail already waiting, is a read like any other.
      expectProblem(await api.call("GET", `/api/poll?roomId=${host.roomId}&wait=10`, { token: host.token, headers }), 429, "rate_limited");
      // ...and failed token guesses, each with a different forged token, per address (long-polls too).
      const guess = (i: number) => api.call("GET", `/api/poll?roomId=${host.roomId}${i % 2 ? "&wait=5" : ""}`, { token: `${host.peerId}.${String(i).padStart(32, "B")}`, headers });
      const guesses = [];
      for (let i = 0; i < 6; i++) guesses.push((await guess(i)).status);
      expect(guesses).toEqual([401, 401, 401, 401, 429, 429]);
    } finally {
      await h.close();
    }
  });

  test("an address guessing room IDs is refused once past its budget, even on a hit", async () => {
    const h = await startHarness(kind, { RATE_LIMIT_PROBES_PER_HOUR: "3", TRUST_PROXY: "true" });
    try {
      const ip = freshAddress();
      const headers = { "x-forwarded-for": ip };
      const api = apiClient(h.url);
      const real = await createRoom(api);
      const unknown = (i: number) => `${"n".repeat(9)}${"23456789"[i]}`;
      const probes = [];
      for (let i = 0; i < 5; i++) {
        const lookup = i % 2 ? `/api/diagnostics?roomId=${unknown(i)}` : "/api/peers";
        const res = await api.call(i % 2 ? "GET" : "POST", lookup, { body: i % 2 ? undefined : { roomId: unknown(i) }, headers });
        probes.push(res.status);
        if (res.status === 429) expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
      }
      expect(probes).toEqual([404, 404, 404, 429, 429]);
      // Now even the right ID is refused from that address; others join as before.
      expectProblem(await api.call("POST", "/api/peers", { body: { roomId: real.roomId }, headers }), 429, "rate_limited");
      expectProblem(await api.call("GET", `/api/diagnostics?roomId=${real.roomId}`, { headers }), 429, "rate_limited");
      expect((await api.call("POST", "/api/peers", { body: { roomId: real.roomId }, headers: { "x-forwarded-for": freshAddress() } })).status).toBe(201);
      // Peers already in a room are not affected: their calls carry a token.
      expect((await api.call("GET", `/api/peers?roomId=${real.roomId}`, { token: real.token, headers })).status).toBe(200);
      expect((await joinRoom(api, real.roomId)).peerId).toMatch(/^[a-z0-9]{10}$/);
    } finally {
      await h.close();
    }
  });

  test("joining a full room again and again spends no guessing budget: only misses do", async () => {
    const h = await startHarness(kind, { RATE_LIMIT_PROBES_PER_HOUR: "2", TRUST_PROXY: "true" });
    try {
      const headers = { "x-forwarded-for": freshAddress() };
      const api = apiClient(h.url);
      const full = await createRoom(api, { maxPeers: 2 });
      await joinRoom(api, full.roomId);
      for (let i = 0; i < 4; i++) expectProblem(await api.call("POST", "/api/peers", { body: { roomId: full.roomId }, headers }), 409, "room_full");
      for (let i = 0; i < 3; i++) expectProblem(await api.call("POST", "/api/peers", { body: { roomId: "zzzzzzzzzz", name: "x".repeat(100) }, headers }), 400, "invalid_request");
      const open = await createRoom(api);
      expect((await api.call("POST", "/api/peers", { body: { roomId: open.roomId }, headers })).status).toBe(201);
    } finally {
      await h.close();
    }
  });

  test("every rate limit is enforced: a third request past a limit of two gets 429", async () => {
    // One server per limit, with only that limit at two: no other limit may be what refuses.
    for (const [limit, variable] of Object.entries(LIMIT_VARIABLES) as [Limit, string][]) {
      const h = await startHarness(kind, { TRUST_PROXY: "1", OPENAI_MAX_SESSIONS_PER_ROOM: "10", OPENAI_OFFER_TIMEOUT_MS: "300", [variable]: "2" });
      try {
        await hitLimit(limit, apiClient(h.url));
      } finally {
        await h.close();
      }
    }
  });

  /** Three requests against one limit of two: the third refused, the first two not. */
  async function hitLimit(limit: Limit, api: Api) {
    // A fresh address per client (counters in Redis outlive a run); rooms and joins from others.
    const from = () => {
      const headers = { "x-forwarded-for": freshAddress() };
      return {
        call: (method: string, path: string, token?: string, body?: unknown) => api.call(method, path, { token, body, headers }),
        room: async () => (await api.call("POST", "/api/rooms", { body: {}, headers: { "x-forwarded-for": freshAddress() } })).body as { roomId: string; token: string },
        join: async (roomId: string) => (await api.call("POST", "/api/peers", { body: { roomId }, headers: { "x-forwarded-for": freshAddress() } })).body as { token: string },
      };
    };
    const three = async (attempt: (i: number) => Promise<ApiResponse>) => {
      await clearOfWindowEdge();
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await attempt(i)).status);
      return statuses;
    };
    const attempts: Record<Limit, () => Promise<number[] | number[][]>> = {
      rooms: async () => {
        const c = from();
        return three(() => c.call("POST", "/api/rooms", undefined, {}));
      },
      joins: async () => {
        const c = from();
        const { roomId } = await c.room();
        return three(() => c.call("POST", "/api/peers", undefined, { roomId }));
      },
      calls: async () => {
        const c = from();
        const host = await c.room();
        return three(() => c.call("GET", `/api/peers?roomId=${host.roomId}`, host.token));
      },
      // Each route that starts one is charged: a host's third start is refused, whichever route.
      sessions: async () => {
        const sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendrecv\r\n";
        const triples = [];
        for (const [path, body] of [["/api/session", { sdp }], ["/api/session/peer", {}], ["/api/session/token", {}]] as const) {
          const c = from();
          const host = await c.room();
          triples.push(await three(() => c.call("POST", path, host.token, { roomId: host.roomId, ...body })));
        }
        return triples;
      },
      probes: async () => {
        const c = from();
        return three((i) => c.call("POST", "/api/peers", undefined, { roomId: `nnnnnnnnn${"234"[i]}` }));
      },
      chat: async () => {
        const c = from();
        const host = await c.room();
        return three(() => c.call("POST", "/api/chat", host.token, { roomId: host.roomId, text: "hi" }));
      },
      roomChat: async () => {
        const c = from();
        const host = await c.room();
        const senders = [host.token, (await c.join(host.roomId)).token, (await c.join(host.roomId)).token];
        return three((i) => c.call("POST", "/api/chat", senders[i], { roomId: host.roomId, text: "hi" }));
      },
    };
    const result = await attempts[limit]();
    for (const statuses of (Array.isArray(result[0]) ? result : [result]) as number[][]) {
      expect(statuses[2], `${limit}: ${statuses}`).toBe(429);
      expect(statuses.slice(0, 2).every((s) => s !== 429 && s !== 500), `${limit}: ${statuses}`).toBe(true);
    }
  }

  test("joins are limited per address, so one address cannot mint senders without end", async () => {
    const h = await startHarness(kind, { RATE_LIMIT_JOINS_PER_HOUR: "2", TRUST_PROXY: "1" });
    try {
      const api = apiClient(h.url);
      const { roomId } = await createRoom(api);
      const headers = { "x-forwarded-for": freshAddress() };
      const join = () => api.call("POST", "/api/peers", { body: { roomId }, headers });
      expect([(await join()).status, (await join()).status]).toEqual([201, 201]);
      expectProblem(await join(), 429, "rate_limited");
      expect((await api.call("POST", "/api/peers", { body: { roomId }, headers: { "x-forwarded-for": freshAddress() } })).status).toBe(201);
    } finally {
      await h.close();
    }
  });

  test("without a valid token, no route tells an existing room from a missing one, and forged tokens make no limiter keys", async () => {
    const h = await startHarness(kind, { TRUST_PROXY: "1" });
    try {
      const api = apiClient(h.url);
      const real = await createRoom(api);
      const viewer = await joinRoom(api, real.roomId);
      const missing = "zzzzzzzzz2";
      const headers = { "x-forwarded-for": freshAddress() };
      const forgedToken = (i: number) => `${viewer.peerId}.${String(i).padStart(32, "Q")}`;
      const answers = async (roomId: string, i: number) => {
        const token = forgedToken(i);
        const seen = [];
        for (const [method, path, body] of [
          ["GET", `/api/peers?roomId=${roomId}`],
          ["GET", `/api/poll?roomId=${roomId}&wait=1`],
          ["GET", `/api/offer?roomId=${roomId}`],
          ["POST", "/api/offer", { roomId, to: real.peerId, description: offer }],
          ["POST", "/api/chat", { roomId, text: "hi" }],
          ["DELETE", `/api/rooms?roomId=${roomId}`],
          ["POST", "/api/session/token", { roomId }],
        ] as [string, string, unknown?][]) {
          const res = await api.call(method, path, { body, token, headers });
          seen.push(`${method} ${path.split("?")[0]} ${res.status} ${res.body?.code} ${res.body?.detail}`);
        }
        return seen;
      };
      for (let i = 0; i < 10; i++) expect(await answers(real.roomId, i)).toEqual(await answers(missing, i));
      // 140 requests with 10 forged tokens: no limiter key for any of them (only the address's).
      if (h.redis) {
        for (let i = 0; i < 10; i++) expect(await signalboxKeys(h.redis, `sb:rl:*${hashToken(forgedToken(i)).slice(0, 24)}*`)).toEqual([]);
        expect((await signalboxKeys(h.redis, `sb:rl:*${headers["x-forwarded-for"].replace(/::1$/, "::/64")}*`)).length).toBeGreaterThan(0);
      }
    } finally {
      await h.close();
    }
  });

  test("with AUTH_SECRET set, only its holders create rooms", async () => {
    const secret = "s3cret-for-deployment-tests";
    const h = await startHarness(kind, { AUTH_SECRET: secret });
    try {
      const api = apiClient(h.url);
      expectProblem(await api.post("/api/rooms", {}), 401, "missing_token");
      expectProblem(await api.post("/api/rooms", {}, "wrong-secret"), 403, "forbidden");
      const created = await api.post("/api/rooms", {}, secret);
      expect(created.status).toBe(201);
      expect(JSON.stringify(created.body)).not.toContain(secret);
      // Joining stays open to anyone with the room ID.
      expect((await api.post("/api/peers", { roomId: created.body.roomId })).status).toBe(201);
    } finally {
      await h.close();
    }
  });
});
