/**
 * The client library's receive loop against the real local server, on both stores: on the
 * event stream by default, resuming across streams that end, and falling back to long-poll
 * where a proxy holds the stream back.
 */
import { describe, expect, it } from "vitest";
import { backoffDelay, SignalingClient, SignalingError, type Message } from "../lib/client/signaling-client.js";
import { STORES, useHarness, type Harness } from "./support/harness.js";
import { startBufferingProxy } from "./support/buffering-proxy.js";

/** Messages a client receives, and a way to wait for the `count`th. */
function inbox(client: SignalingClient) {
  const messages: Message[] = [];
  client.onMessage((m) => messages.push(m));
  const until = async (count: number, timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    while (messages.length < count) {
      if (Date.now() > deadline) throw new Error(`${messages.length} of ${count} messages in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return messages;
  };
  return { messages, until };
}

const offer = (n: number) => ({ type: "offer" as const, sdp: `v=0\r\no=- ${n} 2 IN IP4 127.0.0.1\r\n` });

it("spreads a server's Retry-After by up to half again, so that clients shed together come back apart", () => {
  expect(backoffDelay(0, 2000, () => 0)).toBe(2000);
  expect(backoffDelay(0, 2000, () => 0.5)).toBe(2500);
  expect(backoffDelay(0, 2000, () => 0.998)).toBeCloseTo(2998, 6);
});

describe.each(STORES)("client library [%s]", (kind) => {
  let h: Harness;
  // Streams end every 5 s here: the client must carry on across them without a gap.
  const test = useHarness(kind, (started) => (h = started), { EVENTS_STREAM_SECONDS: "5", EVENTS_HEARTBEAT_SECONDS: "1" });

  test("receives on the event stream, in order, across streams that end, and acknowledges as it goes", { timeout: 30_000 }, async () => {
    const host = await SignalingClient.createRoom({}, { baseUrl: h.url });
    const viewer = await SignalingClient.joinRoom(host.roomId, {}, { baseUrl: h.url });
    const got = inbox(viewer);
    viewer.start();
    for (let n = 0; n < 5; n++) await host.sendDescription(viewer.peerId, offer(n));
    await got.until(5);
    await new Promise((r) => setTimeout(r, 6000)); // past a stream's end
    for (let n = 5; n < 10; n++) await host.sendDescription(viewer.peerId, offer(n));
    const messages = await got.until(10);
    expect(messages.map((m) => (m.type === "offer" ? m.description.sdp : m.type))).toEqual(Array.from({ length: 10 }, (_, n) => offer(n).sdp));
    expect(viewer.pollMode).toBe("stream");
    // What it received in the first stream was acknowledged by the second.
    const pending = await fetch(`${h.url}/api/poll?roomId=${viewer.roomId}`, { headers: { authorization: `Bearer ${viewer.session.token}` } });
    expect(((await pending.json()) as { messages: Message[] }).messages.length).toBeLessThanOrEqual(5);
    viewer.stop();
  });

  test("sends a request again when the server gave up reading it (408), as a busy server does", async () => {
    let refused = 0;
    // The first attempt at each call is answered as a server past its request timeout answers.
    const fetchOnce408: typeof fetch = async (input, init) => {
      if (refused++ % 2 === 0) return new Response(null, { status: 408, headers: { connection: "close" } });
      return fetch(input, init);
    };
    const host = await SignalingClient.createRoom({}, { baseUrl: h.url, fetch: fetchOnce408 });
    const viewer = await SignalingClient.joinRoom(host.roomId, {}, { baseUrl: h.url, fetch: fetchOnce408 });
    expect(refused).toBe(4);
    expect((await host.listPeers()).peers.map((p) => p.peerId)).toContain(viewer.peerId);
  });

  test("behind a proxy that buffers the stream, falls back to long-poll and still gets its mail", { timeout: 30_000 }, async () => {
    const proxy = await startBufferingProxy(h.url);
    try {
      const host = await SignalingClient.createRoom({}, { baseUrl: h.url });
      const viewer = await SignalingClient.joinRoom(host.roomId, {}, { baseUrl: proxy.url });
      const got = inbox(viewer);
      viewer.start();
      await host.sendDescription(viewer.peerId, offer(1));
      const started = Date.now();
      await got.until(1, 20_000);
      expect(viewer.pollMode).toBe("long-poll");
      expect(Date.now() - started).toBeLessThan(12_000); // the first-byte wait (5 s), not the stream's life
      await host.sendDescription(viewer.peerId, offer(2));
      expect((await got.until(2)).map((m) => m.type)).toEqual(["offer", "offer"]);
      viewer.stop();
    } finally {
      await proxy.close();
    }
  });

  test("a room close reaches a streaming client as the end of its session", async () => {
    const host = await SignalingClient.createRoom({ topology: "mesh" }, { baseUrl: h.url });
    const viewer = await SignalingClient.joinRoom(host.roomId, {}, { baseUrl: h.url });
    const ended = new Promise<string>((resolve) => viewer.onEnd((e) => resolve(e.code)));
    viewer.start();
    await new Promise((r) => setTimeout(r, 300));
    await host.closeRoom();
    expect(await ended).toBe("room_closed");
  });

  test("a key room: the host holds the key, a viewer joins with it, a replaced key or a locked room refuses in words", async () => {
    const refusal = (p: Promise<unknown>) => p.then(() => "joined", (e: SignalingError) => `${e.status} ${e.code}`);
    const host = await SignalingClient.createRoom({ access: "key" }, { baseUrl: h.url });
    expect(host.session.joinKey).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(await SignalingClient.checkRoom(host.roomId, { baseUrl: h.url })).toMatchObject({ access: "key", locked: false });
    expect(await refusal(SignalingClient.joinRoom(host.roomId, {}, { baseUrl: h.url }))).toBe("403 join_key_required");
    const viewer = await SignalingClient.joinRoom(host.roomId, { joinKey: host.session.joinKey }, { baseUrl: h.url });
    expect(viewer.session.room.access).toBe("key");
    const old = host.session.joinKey!;
    expect(await host.rotateJoinKey()).not.toBe(old);
    expect(await refusal(SignalingClient.joinRoom(host.roomId, { joinKey: old }, { baseUrl: h.url }))).toBe("403 join_key_invalid");
    await host.setLocked(true);
    expect(await refusal(SignalingClient.joinRoom(host.roomId, { joinKey: host.session.joinKey }, { baseUrl: h.url }))).toBe("403 room_locked");
    await host.setLocked(false);
    expect(await refusal(SignalingClient.joinRoom(host.roomId, { joinKey: host.session.joinKey }, { baseUrl: h.url }))).toBe("joined");
  });

  for (const mode of ["stream", "long-poll", "interval"] as const) {
    test(`a lobby [${mode}]: join resolves once the host lets it in, with the room; the host's offer in the same batch is not lost`, { timeout: 30_000 }, async () => {
      const host = await SignalingClient.createRoom({ access: "lobby" }, { baseUrl: h.url });
      // The host lets the joiner in and sends its offer before the joiner's first read, so both
      // arrive in one batch (one poll answer, or one stream's first events): the joiner's loop
      // stops at `admitted`, and the offer must still be there for the caller's own start().
      let answered: Promise<void> | undefined;
      let waited: { peerId: string } | null = null;
      const onWaiting = (w: { peerId: string; expiresAt: number }) => {
        waited = w;
        answered = host.admit(w.peerId).then(() => host.sendDescription(w.peerId, offer(1)));
      };
      const readsAfterAnswer: typeof fetch = async (input, init) => {
        if (/\/api\/(poll|events)\?/.test(String(input))) await answered;
        return fetch(input, init);
      };
      const viewer = await SignalingClient.joinRoom(host.roomId, { name: "Ada", onWaiting }, { baseUrl: h.url, mode, fetch: readsAfterAnswer });
      expect(waited).toEqual({ peerId: viewer.peerId, expiresAt: expect.any(Number) });
      expect(viewer.session.room).toMatchObject({ roomId: host.roomId, hostId: host.peerId, access: "lobby", lobby: true });
      expect(viewer.session.peers.map((p) => p.peerId)).toEqual([host.peerId, viewer.peerId]);
      expect(viewer.session.iceServers).toEqual(expect.any(Array));
      const got = inbox(viewer);
      viewer.start();
      expect((await got.until(1)).map((m) => m.type)).toEqual(["offer"]);
      viewer.stop();
    });
  }

  test("a lobby: a denied joiner's join fails in words; one that gives up leaves, and the host hears it", async () => {
    const host = await SignalingClient.createRoom({ access: "lobby" }, { baseUrl: h.url });
    const knocks: string[] = [];
    const answering = host.onKnock((knock) => (knocks.push(knock.peer.peerId), void host.admit(knock.peer.peerId, false)));
    host.start();
    const refused = await SignalingClient.joinRoom(host.roomId, {}, { baseUrl: h.url }).then(() => null, (e: SignalingError) => `${e.status} ${e.code}`);
    expect(refused).toBe("403 join_denied");
    host.stop();
    answering();

    const quitting = new AbortController();
    const waiting = SignalingClient.joinRoom(host.roomId, { onWaiting: () => setTimeout(() => quitting.abort(), 200), signal: quitting.signal }, { baseUrl: h.url });
    await expect(waiting).rejects.toThrow();
    const got = inbox(host);
    host.start();
    const messages = await got.until(2);
    expect(messages.map((m) => m.type)).toEqual(["knock", "peer-left"]);
    expect(messages[0].from).toBe(messages[1].from);
    expect(knocks).toHaveLength(1);
    host.stop();
  });

  test("a removed peer's client ends its session", async () => {
    const host = await SignalingClient.createRoom({}, { baseUrl: h.url });
    const viewer = await SignalingClient.joinRoom(host.roomId, {}, { baseUrl: h.url });
    const ended = new Promise<number>((resolve) => viewer.onEnd((e) => resolve(e.status)));
    viewer.start();
    await new Promise((r) => setTimeout(r, 300));
    await host.removePeer(viewer.peerId);
    expect(await ended).toBe(401);
  });
});
