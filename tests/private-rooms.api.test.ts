/**
 * Private rooms over HTTP, on both stores: key rooms (a join key, replaceable by the host) and
 * locking. (A lobby the host admits from is not built yet: asked for, it is refused.)
 */
import { describe, expect } from "vitest";
import { apiClient, createRoom, drain, freshAddress, joinRoom, startHarness, STORES, useHarness, type Api, type ApiResponse, type Harness } from "./support/harness.js";

function expectProblem(res: ApiResponse, status: number, code: string) {
  expect([res.status, res.body?.code], JSON.stringify(res.body)).toEqual([status, code]);
}

describe.each(STORES)("private rooms [%s]", (kind) => {
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

  test("a lobby is not built yet: asking for one is refused, not ignored", async () => {
    const res = await api.post("/api/rooms", { access: "lobby" });
    expectProblem(res, 400, "invalid_request");
    expect(res.body.errors[0].field).toBe("access");
  });
});
