/**
 * Several server processes on one Redis (through the Upstash REST bridge, itself a process):
 * the peers of one room spread across them, each on a different server, run the whole exchange
 * with the client library — join, offer/answer, trickle, chat, a departure, the room's close —
 * with every long-poll woken by a message another process wrote.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SignalingClient, type Message, type SessionEndedError } from "../lib/client/signaling-client.js";
import { hasRedis, redisUrl, TEST_ENV } from "./support/harness.js";
import { spawnPrinting, startServer, type ServerProcess } from "./support/processes.js";

/** Messages one client has received, and a way to wait for the next that matches. */
function inbox(client: SignalingClient) {
  const seen: Message[] = [];
  const waiters: { match: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  client.onMessage((m) => {
    seen.push(m);
    for (const w of waiters.splice(0)) (w.match(m) ? w.resolve(m) : waiters.push(w));
  });
  return {
    seen,
    next(match: (m: Message) => boolean, what: string, timeoutMs = 5000): Promise<Message> {
      const found = seen.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
        waiters.push({ match, resolve: (m) => (clearTimeout(timer), resolve(m)) });
      });
    },
  };
}

describe.each([2, 3])("%i server processes sharing one Redis [redis]", (count) => {
  let bridge: { url: string; child: import("node:child_process").ChildProcess };
  let servers: ServerProcess[] = [];
  const token = "multiprocess-bridge";
  const test = it.skipIf(!hasRedis());

  beforeAll(async () => {
    if (!hasRedis()) return;
    bridge = await spawnPrinting(["scripts/upstash-bridge.ts"], { REDIS_URL: redisUrl(), BRIDGE_PORT: "0", BRIDGE_TOKEN: token }, /bridge on (http:\/\/\S+)/);
    const env = { ...TEST_ENV, UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: token };
    servers = await Promise.all(Array.from({ length: count }, () => startServer(env)));
  }, 60_000);
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    bridge?.child.kill("SIGTERM");
  });

  test("one room's peers, each on its own server, complete the whole exchange", { timeout: 60_000 }, async () => {
    const on = (i: number) => ({ baseUrl: servers[i % count].url, waitSeconds: 20 });
    // The host on server 0; viewer i on server i (mod count): every hop crosses processes.
    const host = await SignalingClient.createRoom({ topology: "star", name: "host" }, on(0));
    const viewers = [await SignalingClient.joinRoom(host.roomId, { name: "v1" }, on(1)), await SignalingClient.joinRoom(host.roomId, { name: "v2" }, on(2))];
    const hostMail = inbox(host);
    const viewerMail = viewers.map(inbox);
    const ended: SessionEndedError[] = [];
    for (const v of viewers) v.onEnd((e) => ended.push(e));
    for (const c of [host, ...viewers]) c.start();

    for (const v of viewers) await hostMail.next((m) => m.type === "peer-joined" && m.peer.peerId === v.peerId, `host hears ${v.peerId} join`);

    // Offer from server 0 wakes each viewer's long-poll on its own server, promptly.
    for (const [i, v] of viewers.entries()) {
      const sent = Date.now();
      await host.sendDescription(v.peerId, { type: "offer", sdp: `v=0 offer ${i}` });
      const offer = await viewerMail[i].next((m) => m.type === "offer", `viewer ${i}'s offer`);
      expect(offer.type === "offer" && offer.description.sdp).toBe(`v=0 offer ${i}`);
      expect(Date.now() - sent).toBeLessThan(3000); // woken, not waiting out its 20 s poll
      await v.sendDescription(host.peerId, { type: "answer", sdp: `v=0 answer ${i}` });
      await v.sendCandidates(host.peerId, [{ candidate: `candidate:${i} 1 udp 1 127.0.0.1 5000${i} typ host`, sdpMid: "0", sdpMLineIndex: 0 }, null]);
      await host.sendCandidates(v.peerId, [{ candidate: `candidate:h${i} 1 udp 1 127.0.0.1 6000${i} typ host`, sdpMid: "0", sdpMLineIndex: 0 }]);
    }
    for (const [i, v] of viewers.entries()) {
      const answer = await hostMail.next((m) => m.type === "answer" && m.from === v.peerId, `answer ${i}`);
      expect(answer.type === "answer" && answer.description.sdp).toBe(`v=0 answer ${i}`);
      const candidates = await hostMail.next((m) => m.type === "candidate" && m.from === v.peerId, `candidates ${i}`);
      expect(candidates.type === "candidate" && candidates.candidates).toHaveLength(2);
      const toViewer = await viewerMail[i].next((m) => m.type === "candidate", `host candidates for ${i}`);
      expect(toViewer.type === "candidate" && toViewer.candidates[0]?.candidate).toContain(`6000${i}`);
    }

    // Chat from the viewer on the last server reaches the host and the other viewer.
    await viewers[1].sendChat("hello across processes");
    for (const mail of [hostMail, viewerMail[0]]) {
      const chat = await mail.next((m) => m.type === "chat", "chat");
      expect(chat.type === "chat" && [chat.name, chat.text]).toEqual(["v2", "hello across processes"]);
    }

    // A departure through one server is seen by the host through another.
    await viewers[0].leave();
    const left = await hostMail.next((m) => m.type === "peer-left", "peer-left");
    expect(left.type === "peer-left" && left.peerId).toBe(viewers[0].peerId);
    expect((await host.listPeers()).peers.map((p) => p.peerId).sort()).toEqual([host.peerId, viewers[1].peerId].sort());

    // Closing on server 0 ends the other viewer's session on its server, at once.
    await host.closeRoom();
    await expect.poll(() => ended.length, { timeout: 5000 }).toBe(1);
    expect(ended[0].code).toBe("room_closed");
    // Every message arrived exactly once.
    for (const mail of [hostMail, ...viewerMail]) expect(new Set(mail.seen.map((m) => `${m.from}/${m.id}`)).size).toBe(mail.seen.length);
    for (const c of [host, ...viewers]) c.stop();
  });
});
