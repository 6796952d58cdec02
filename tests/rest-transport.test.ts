/**
 * The Upstash REST transport as it talks to Upstash. Its subscription reader
 * (lib/store/rest-subscription.ts) reads the SUBSCRIBE stream as the SSE format has it, whatever
 * the stream carries besides its events: comments and keep-alives, `retry:`, `event:` and `id:`
 * lines, CRLF line ends, data over several lines, events split across chunks; and it says when
 * the stream ends. And it sends each request's script as an HTTP request of its own.
 */
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { hashToken, newPeerId, newRoomId } from "../lib/ids.js";
import { RedisStore } from "../lib/store/redis.js";
import { subscribeOverRest } from "../lib/store/rest-subscription.js";
import { RestTransport } from "../lib/store/transport.js";
import { startUpstashBridge } from "../scripts/upstash-bridge.js";
import { hasRedis, redisUrl } from "./support/harness.js";

let server: ReturnType<typeof createServer> | undefined;
afterEach(() => server?.close());

/** A server that answers /subscribe/<channel> by handing the response to `stream`. */
async function sse(stream: (res: ServerResponse) => void) {
  server = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    stream(res);
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: "t" };
}

function subscribe(connection: { url: string; token: string }) {
  const messages: string[] = [];
  const lost: Error[] = [];
  const subscription = subscribeOverRest(connection, "sb:{r}:ch:p", (m) => messages.push(m), (e) => lost.push(e));
  return { subscription, messages, lost };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
};

describe("the REST subscription reader", () => {
  it("is live once confirmed, after comments and a retry line; reads events between keep-alives, CRLF and split chunks", async () => {
    let res!: ServerResponse;
    const connection = await sse((r) => {
      res = r;
      r.write(": welcome\n: keep-alive\nretry: 1000\n\n");
      r.write("data: subscribe,sb:{r}:ch:p,1\r\n\r\n");
    });
    const { subscription, messages, lost } = subscribe(connection);
    await subscription.ready;
    res.write(": keep-alive\n\n");
    res.write("event: message\nid: 7\ndata: message,sb:{r}:ch:p,m:1-1:offer:{\"a\":1}\n\n");
    res.write(": keep-alive\r\n\r\ndata: message,sb:{r}:ch:p,gon");
    res.write("e\r\n\r\n");
    res.write("data: message,sb:{r}:ch:p,line one\ndata: line two\n\n");
    await until(() => messages.length === 3);
    expect(messages).toEqual(['m:1-1:offer:{"a":1}', "gone", "line one\nline two"]);
    expect(lost).toEqual([]);
    subscription.close();
  });

  it("is never live if the stream ends before confirming, and reports a stream that ends after", async () => {
    const early = subscribe(await sse((r) => r.end(": nothing here\n\n")));
    await expect(early.subscription.ready).rejects.toThrow("not confirmed");
    server!.close();
    let res!: ServerResponse;
    const ending = subscribe(await sse((r) => ((res = r), r.write("data: subscribe,sb:{r}:ch:p,1\n\n"))));
    await ending.subscription.ready;
    res.end(": bye\n\n");
    await until(() => ending.lost.length > 0);
    expect(ending.lost.map((e) => e.message)).toEqual(["subscription stream ended"]);
  });

  it("refuses an event that never ends, rather than hold it all", async () => {
    let res!: ServerResponse;
    const { subscription, lost } = subscribe(await sse((r) => ((res = r), r.write("data: subscribe,sb:{r}:ch:p,1\n\n"))));
    await subscription.ready;
    res.write(`data: message,sb:{r}:ch:p,${"x".repeat(1024 * 1024 + 10)}`);
    await until(() => lost.length > 0);
    expect(lost.map((e) => e.message)).toEqual(["event too long"]);
    subscription.close();
  });
});

describe.skipIf(!hasRedis())("the REST transport's requests [redis]", () => {
  it("sends each request's script as an HTTP request of its own, never batched with others' (auto-pipelining off)", async () => {
    const bridge = await startUpstashBridge({ redisUrl: redisUrl() });
    const store = new RedisStore(new RestTransport({ url: bridge.url, token: bridge.token }), { inboxMax: 100, roomMailMaxBytes: 1 << 20 });
    try {
      const now = Date.now();
      const rooms = Array.from({ length: 10 }, () => ({ roomId: newRoomId(), hostId: newPeerId() }));
      bridge.resetCounts();
      // Ten requests' steps begun in the same tick, as ten requests of one function instance would.
      await Promise.all(
        rooms.map(({ roomId, hostId }) =>
          store.createRoom({ room: { roomId, topology: "star", maxPeers: 2, hostId, createdAt: now, access: "open", lobby: false }, ttlMs: 60_000, capAt: now + 60_000, host: { peerId: hostId, role: "host", joinedAt: now }, hostTokenHash: hashToken(hostId) }, now),
        ),
      );
      const requests = bridge.requests();
      expect(requests["/pipeline"]).toBeUndefined();
      expect(requests["/"]).toBeGreaterThanOrEqual(10); // and one more for a script Redis had not seen yet (NOSCRIPT, then EVAL)
    } finally {
      await store.close();
      await bridge.close();
    }
  });
});
