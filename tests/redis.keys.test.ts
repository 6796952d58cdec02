/**
 * What the Redis store leaves in redis-server: a room is the same few keys however many peers it
 * has, every key has a TTL, and after a close only a short-lived notice is left (and the replies
 * kept for retries, until their window ends).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IDEMPOTENCY_WINDOW_MS } from "../lib/http/idempotency.js";
import { hashToken } from "../lib/ids.js";
import { RETRY_WINDOW_MS } from "../lib/store/redis.js";
import { CLOSED_NOTICE_MS } from "../lib/store/types.js";
import { apiClient, COUNTER_FIELD, createRoom, drain, hasRedis, joinRoom, signalboxKeys, startHarness, type Api, type Harness } from "./support/harness.js";

describe.skipIf(!hasRedis())("Redis keys [redis]", () => {
  let h: Harness;
  let api: Api;
  beforeAll(async () => {
    h = await startHarness("redis");
    api = apiClient(h.url);
  });
  afterAll(async () => h?.close());

  /**
   * The room's keys but the replies kept for retries, which each must go within its window (a
   * request's own key: the client's Idempotency-Key's window; else the transport's retries').
   */
  async function keysBut(room: string) {
    const keys = await signalboxKeys(h.redis!, `${room}*`);
    for (const key of keys.filter((k) => k.startsWith(`${room}:op:`))) {
      const ttl = await h.redis!.pTTL(key);
      expect(ttl === -2 || (ttl > 0 && ttl <= Math.max(RETRY_WINDOW_MS, IDEMPOTENCY_WINDOW_MS)), `${key} has TTL ${ttl}`).toBe(true);
    }
    return keys.filter((k) => !k.startsWith(`${room}:op:`)).sort();
  }

  it("every key written during a full exchange has a TTL and the room's hash tag", async () => {
    const host = await createRoom(api);
    const a = await joinRoom(api, host.roomId);
    const b = await joinRoom(api, host.roomId);
    for (const v of [a, b]) {
      await api.post("/api/offer", { roomId: host.roomId, to: v.peerId, description: { type: "offer", sdp: "v=0\r\n" } }, host.token);
      await api.post("/api/candidate", { roomId: host.roomId, to: v.peerId, candidates: [null] }, host.token);
      await api.get(`/api/offer?roomId=${host.roomId}`, v.token);
      await api.post("/api/answer", { roomId: host.roomId, to: host.peerId, description: { type: "answer", sdp: "v=0\r\n" } }, v.token);
      await drain(api, v);
    }
    await api.get(`/api/poll?roomId=${host.roomId}&wait=1`, b.token);
    await drain(api, host);
    await api.post("/api/candidate", { roomId: host.roomId, to: host.peerId, candidates: [null] }, a.token);
    await api.post("/api/chat", { roomId: host.roomId, text: "hello" }, b.token);
    await api.del(`/api/peers?roomId=${host.roomId}&peerId=${a.peerId}`, a.token);

    // This test's own keys only (the Redis is shared with other suites and earlier runs): the
    // room's. Its peers' call and chat counters are fields of the room's hash, and go with it;
    // a peer that left takes its counters along.
    const roomKeys = await signalboxKeys(h.redis!, `sb:{${host.roomId}}*`);
    // The room, its mail and who has which (two peers or two hundred), the chat; and replies kept for retries.
    const r = `sb:{${host.roomId}}`;
    expect(roomKeys.filter((k) => !k.startsWith(`${r}:op:`)).sort()).toEqual([r, `${r}:box`, `${r}:chat`, `${r}:mail`]);
    const counters = Object.keys(await h.redis!.hGetAll(`sb:{${host.roomId}}`)).filter((f) => COUNTER_FIELD.test(f));
    expect(counters.sort()).toEqual([`c`, `c:${b.peerId}`, `l:${b.peerId}`, `l:${host.peerId}`].sort());
    expect(await signalboxKeys(h.redis!, `sb:rl:*peer:${hashToken(host.token).slice(0, 24)}*`)).toEqual([]);
    for (const key of roomKeys) {
      const ttl = await h.redis!.pTTL(key);
      // -2: expired between SCAN and PTTL; -1 would be a key without a TTL.
      expect(ttl === -2 || ttl > 0, `${key} has no TTL`).toBe(true);
    }
  });

  it("a lobby's keys (its waiting list, waiting peers' mail) all have a TTL, and a close takes them all", async () => {
    const host = await createRoom(api, { access: "lobby" });
    const knock = async () => (await api.post("/api/peers", { roomId: host.roomId })).body;
    const [admitted, denied, waiting] = [await knock(), await knock(), await knock()];
    await api.post("/api/admit", { roomId: host.roomId, peerId: admitted.peerId, allow: true }, host.token);
    await api.post("/api/admit", { roomId: host.roomId, peerId: denied.peerId, allow: false }, host.token);
    const keys = await signalboxKeys(h.redis!, `sb:{${host.roomId}}*`);
    expect(keys).toContain(`sb:{${host.roomId}}:lobby`);
    expect(await h.redis!.zRange(`sb:{${host.roomId}}:lobby`, 0, -1)).toEqual(expect.arrayContaining([denied.peerId, waiting.peerId]));
    for (const key of keys) expect((await h.redis!.pTTL(key)) > 0, `${key} has no TTL`).toBe(true);
    expect((await api.del(`/api/rooms?roomId=${host.roomId}`, host.token)).status).toBe(204);
    expect(await keysBut(`sb:{${host.roomId}}`)).toEqual([`sb:{${host.roomId}}:closed`]);
    expect((await api.get(`/api/poll?roomId=${host.roomId}`, waiting.token)).body.messages).toEqual([expect.objectContaining({ type: "room-closed" })]);
  });

  it("closing a room removes every one of its keys but a short-lived notice", async () => {
    const host = await createRoom(api);
    const viewers = [await joinRoom(api, host.roomId), await joinRoom(api, host.roomId)];
    for (const v of viewers) await api.post("/api/offer", { roomId: host.roomId, to: v.peerId, description: { type: "offer", sdp: "v=0\r\n" } }, host.token);
    await api.post("/api/chat", { roomId: host.roomId, text: "bye" }, viewers[0].token);
    // The room, its mail, who has which, and the chat.
    expect((await keysBut(`sb:{${host.roomId}}`)).length).toBe(4);
    expect((await api.del(`/api/rooms?roomId=${host.roomId}`, host.token)).status).toBe(204);
    // All but the notice that tells its peers it closed, which goes by itself soon after.
    const notice = `sb:{${host.roomId}}:closed`;
    expect(await keysBut(`sb:{${host.roomId}}`)).toEqual([notice]);
    expect(await h.redis!.pTTL(notice)).toBeGreaterThan(CLOSED_NOTICE_MS - 10_000);
    expect(await h.redis!.pTTL(notice)).toBeLessThanOrEqual(CLOSED_NOTICE_MS);
    expect((await api.get(`/api/peers?roomId=${host.roomId}`, host.token)).status).toBe(401);
  });
});
