/**
 * Private rooms over HTTP, on both stores: key rooms (a join key, replaceable by the host),
 * locking, and the lobby the host admits from.
 */
import { describe, expect } from "vitest";
import { LOBBY_MAX } from "../lib/store/types.js";
import { openStream } from "./support/events.js";
import { apiClient, createRoom, drain, freshAddress, joinRoom, startHarness, ALL_STORES, useHarness, type Api, type ApiResponse, type Harness } from "./support/harness.js";

function expectProblem(res: ApiResponse, status: number, code: string) {
  expect([res.status, res.body?.code], JSON.stringify(res.body)).toEqual([status, code]);
}

describe.each(ALL_STORES)("private rooms [%s]", (kind) => {
  let h: Harness;
  let api: Api;
  const test = useHarness(kind, (started) => ((h = started), (api = apiClient(h.url))));
  const join = (roomId: string, joinKey?: string) => api.post("/api/peers", joinKey === undefined ? { roomId } : { roomId, joinKey });

  test("a key room lets in only who brings its key; the key is given once, to the host", async () => {
    const host = await createRoom(api, { access: "key" });
    expect(host.body.joinKey).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(host.body.room).toMatchObject({ access: "key", locked: false });
    expectProblem(await join(host.roomId), 403, "join_key_required");
    expectProblem(await join(host.roomId, "A".repeat(22)), 403, "join_key_invalid");
    expectProblem(await join(host.roomId, "short"), 400, "invalid_request");
    const viewer = await join(host.roomId, host.body.joinKey);
    expect(viewer.status).toBe(201);
    expect(JSON.stringify(viewer.body)).not.toContain(host.body.joinKey);
    // What a viewer page may ask before joining: that it needs a key, and nothing more.
    const described = await api.get(`/api/diagnostics?roomId=${host.roomId}`);
    expect(described.body.room).toMatchObject({ access: "key", locked: false });
    expect(JSON.stringify(described.body)).not.toContain(host.body.joinKey);
    // Open rooms are as before, and ignore a key.
    const open = await createRoom(api);
    expect(open.body.joinKey).toBeUndefined();
    expect((await join(open.roomId, "A".repeat(22))).status).toBe(201);
  });

  test("the host replaces the key: the old one stops working at once; only the host may, and only in a key room", async () => {
    const host = await createRoom(api, { access: "key" });
    const viewer = await join(host.roomId, host.body.joinKey);
    expectProblem(await api.post("/api/rooms/key", { roomId: host.roomId }, viewer.body.token), 403, "forbidden");
    const replaced = await api.post("/api/rooms/key", { roomId: host.roomId }, host.token);
    expect(replaced.status).toBe(201);
    expect(replaced.body).toEqual({ joinKey: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/) });
    expect(replaced.body.joinKey).not.toBe(host.body.joinKey);
    expectProblem(await join(host.roomId, host.body.joinKey), 403, "join_key_invalid");
    expect((await join(host.roomId, replaced.body.joinKey)).status).toBe(201);
    // Who is in stays in.
    expect((await api.get(`/api/peers?roomId=${host.roomId}`, viewer.body.token)).status).toBe(200);
    const open = await createRoom(api);
    expectProblem(await api.post("/api/rooms/key", { roomId: open.roomId }, open.token), 409, "open_room");
  });

  test("wrong and missing keys spend the address's guessing budget, as wrong room IDs do", async () => {
    const guarded = await startHarness(kind, { RATE_LIMIT_PROBES_PER_HOUR: "2", TRUST_PROXY: "true" });
    try {
      const guessing = apiClient(guarded.url);
      const host = await createRoom(guessing, { access: "key" });
      const headers = { "x-forwarded-for": freshAddress() };
      const tries = [];
      for (const joinKey of ["A".repeat(22), undefined, "B".repeat(22)]) {
        tries.push((await guessing.call("POST", "/api/peers", { body: joinKey ? { roomId: host.roomId, joinKey } : { roomId: host.roomId }, headers })).status);
      }
      expect(tries).toEqual([403, 403, 429]);
      expectProblem(await guessing.call("POST", "/api/peers", { body: { roomId: host.roomId, joinKey: host.body.joinKey }, headers }), 429, "rate_limited");
      expect((await guessing.call("POST", "/api/peers", { body: { roomId: host.roomId, joinKey: host.body.joinKey }, headers: { "x-forwarded-for": freshAddress() } })).status).toBe(201);
    } finally {
      await guarded.close();
    }
  });

  test("a locked room refuses every new join, with or without a key; the peers inside carry on", async () => {
    const host = await createRoom(api, { topology: "mesh" });
    const inside = await joinRoom(api, host.roomId);
    expectProblem(await api.call("PATCH", "/api/rooms", { token: inside.token, body: { roomId: host.roomId, locked: true } }), 403, "forbidden");
    expect((await api.call("PATCH", "/api/rooms", { token: host.token, body: { roomId: host.roomId, locked: true } })).status).toBe(204);
    expectProblem(await join(host.roomId), 403, "room_locked");
    expect((await api.get(`/api/diagnostics?roomId=${host.roomId}`)).body.room).toMatchObject({ access: "open", locked: true });
    await drain(api, host);
    expect((await api.post("/api/chat", { roomId: host.roomId, text: "still here" }, inside.token)).status).toBe(201);
    expect((await drain(api, host)).messages.map((m) => m.text)).toEqual(["still here"]);
    expectProblem(await api.call("PATCH", "/api/rooms", { token: host.token, body: { roomId: host.roomId, locked: "yes" } }), 400, "invalid_request");
    expect((await api.call("PATCH", "/api/rooms", { token: host.token, body: { roomId: host.roomId, locked: false } })).status).toBe(204);
    expect((await join(host.roomId)).status).toBe(201);
  });

  /** Knocks on a lobby room: 202, and the waiting peer's token. */
  async function knock(roomId: string, body: Record<string, unknown> = {}) {
    const res = await api.post("/api/peers", { roomId, ...body });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    return { roomId, peerId: res.body.peerId as string, token: res.body.token as string, body: res.body };
  }
  const answer = (host: { roomId: string; token: string }, peerId: string, allow: boolean) => api.post("/api/admit", { roomId: host.roomId, peerId, allow }, host.token);

  test("a lobby: the joiner gets 202 and waits, reading only its own mail; the host hears the knock and lets it in; then it is a viewer like any", async () => {
    const host = await createRoom(api, { access: "lobby" });
    expect(host.body.room).toMatchObject({ access: "lobby", lobby: true });
    expect((await api.get(`/api/diagnostics?roomId=${host.roomId}`)).body.room).toMatchObject({ access: "lobby", lobby: true, peers: 1 });
    const waiting = await knock(host.roomId, { name: "Ada" });
    expect(waiting.body).toEqual({ status: "waiting", roomId: host.roomId, peerId: expect.any(String), token: expect.any(String), expiresAt: expect.any(Number) });
    expect(waiting.body.expiresAt).toBeGreaterThan(Date.now() + 5 * 60_000);
    const stream = await openStream(h.url, waiting);
    expect(stream.status).toBe(200);

    const [knocked] = (await drain(api, host)).messages;
    expect(knocked).toMatchObject({ type: "knock", from: waiting.peerId, peer: { peerId: waiting.peerId, name: "Ada" }, expiresAt: waiting.body.expiresAt });
    const hostOnly = { roomId: host.roomId, to: host.peerId, description: { type: "offer", sdp: "v=0\r\n" } };
    expectProblem(await api.post("/api/offer", hostOnly, waiting.token), 403, "not_admitted");
    expectProblem(await api.post("/api/chat", { roomId: host.roomId, text: "let me in" }, waiting.token), 403, "not_admitted");
    for (const path of ["/api/peers", "/api/chat", "/api/ice-servers"]) expectProblem(await api.get(`${path}?roomId=${host.roomId}`, waiting.token), 403, "not_admitted");
    expectProblem(await api.post("/api/offer", { ...hostOnly, to: waiting.peerId }, host.token), 404, "peer_not_found");
    expect((await api.get(`/api/peers?roomId=${host.roomId}`, host.token)).body.peers).toHaveLength(1);
    expect((await api.get(`/api/diagnostics?roomId=${host.roomId}`)).body.room.peers).toBe(1);

    expect((await answer(host, waiting.peerId, true)).status).toBe(204);
    const admitted = await stream.nextEvent();
    expect(admitted.kind === "event" && admitted.data).toMatchObject({
      type: "admitted",
      from: host.peerId,
      room: { roomId: host.roomId, hostId: host.peerId, lobby: true, expiresAt: expect.any(Number) },
      peers: [{ peerId: host.peerId, role: "host" }, { peerId: waiting.peerId, name: "Ada", role: "viewer" }],
      iceServers: expect.any(Array),
    });
    stream.close();
    expect((await drain(api, host)).messages).toEqual([expect.objectContaining({ type: "peer-joined", from: waiting.peerId, peer: expect.objectContaining({ peerId: waiting.peerId, name: "Ada" }) })]);
    expect((await api.post("/api/answer", { ...hostOnly, description: { type: "answer", sdp: "v=0\r\n" } }, waiting.token)).status).toBe(201);

    // A retried admit is harmless; a late deny finds no one waiting; only the host answers.
    expect((await answer(host, waiting.peerId, true)).status).toBe(204);
    expectProblem(await answer(host, waiting.peerId, false), 404, "peer_not_found");
    const next = await knock(host.roomId);
    expectProblem(await answer(waiting, next.peerId, true), 403, "forbidden");
    expectProblem(await answer(next, next.peerId, true), 403, "not_admitted");
    const bad = await api.post("/api/admit", { roomId: host.roomId, peerId: next.peerId }, host.token);
    expectProblem(bad, 400, "invalid_request");
    expect(bad.body.errors[0].field).toBe("allow");
    expect((await api.get(`/api/peers?roomId=${host.roomId}`, host.token)).body.peers).toHaveLength(2);
  });

  test("a denied joiner is told so, and its token reads only that", async () => {
    const host = await createRoom(api, { access: "lobby" });
    const waiting = await knock(host.roomId);
    expect((await answer(host, waiting.peerId, false)).status).toBe(204);
    expect((await answer(host, waiting.peerId, false)).status).toBe(204);
    expectProblem(await answer(host, waiting.peerId, true), 404, "peer_not_found");
    expect((await drain(api, waiting)).messages).toEqual([expect.objectContaining({ type: "denied", from: host.peerId })]);
    expectProblem(await api.post("/api/chat", { roomId: host.roomId, text: "please" }, waiting.token), 403, "not_admitted");
    expect((await api.get(`/api/peers?roomId=${host.roomId}`, host.token)).body.peers).toHaveLength(1);
  });

  test("a waiting joiner may leave: the host hears it (its knock goes) and a late admit finds no one", async () => {
    const host = await createRoom(api, { access: "lobby" });
    const waiting = await knock(host.roomId);
    expect((await api.del(`/api/peers?roomId=${host.roomId}&peerId=${waiting.peerId}`, waiting.token)).status).toBe(204);
    expect((await drain(api, host)).messages.map((m) => [m.type, m.peerId ?? m.peer?.peerId, m.reason])).toEqual([
      ["knock", waiting.peerId, undefined],
      ["peer-left", waiting.peerId, "left"],
    ]);
    expectProblem(await answer(host, waiting.peerId, true), 404, "peer_not_found");
    expectProblem(await api.get(`/api/poll?roomId=${host.roomId}`, waiting.token), 401, "invalid_token");
  });

  test("a locked lobby room takes no knocks (the host hears none), and who already waits may still be let in", async () => {
    const host = await createRoom(api, { access: "lobby" });
    const waiting = await knock(host.roomId);
    await drain(api, host);
    expect((await api.call("PATCH", "/api/rooms", { token: host.token, body: { roomId: host.roomId, locked: true } })).status).toBe(204);
    expectProblem(await join(host.roomId), 403, "room_locked");
    expect((await drain(api, host)).messages, "no knock reached the host").toEqual([]);
    expect((await answer(host, waiting.peerId, true)).status).toBe(204);
    expect((await api.get(`/api/peers?roomId=${host.roomId}`, host.token)).body.peers.map((p: any) => p.peerId)).toEqual([host.peerId, waiting.peerId]);
    expect((await api.call("PATCH", "/api/rooms", { token: host.token, body: { roomId: host.roomId, locked: false } })).status).toBe(204);
    expect((await join(host.roomId)).status).toBe(202);
  });

  test("a key and a lobby together: the key to knock, the host to enter; a full lobby refuses more", async () => {
    const host = await createRoom(api, { access: "key", lobby: true });
    expect(host.body.joinKey).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(host.body.room).toMatchObject({ access: "key", lobby: true });
    expectProblem(await join(host.roomId), 403, "join_key_required");
    for (let i = 0; i < LOBBY_MAX; i++) await knock(host.roomId, { joinKey: host.body.joinKey });
    expectProblem(await join(host.roomId, host.body.joinKey), 409, "lobby_full");
    expectProblem(await api.post("/api/rooms", { access: "open", lobby: "yes" }), 400, "invalid_request");
  });
});
