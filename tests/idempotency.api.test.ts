/**
 * Idempotency-Key over HTTP, on every store: a request sent again with the same key gets the
 * first answer (marked Idempotent-Replayed) and changes nothing more; the same key with another
 * request is refused; a key is its sender's alone; a malformed one is refused in words.
 */
import { describe, expect } from "vitest";
import { ALL_STORES, apiClient, createRoom, drain, joinRoom, useHarness, type Api } from "./support/harness.js";

const offer = { type: "offer", sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n" };
const keyed = (key: string) => ({ "idempotency-key": key });
const newKey = () => crypto.randomUUID();

describe.each(ALL_STORES)("Idempotency-Key [%s]", (kind) => {
  let api: Api;
  const test = useHarness(kind, (h) => (api = apiClient(h.url)));
  const post = (path: string, body: unknown, token: string | undefined, key: string) => api.call("POST", path, { body, token, headers: keyed(key) });

  test("a send repeated with its key is answered as the first was, and delivered once", async () => {
    const host = await createRoom(api);
    const viewer = await joinRoom(api, host.roomId);
    const key = newKey();
    const first = await post("/api/offer", { roomId: host.roomId, to: viewer.peerId, description: offer }, host.token, key);
    const again = await post("/api/offer", { roomId: host.roomId, to: viewer.peerId, description: offer }, host.token, key);
    expect(first.status).toBe(201);
    expect([again.status, again.body]).toEqual([201, first.body]);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect((await drain(api, viewer)).messages.map((m) => m.id)).toEqual([first.body.id]);
    // Another key is another request.
    expect((await post("/api/offer", { roomId: host.roomId, to: viewer.peerId, description: offer }, host.token, newKey())).body.id).not.toBe(first.body.id);
  });

  test("a chat repeated with its key is posted once, and answered with the first answer", async () => {
    const host = await createRoom(api);
    const viewer = await joinRoom(api, host.roomId);
    await drain(api, host);
    const key = newKey();
    const first = await post("/api/chat", { roomId: host.roomId, text: "once" }, viewer.token, key);
    await new Promise((r) => setTimeout(r, 5)); // a second answer made afresh would say a later `at`
    const again = await post("/api/chat", { roomId: host.roomId, text: "once" }, viewer.token, key);
    expect([again.status, again.body]).toEqual([201, first.body]);
    expect((await drain(api, host)).messages.map((m) => m.type)).toEqual(["chat"]);
    expect((await api.get(`/api/chat?roomId=${host.roomId}`, host.token)).body.messages).toHaveLength(1);
  });

  test("a join repeated with its key is the same peer, under the repeat's token; the host hears of it once", async () => {
    const host = await createRoom(api);
    const key = newKey();
    const first = await post("/api/peers", { roomId: host.roomId, name: "Ada" }, undefined, key);
    const again = await post("/api/peers", { roomId: host.roomId, name: "Ada" }, undefined, key);
    expect([first.status, again.status]).toEqual([201, 201]);
    expect(again.body).toEqual({ ...first.body, token: expect.any(String), iceServers: expect.any(Array) });
    expect(again.body.token).not.toBe(first.body.token);
    // Only the last token works: the first answer never arrived, or its client asked again anyway.
    expect((await api.get(`/api/peers?roomId=${host.roomId}`, first.body.token)).status).toBe(401);
    expect((await api.get(`/api/peers?roomId=${host.roomId}`, again.body.token)).status).toBe(200);
    expect((await drain(api, host)).messages.filter((m) => m.type === "peer-joined")).toHaveLength(1);
    expect((await api.get(`/api/peers?roomId=${host.roomId}`, host.token)).body.peers).toHaveLength(2);
  });

  test("a room created again with its key is the same room, its host under the repeat's token", async () => {
    const key = newKey();
    const first = await post("/api/rooms", { access: "key" }, undefined, key);
    const again = await post("/api/rooms", { access: "key" }, undefined, key);
    expect([first.status, again.status]).toEqual([201, 201]);
    expect(again.body).toEqual({ ...first.body, token: expect.any(String), joinKey: expect.any(String), iceServers: expect.any(Array) });
    expect((await api.get(`/api/peers?roomId=${first.body.roomId}`, first.body.token)).status).toBe(401);
    expect((await api.get(`/api/peers?roomId=${first.body.roomId}`, again.body.token)).status).toBe(200);
    // The repeat's join key is the room's; the first one's never was given out.
    expect((await api.post("/api/peers", { roomId: first.body.roomId, joinKey: first.body.joinKey })).status).toBe(403);
    expect((await api.post("/api/peers", { roomId: first.body.roomId, joinKey: again.body.joinKey })).status).toBe(201);
  });

  test("the same key with another request is refused (422), and does nothing; a key is its sender's alone", async () => {
    const host = await createRoom(api);
    const viewer = await joinRoom(api, host.roomId);
    const other = await joinRoom(api, host.roomId);
    const key = newKey();
    expect((await post("/api/chat", { roomId: host.roomId, text: "first" }, viewer.token, key)).status).toBe(201);
    const reused = await post("/api/chat", { roomId: host.roomId, text: "second" }, viewer.token, key);
    expect([reused.status, reused.body.code]).toEqual([422, "idempotency_key_reused"]);
    // Another peer's request under the same key is its own.
    const theirs = await post("/api/chat", { roomId: host.roomId, text: "theirs" }, other.token, key);
    expect([theirs.status, theirs.body.text, theirs.headers.get("idempotent-replayed")]).toEqual([201, "theirs", null]);
    expect((await api.get(`/api/chat?roomId=${host.roomId}`, host.token)).body.messages.map((m: { text: string }) => m.text)).toEqual(["first", "theirs"]);
  });

  test("a malformed key is refused in words, before anything is done; reads ignore the header", async () => {
    const host = await createRoom(api);
    for (const key of ["short", "x".repeat(256), "has space in it 0123456789"]) {
      const res = await post("/api/chat", { roomId: host.roomId, text: "no" }, host.token, key);
      expect([res.status, res.body.code], key).toEqual([400, "invalid_idempotency_key"]);
    }
    expect((await api.get(`/api/chat?roomId=${host.roomId}`, host.token)).body.messages).toEqual([]);
    // A structured-field string (quoted) is the same key as bare.
    const key = newKey();
    const bare = await post("/api/chat", { roomId: host.roomId, text: "sf" }, host.token, key);
    const quoted = await post("/api/chat", { roomId: host.roomId, text: "sf" }, host.token, `"${key}"`);
    expect(quoted.body).toEqual(bare.body);
    expect((await api.call("GET", `/api/peers?roomId=${host.roomId}`, { token: host.token, headers: keyed("short") })).status).toBe(200);
  });

  test("a browser on another origin may send the header (CORS)", async () => {
    const preflight = await api.call("OPTIONS", "/api/offer", { headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "idempotency-key" } });
    expect(preflight.headers.get("access-control-allow-headers")).toContain("idempotency-key");
    expect(preflight.headers.get("access-control-expose-headers")).toContain("idempotent-replayed");
  });
});
