/**
 * A reply lost after the store acted: each change still applies exactly once. Over REST the
 * reply is dropped between the server and the bridge once Redis ran the script, and
 * @upstash/redis sends it again; over TCP the connection is cut once the command is written and
 * answered, the server answers 503, and the client library sends the request again with the same
 * Idempotency-Key. Either way the repeat must find the first reply, not act twice.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SignalingClient } from "../lib/client/signaling-client.js";
import { startServer, type RunningServer } from "../lib/server.js";
import type { ScriptName } from "../lib/store/scripts.js";
import { startUpstashBridge, type Bridge } from "../scripts/upstash-bridge.js";
import { apiClient, hasRedis, redisUrl, TEST_ENV, type Api } from "./support/harness.js";
import { restReplyDropper, tcpReplyCutter, type LossyProxy } from "./support/lossy-proxies.js";

const offer = { type: "offer" as const, sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n" };

describe.skipIf(!hasRedis()).each(["rest", "tcp [redis-tcp]"])("a reply lost after the change was made: %s", (over) => {
  let bridge: Bridge | undefined;
  let proxy: LossyProxy;
  let server: RunningServer;
  let api: Api;
  beforeAll(async () => {
    if (over === "rest") {
      bridge = await startUpstashBridge({ redisUrl: redisUrl() });
      proxy = await restReplyDropper(bridge.url);
    } else {
      const { hostname, port } = new URL(redisUrl());
      proxy = await tcpReplyCutter({ host: hostname, port: Number(port) });
    }
    const store = over === "rest" ? { UPSTASH_REDIS_REST_URL: proxy.url, UPSTASH_REDIS_REST_TOKEN: bridge!.token } : { REDIS_URL: proxy.url };
    // No rate limits: their scripts would share the TCP connection with the one whose reply is cut.
    server = await startServer({ env: { ...TEST_ENV, ...store, RATE_LIMITS: "off", REDIS_TIMEOUT_MS: "1500" }, port: 0 });
    api = apiClient(server.url);
  });
  afterAll(async () => {
    await server?.close();
    await proxy?.close();
    await bridge?.close();
  });

  const client = { baseUrl: "" };
  beforeAll(() => void (client.baseUrl = server.url));

  /** The types of what `peer` has unread (and acknowledges nothing). */
  async function mail(peer: { roomId: string; token: string }): Promise<string[]> {
    const res = await api.get(`/api/poll?roomId=${peer.roomId}`, peer.token);
    return res.status === 204 ? [] : res.body.messages.map((m: { type: string }) => m.type);
  }

  /** Runs `act` with the reply to `script`'s step lost once, and checks that it was. */
  async function losingReplyTo<T>(script: ScriptName, act: () => Promise<T>): Promise<T> {
    const before = proxy.lost();
    proxy.loseReplyTo(script);
    const result = await act();
    expect(proxy.lost(), `a reply to ${script} was lost`).toBe(before + 1);
    return result;
  }

  /** A room, and (open) a viewer in it, the host's mail of it read. */
  async function room(access: "open" | "lobby" = "open") {
    const host = await SignalingClient.createRoom({ access }, client);
    const viewer = access === "open" ? await SignalingClient.joinRoom(host.roomId, {}, client) : null;
    const pending = await api.get(`/api/poll?roomId=${host.roomId}`, host.session.token);
    if (pending.status === 200) await api.get(`/api/poll?roomId=${host.roomId}&after=${pending.body.cursor}`, host.session.token);
    return { host, viewer: viewer! };
  }

  it("an offer, and a batch of candidates, each arrive once", { timeout: 30_000 }, async () => {
    const { host, viewer } = await room();
    await losingReplyTo("SEND", () => host.sendDescription(viewer.peerId, offer));
    await losingReplyTo("SEND", () => host.sendCandidates(viewer.peerId, [{ candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host", sdpMid: "0" }]));
    expect(await mail(viewer.session)).toEqual(["offer", "candidate"]);
  });

  it("a join is one peer: the host hears of it once, and the joiner's token works", { timeout: 30_000 }, async () => {
    const { host } = await room();
    const joiner = await losingReplyTo("JOIN_ROOM", () => SignalingClient.joinRoom(host.roomId, {}, client));
    expect(await mail(host.session)).toEqual(["peer-joined"]);
    // The joiner's view, as a star viewer's: the host and itself; the room: host, viewer and joiner.
    expect((await joiner.listPeers()).peers.filter((p) => p.peerId === joiner.peerId)).toHaveLength(1);
    expect((await host.listPeers()).peers).toHaveLength(3);
  });

  /** A DELETE sent again, with the same Idempotency-Key, while it answers 503 (as any client retries it): the statuses. */
  async function deleteUntilAnswered(path: string, token: string) {
    const key = `delete-${crypto.randomUUID()}`;
    const statuses: number[] = [];
    do statuses.push((await api.call("DELETE", path, { token, headers: { "idempotency-key": key } })).status);
    while (statuses.at(-1) === 503);
    return statuses;
  }

  it("a leave is announced once, and answered as done (its token is gone by the repeat)", { timeout: 30_000 }, async () => {
    const { host, viewer } = await room();
    const statuses = await losingReplyTo("LEAVE_ROOM", () => deleteUntilAnswered(`/api/peers?roomId=${host.roomId}&peerId=${viewer.peerId}`, viewer.session.token));
    expect(statuses.at(-1)).toBe(204);
    expect(await mail(host.session)).toEqual(["peer-left"]);
    expect((await host.listPeers()).peers.map((p) => p.peerId)).toEqual([host.peerId]);
  });

  it("a chat is posted once: one message to each other peer, one in the history", { timeout: 30_000 }, async () => {
    const { host, viewer } = await room();
    const sent = await losingReplyTo("CHAT", () => viewer.sendChat("hello"));
    expect(sent).toMatchObject({ from: viewer.peerId, text: "hello" });
    expect(await mail(host.session)).toEqual(["chat"]);
    expect(await host.chatHistory()).toEqual([expect.objectContaining({ text: "hello" })]);
  });

  it("a lobby peer let in is let in once: one admitted, one announcement", { timeout: 30_000 }, async () => {
    const { host } = await room("lobby");
    const knocked = (await api.post("/api/peers", { roomId: host.roomId })).body;
    await losingReplyTo("ADMIT", () => host.admit(knocked.peerId));
    expect(await mail(knocked)).toEqual(["admitted"]);
    expect(await mail(host.session)).toEqual(["knock", "peer-joined"]);
  });

  it("a close is answered as done, not refused as a second close", { timeout: 30_000 }, async () => {
    const { host, viewer } = await room();
    const statuses = await losingReplyTo("CLOSE_ROOM", () => deleteUntilAnswered(`/api/rooms?roomId=${host.roomId}`, host.session.token));
    expect(statuses.at(-1)).toBe(204);
    expect(await mail(viewer.session)).toEqual(["room-closed"]);
  });
});
