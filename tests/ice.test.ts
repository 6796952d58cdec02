/** ICE servers handed to peers: STUN as configured, TURN with credentials that expire (coturn's REST scheme). */
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { apiClient, createRoom, joinRoom, startHarness } from "./support/harness.js";

const SECRET = "turn-shared-secret-for-tests";

describe("ICE servers", () => {
  it("gives each peer its own time-limited TURN credential, never the secret", async () => {
    const h = await startHarness("memory", { ICE_SERVERS: '[{"urls":"stun:127.0.0.1:3478"}]', TURN_URLS: "turn:127.0.0.1:3478?transport=udp, turns:127.0.0.1:5349", TURN_SECRET: SECRET, TURN_TTL_SECONDS: "600" });
    try {
      const api = apiClient(h.url);
      const before = Math.floor(Date.now() / 1000);
      const host = await createRoom(api);
      const viewer = await joinRoom(api, host.roomId);
      for (const [peerId, servers] of [[host.peerId, host.body.iceServers], [viewer.peerId, viewer.body.iceServers], [viewer.peerId, (await api.get(`/api/ice-servers?roomId=${host.roomId}`, viewer.token)).body.iceServers]]) {
        expect(servers[0]).toEqual({ urls: "stun:127.0.0.1:3478" }); // STUN always listed
        const turn = servers[1];
        expect(turn.urls).toEqual(["turn:127.0.0.1:3478?transport=udp", "turns:127.0.0.1:5349"]);
        const [expiry, user] = turn.username.split(":");
        expect(user).toBe(peerId);
        expect(Number(expiry)).toBeGreaterThanOrEqual(before + 600);
        expect(Number(expiry)).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 600);
        expect(turn.credential).toBe(createHmac("sha1", SECRET).update(turn.username).digest("base64"));
        expect(JSON.stringify(servers)).not.toContain(SECRET);
      }
    } finally {
      await h.close();
    }
  });

  it("hands out static TURN credentials where those are configured", async () => {
    const h = await startHarness("memory", { ICE_SERVERS: "[]", TURN_URLS: "turn:127.0.0.1:3478", TURN_USERNAME: "shared", TURN_CREDENTIAL: "pw" });
    try {
      const host = await createRoom(apiClient(h.url));
      expect(host.body.iceServers).toEqual([{ urls: ["turn:127.0.0.1:3478"], username: "shared", credential: "pw" }]);
    } finally {
      await h.close();
    }
  });
});
