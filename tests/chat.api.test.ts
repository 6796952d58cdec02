/** Room chat over HTTP, on both stores: delivery, history for late joiners, validation, the limit. */
import { describe, expect, it } from "vitest";
import { apiClient, clearOfWindowEdge, createRoom, drain, joinRoom, startHarness, ALL_STORES, available, useHarness, type Api } from "./support/harness.js";

describe.each(ALL_STORES)("chat [%s]", (kind) => {
  let api: Api;
  const test = useHarness(kind, (h) => (api = apiClient(h.url)));

  test("reaches every other peer exactly once, with the sender's name, in star and mesh rooms", async () => {
    for (const topology of ["star", "mesh"]) {
      const host = await createRoom(api, { topology, name: "Hana" });
      const a = await joinRoom(api, host.roomId, "Ari");
      const b = await joinRoom(api, host.roomId, "Bo");
      const cursors = await Promise.all([host, a, b].map(async (p) => (await drain(api, p)).cursor));
      const sent = await api.post("/api/chat", { roomId: host.roomId, text: "  hello everyone  " }, a.token);
      expect(sent.status).toBe(201);
      expect(sent.body).toEqual({ from: a.peerId, name: "Ari", text: "hello everyone", at: expect.any(Number) });
      await api.post("/api/chat", { roomId: host.roomId, text: "hi Ari" }, host.token);
      const mail = await Promise.all([host, a, b].map((p, i) => drain(api, p, cursors[i])));
      const chats = (i: number) => mail[i].messages.filter((m) => m.type === "chat").map((m) => `${m.name}: ${m.text}`);
      expect(chats(0)).toEqual(["Ari: hello everyone"]);
      expect(chats(1)).toEqual(["Hana: hi Ari"]);
      expect(chats(2)).toEqual(["Ari: hello everyone", "Hana: hi Ari"]);
    }
  });

  test("keeps the last 50 for late joiners", async () => {
    const host = await createRoom(api);
    for (let i = 1; i <= 55; i++) await api.post("/api/chat", { roomId: host.roomId, text: `message ${i}` }, host.token);
    const late = await joinRoom(api, host.roomId);
    const history = await api.get(`/api/chat?roomId=${host.roomId}`, late.token);
    expect(history.status).toBe(200);
    expect(history.body.messages).toHaveLength(50);
    expect(history.body.messages[0]).toMatchObject({ type: "chat", from: host.peerId, text: "message 6" });
    expect(history.body.messages.at(-1).text).toBe("message 55");
    expect((await api.get(`/api/chat?roomId=${host.roomId}`)).status).toBe(401);
  });

  test("refuses empty, oversized and misaddressed messages, changing nothing", async () => {
    const host = await createRoom(api);
    const viewer = await joinRoom(api, host.roomId);
    await drain(api, host);
    for (const [body, status] of [
      [{ roomId: host.roomId, text: "   " }, 400],
      [{ roomId: host.roomId, text: "x".repeat(2001) }, 400],
      [{ roomId: host.roomId }, 400],
      [{ roomId: host.roomId, text: "hi", to: host.peerId }, 400],
    ] as const) {
      const res = await api.post("/api/chat", body, viewer.token);
      expect(res.status).toBe(status);
      expect(res.body.code).toBe("invalid_request");
    }
    expect((await api.post("/api/chat", { roomId: host.roomId, text: "x".repeat(2000) }, viewer.token)).status).toBe(201);
    expect((await drain(api, host)).messages).toHaveLength(1);
    expect((await api.get(`/api/chat?roomId=${host.roomId}`, host.token)).body.messages).toHaveLength(1);
  });
});

describe.each(ALL_STORES)("chat limit [%s]", (kind) => {
  it.skipIf(!available(kind))("answers 429 past the per-sender limit, leaving others free", async () => {
    const h = await startHarness(kind, { RATE_LIMIT_CHAT_PER_MINUTE: "3" });
    try {
      const api = apiClient(h.url);
      const host = await createRoom(api);
      const viewer = await joinRoom(api, host.roomId);
      const answers = [];
      await clearOfWindowEdge();
      for (let i = 0; i < 4; i++) answers.push(await api.post("/api/chat", { roomId: host.roomId, text: `m${i}` }, viewer.token));
      expect(answers.map((a) => a.status)).toEqual([201, 201, 201, 429]);
      // The tighter limit's figures (here the sender's 3 a minute, under the room's), as every limited route gives them.
      expect(answers.map((a) => [a.headers.get("ratelimit-limit"), a.headers.get("ratelimit-remaining")])).toEqual([["3", "2"], ["3", "1"], ["3", "0"], ["3", "0"]]);
      const reset = Number(answers[3].headers.get("ratelimit-reset"));
      expect(reset).toBeGreaterThan(0);
      expect(reset).toBeLessThanOrEqual(60);
      expect(answers[3].headers.get("retry-after")).toBe(String(reset));
      expect((await api.post("/api/chat", { roomId: host.roomId, text: "still me" }, host.token)).status).toBe(201);
    } finally {
      await h.close();
    }
  });

  it.skipIf(!available(kind))("answers 429 past the per-room limit, however many senders join; forged tokens spend none of it", async () => {
    const h = await startHarness(kind, { RATE_LIMIT_CHAT_PER_MINUTE: "2", RATE_LIMIT_ROOM_CHAT_PER_MINUTE: "5" });
    try {
      const api = apiClient(h.url);
      const host = await createRoom(api);
      const other = await createRoom(api);
      const forged = `${host.peerId}.${"F".repeat(32)}`;
      await clearOfWindowEdge();
      for (let i = 0; i < 8; i++) expect((await api.post("/api/chat", { roomId: host.roomId, text: "x" }, forged)).status).toBe(401);
      const statuses = [];
      for (let i = 0; i < 4; i++) {
        const sender = await joinRoom(api, host.roomId);
        for (let j = 0; j < 2; j++) statuses.push((await api.post("/api/chat", { roomId: host.roomId, text: `m${i}${j}` }, sender.token)).status);
      }
      expect(statuses).toEqual([201, 201, 201, 201, 201, 429, 429, 429]);
      expect((await api.get(`/api/chat?roomId=${host.roomId}`, host.token)).body.messages).toHaveLength(5);
      // Another room has its own budget.
      expect((await api.post("/api/chat", { roomId: other.roomId, text: "hi" }, other.token)).status).toBe(201);
    } finally {
      await h.close();
    }
  });
});
