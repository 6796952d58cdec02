/**
 * GET /api/events over HTTP, through the real local server, on both stores: mail pushed as it
 * comes, resumed by Last-Event-ID with nothing lost or repeated, and every way a stream ends.
 */
import { describe, expect } from "vitest";
import { apiClient, createRoom, drain, joinRoom, ALL_STORES, useHarness, type Api, type Harness, type Peer } from "./support/harness.js";
import { openStream, type StreamItem } from "./support/events.js";

const cand = (n: number) => ({ candidate: `candidate:${n} 1 udp 2122260223 127.0.0.1 ${10000 + n} typ host`, sdpMid: "0", sdpMLineIndex: 0 });
const numberOf = (item: StreamItem) => (item.kind === "event" ? Number(item.data.candidates[0].candidate.split(" ")[0].slice("candidate:".length)) : NaN);

describe.each(ALL_STORES)("event stream [%s]", (kind) => {
  let h: Harness;
  let api: Api;
  const test = useHarness(
    kind,
    (started) => {
      h = started;
      api = apiClient(h.url);
    },
    { EVENTS_HEARTBEAT_SECONDS: "1", EVENTS_STREAM_SECONDS: "6" },
  );

  async function pair(topology: "star" | "mesh" = "star") {
    const host = await createRoom(api, { topology });
    const viewer = await joinRoom(api, host.roomId);
    return { host, viewer };
  }
  const sendCandidate = (from: Peer, to: Peer, n: number) => api.post("/api/candidate", { roomId: from.roomId, to: to.peerId, candidates: [cand(n)] }, from.token);

  test("pushes mail as it arrives, with each message's id as its event id, and heartbeats while quiet", async () => {
    const { host, viewer } = await pair();
    const stream = await openStream(h.url, host);
    expect(stream.status).toBe(200);
    expect(stream.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(stream.headers.get("cache-control")).toBe("no-store");
    expect(stream.headers.get("x-accel-buffering")).toBe("no"); // nginx passes it through unbuffered
    const joined = await stream.nextEvent();
    expect(joined).toMatchObject({ kind: "event", data: { type: "peer-joined", peer: { peerId: viewer.peerId } } });
    expect(joined.kind === "event" && joined.id).toBe(joined.kind === "event" && joined.data.id);

    const sent = await sendCandidate(viewer, host, 7);
    const pushed = await stream.nextEvent(3000);
    expect(pushed).toMatchObject({ kind: "event", id: sent.body.id, data: { id: sent.body.id, type: "candidate", from: viewer.peerId, candidates: [cand(7)] } });
    // Quiet now: a comment keeps the connection alive (every second here).
    expect(await stream.next(3000)).toEqual({ kind: "comment", text: "keep-alive" });
    stream.close();
  });

  test("loses and repeats nothing over 1 000 messages while the connection is cut every few events", { timeout: 120_000 }, async () => {
    const { host, viewer } = await pair();
    await drain(api, host); // the peer-joined message
    const total = 1000;
    const sending = (async () => {
      for (let n = 0; n < total; n += 10) {
        const batch = await Promise.all(Array.from({ length: 10 }, (_, k) => sendCandidate(viewer, host, n + k)));
        for (const res of batch) expect(res.status).toBe(201);
      }
    })();
    // Sends race, so ids order them rather than n: what counts is each exactly once, in id order.
    const received: number[] = [];
    const ids: string[] = [];
    let last: string | undefined;
    // A stream that ends (its time up) with nothing to give, twice running, has nothing more: lost.
    for (let round = 0, idle = 0; received.length < total && idle < 2; round++) {
      // Alternate how the cursor comes back: the header EventSource sends, and the query.
      const stream = await openStream(h.url, host, round % 2 ? { lastEventId: last } : { after: last });
      expect(stream.status).toBe(200);
      const take = 1 + (round % 7);
      const before = received.length;
      for (let k = 0; k < take && received.length < total; k++) {
        const item = await stream.nextEvent(10_000);
        if (item.kind === "closed" || item.event === "end") break; // its time was up: reconnect
        received.push(numberOf(item));
        ids.push(item.id!);
        last = item.id;
      }
      idle = received.length > before ? 0 : idle + 1;
      stream.close();
    }
    await sending;
    expect([...received].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, n) => n));
    expect(new Set(ids).size).toBe(total);
    // Everything was acknowledged by the reconnects, except the last, which the next read does.
    const left = await api.get(`/api/poll?roomId=${host.roomId}&after=${last}`, host.token);
    expect(left.status).toBe(204);
  });

  test("after 100 unacknowledged messages a stream asks for a reconnect, which acknowledges them", async () => {
    const { host, viewer } = await pair();
    await drain(api, host);
    for (let n = 0; n < 130; n++) await sendCandidate(viewer, host, n);
    const first = await openStream(h.url, host);
    const got: StreamItem[] = [];
    for (;;) {
      const item = await first.nextEvent();
      if (item.kind !== "event" || item.event) {
        expect(item).toMatchObject({ kind: "event", event: "end", data: { reason: "reconnect" } });
        break;
      }
      got.push(item);
    }
    expect(got).toHaveLength(100);
    expect(await first.next()).toEqual({ kind: "closed" });
    const lastId = got.at(-1)!.kind === "event" ? (got.at(-1) as { id: string }).id : "";
    const second = await openStream(h.url, host, { lastEventId: lastId });
    const rest: number[] = [];
    while (rest.length < 30) rest.push(numberOf(await second.nextEvent()));
    expect([...got.map(numberOf), ...rest]).toEqual(Array.from({ length: 130 }, (_, n) => n));
    second.close();
    // The first 100 are gone from the inbox: the reconnect acknowledged them.
    const pending = await api.get(`/api/poll?roomId=${host.roomId}`, host.token);
    expect(pending.body.messages).toHaveLength(30);
  });

  test("ends itself before its time is up, asking for a reconnect", { timeout: 15_000 }, async () => {
    const { host } = await pair();
    const stream = await openStream(h.url, host);
    const opened = Date.now();
    await stream.nextEvent(); // peer-joined
    const end = await stream.nextEvent(10_000);
    expect(end).toEqual({ kind: "event", event: "end", id: undefined, data: { reason: "reconnect" } });
    expect(Date.now() - opened).toBeGreaterThan(4000);
    expect(await stream.next()).toEqual({ kind: "closed" });
  });

  test("a room close ends every peer's stream with room-closed", async () => {
    const { host, viewer } = await pair("mesh");
    const other = await joinRoom(api, host.roomId);
    const streams = await Promise.all([host, viewer, other].map((p) => openStream(h.url, p)));
    await drain(api, host);
    expect((await api.del(`/api/rooms?roomId=${host.roomId}`, host.token)).status).toBe(204);
    for (const stream of streams) {
      let item = await stream.nextEvent();
      while (item.kind === "event" && item.data.type === "peer-joined") item = await stream.nextEvent();
      expect(item).toMatchObject({ kind: "event", id: undefined, data: { type: "room-closed", from: host.peerId } });
      expect(await stream.nextEvent()).toMatchObject({ event: "end", data: { reason: "room-closed" } });
      expect(await stream.next()).toEqual({ kind: "closed" });
    }
    // A stream opened after the close (a reconnect) says so too, and ends.
    const late = await openStream(h.url, viewer);
    expect(await late.nextEvent()).toMatchObject({ id: undefined, data: { id: "0-0", type: "room-closed" } });
    expect(await late.nextEvent()).toMatchObject({ event: "end", data: { reason: "room-closed" } });
  });

  test("a peer's second stream replaces its first; a removed peer's stream ends with gone", async () => {
    const { host, viewer } = await pair("mesh");
    const first = await openStream(h.url, viewer);
    const second = await openStream(h.url, viewer);
    expect(await first.nextEvent()).toMatchObject({ event: "end", data: { reason: "replaced" } });
    expect(await first.next()).toEqual({ kind: "closed" });
    const sent = await sendCandidate(host, viewer, 1);
    expect(await second.nextEvent()).toMatchObject({ id: sent.body.id });

    expect((await api.del(`/api/peers?roomId=${host.roomId}&peerId=${viewer.peerId}`, host.token)).status).toBe(204);
    expect(await second.nextEvent()).toMatchObject({ event: "end", data: { reason: "gone" } });
    expect(await second.next()).toEqual({ kind: "closed" });
    const after = await openStream(h.url, viewer);
    expect([after.status, after.problem?.code]).toEqual([401, "invalid_token"]);
  });

  test("a stream ticket opens one stream without headers; a token never goes in a URL", async () => {
    const { host, viewer } = await pair();
    const issued = await api.post("/api/events/ticket", { roomId: host.roomId }, viewer.token);
    expect(issued.status).toBe(201);
    expect(issued.body).toEqual({ ticket: expect.stringMatching(/^st\./), expiresAt: expect.any(Number), url: `/api/events?roomId=${host.roomId}&ticket=${issued.body.ticket}` });
    expect(JSON.stringify(issued.body)).not.toContain(viewer.token);

    const opened = await openStream(h.url, viewer, { path: issued.body.url, token: null });
    expect(opened.status).toBe(200);
    const sent = await sendCandidate(host, viewer, 3);
    expect(await opened.nextEvent()).toMatchObject({ id: sent.body.id, data: { from: host.peerId } });
    opened.close();

    const again = await openStream(h.url, viewer, { path: issued.body.url, token: null });
    expect([again.status, again.problem.code]).toEqual([401, "invalid_ticket"]);
    const other = await createRoom(api);
    const ticket = (await api.post("/api/events/ticket", { roomId: host.roomId }, viewer.token)).body.ticket;
    const elsewhere = await openStream(h.url, viewer, { path: `/api/events?roomId=${other.roomId}&ticket=${ticket}`, token: null });
    expect([elsewhere.status, elsewhere.problem.code]).toEqual([401, "invalid_ticket"]);
    const tokenInUrl = await openStream(h.url, viewer, { path: `/api/events?roomId=${host.roomId}&token=${viewer.token}`, token: null });
    expect([tokenInUrl.status, tokenInUrl.problem.code]).toEqual([401, "missing_token"]);
    const forged = await api.post("/api/events/ticket", { roomId: host.roomId }, `${viewer.peerId}.${"x".repeat(32)}`);
    expect([forged.status, forged.body.code]).toEqual([401, "invalid_token"]);
  });

  test("a refused stream is a problem document, never a stream", async () => {
    const { host } = await pair();
    const cases: [Parameters<typeof openStream>[2], number, string, string?][] = [
      [{ token: null }, 401, "missing_token"],
      [{ lastEventId: "yesterday" }, 400, "invalid_request", "Last-Event-ID"],
      [{ after: "nope" }, 400, "invalid_request", "after"],
    ];
    for (const [options, status, code, field] of cases) {
      const refused = await openStream(h.url, host, options);
      expect([refused.status, refused.headers.get("content-type"), refused.problem.code]).toEqual([status, "application/problem+json; charset=utf-8", code]);
      if (field) expect(refused.problem.errors[0].field).toBe(field);
    }
  });
});
