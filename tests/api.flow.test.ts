/**
 * The signaling flows over HTTP, through the real local server, on both stores:
 * star and mesh exchanges, long-polls, lossless polling and single-use takes under races.
 */
import { describe, expect } from "vitest";
import { apiClient, useHarness, createRoom, drain, joinRoom, ALL_STORES, waitingReadBegins, type Api, type Harness, type Peer } from "./support/harness.js";

const offer = (n: number | string) => ({ type: "offer", sdp: `v=0\r\no=- ${n} 2 IN IP4 127.0.0.1\r\n` });
const answer = (n: number | string) => ({ type: "answer", sdp: `v=0\r\no=- ${n} 2 IN IP4 127.0.0.1\r\n` });
const cand = (tag: string) => ({ candidate: `candidate:${tag} 1 udp 2122260223 127.0.0.1 50000 typ host`, sdpMid: "0", sdpMLineIndex: 0 });

/** Polls with the cursor until `count` messages arrived. */
async function collect(api: Api, peer: Peer, count: number, state: { cursor?: string } = {}) {
  const messages: any[] = [];
  while (messages.length < count) {
    const res = await api.get(`/api/poll?roomId=${peer.roomId}&wait=5${state.cursor ? `&after=${state.cursor}` : ""}`, peer.token);
    if (res.status === 204) continue;
    expect(res.status).toBe(200);
    messages.push(...res.body.messages);
    state.cursor = res.body.cursor;
  }
  return messages;
}

describe.each(ALL_STORES)("signaling over HTTP [%s]", (kind) => {
  let h: Harness;
  let api: Api;
  const test = useHarness(kind, (started) => {
    h = started;
    api = apiClient(h.url);
  });

  test("star: one host and five viewers exchange offers, answers and candidates", async () => {
    const host = await createRoom(api, { name: "Host" });
    expect(host.body).toMatchObject({ roomId: expect.stringMatching(/^[a-z2-9]{10}$/), iceServers: [], expiresAt: expect.any(Number) });
    const viewers: Peer[] = [];
    for (let i = 0; i < 5; i++) {
      const v = await joinRoom(api, host.roomId, `Viewer ${i}`);
      expect(v.body.peers.map((p: any) => p.peerId)).toContain(host.peerId);
      viewers.push(v);
    }
    const hostState = {};
    const joined = await collect(api, host, 5, hostState);
    expect(joined.map((m) => m.type)).toEqual(Array(5).fill("peer-joined"));
    expect(joined.map((m) => m.peer.peerId)).toEqual(viewers.map((v) => v.peerId));

    await Promise.all(
      viewers.map(async (v, i) => {
        const sent = await api.post("/api/offer", { roomId: host.roomId, to: v.peerId, description: offer(i) }, host.token);
        expect([sent.status, sent.body]).toEqual([201, { id: expect.stringMatching(/^\d+-\d+$/) }]);
        await api.post("/api/candidate", { roomId: host.roomId, to: v.peerId, candidates: [cand(`h${i}a`), cand(`h${i}b`), null] }, host.token);
      }),
    );
    await Promise.all(
      viewers.map(async (v, i) => {
        const taken = await api.get(`/api/offer?roomId=${v.roomId}&wait=5`, v.token);
        expect(taken.status).toBe(200);
        expect(taken.body.messages).toEqual([{ id: expect.any(String), type: "offer", from: host.peerId, at: expect.any(Number), description: offer(i) }]);
        const candidates = await api.get(`/api/candidate?roomId=${v.roomId}`, v.token);
        expect(candidates.body.messages[0].candidates).toEqual([cand(`h${i}a`), cand(`h${i}b`), null]);
        expect((await api.post("/api/answer", { roomId: v.roomId, to: host.peerId, description: answer(i) }, v.token)).status).toBe(201);
        expect((await api.post("/api/candidate", { roomId: v.roomId, to: host.peerId, candidates: [cand(`v${i}`)] }, v.token)).status).toBe(201);
        // Taken messages are gone from the viewer's poll too.
        expect((await api.get(`/api/poll?roomId=${v.roomId}`, v.token)).status).toBe(204);
      }),
    );
    const replies = await collect(api, host, 10, hostState);
    for (const [i, v] of viewers.entries()) {
      const fromV = replies.filter((m) => m.from === v.peerId);
      expect(fromV.map((m) => m.type)).toEqual(["answer", "candidate"]);
      expect(fromV[0].description).toEqual(answer(i));
      expect(fromV[1].candidates).toEqual([cand(`v${i}`)]);
    }
    const listed = await api.get(`/api/peers?roomId=${host.roomId}`, viewers[0].token);
    expect(listed.body.peers).toHaveLength(6);
    expect(JSON.stringify(listed.body)).not.toMatch(/token|[0-9a-f]{64}/);
  });

  test("mesh: four peers each connect with every other", async () => {
    const first = await createRoom(api, { topology: "mesh" });
    const peers: Peer[] = [first];
    for (let i = 0; i < 3; i++) peers.push(await joinRoom(api, first.roomId));
    // The newer peer of each pair offers; each peer answers every offer it reads.
    const states = peers.map(() => ({}) as { cursor?: string });
    await Promise.all(
      peers.map(async (p, i) => {
        for (const other of peers.slice(0, i)) {
          expect((await api.post("/api/offer", { roomId: p.roomId, to: other.peerId, description: offer(`${i}`) }, p.token)).status).toBe(201);
        }
      }),
    );
    await Promise.all(
      peers.map(async (p, i) => {
        const expected = peers.length - 1 - i; // offers from every newer peer
        const joins = peers.length - 1 - i; // and a peer-joined from each of them
        const got = await collect(api, p, expected + joins, states[i]);
        const offers = got.filter((m) => m.type === "offer");
        expect(offers.map((m) => m.from).sort()).toEqual(peers.slice(i + 1).map((x) => x.peerId).sort());
        for (const o of offers) {
          expect((await api.post("/api/answer", { roomId: p.roomId, to: o.from, description: answer(i) }, p.token)).status).toBe(201);
        }
      }),
    );
    await Promise.all(
      peers.map(async (p, i) => {
        const answers = (await collect(api, p, i, states[i])).filter((m) => m.type === "answer");
        expect(answers.map((m) => m.from).sort()).toEqual(peers.slice(0, i).map((x) => x.peerId).sort());
      }),
    );
  });

  test("a long-poll answers as soon as a message arrives, and 204 when its wait ends", async () => {
    const host = await createRoom(api);
    const viewer = await joinRoom(api, host.roomId);
    await drain(api, host);
    // The poll's first read has run (found nothing) before the answer is sent: only a wake-up can answer it.
    const hostWaits = await waitingReadBegins(h, host);
    const waiting = api.get(`/api/poll?roomId=${host.roomId}&wait=20`, host.token);
    await hostWaits();
    const postedAt = performance.now();
    await api.post("/api/answer", { roomId: viewer.roomId, to: host.peerId, description: answer(1) }, viewer.token);
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.body.messages[0]).toMatchObject({ type: "answer", from: viewer.peerId });
    expect(performance.now() - postedAt, "promptly, not at the 20 s deadline").toBeLessThan(3000);

    const viewerWaits = await waitingReadBegins(h, viewer);
    const typed = api.get(`/api/offer?roomId=${viewer.roomId}&wait=20`, viewer.token);
    await viewerWaits();
    const sentAt = performance.now();
    await api.post("/api/offer", { roomId: host.roomId, to: viewer.peerId, description: offer(2) }, host.token);
    expect((await typed).status).toBe(200);
    expect(performance.now() - sentAt).toBeLessThan(3000);

    const started = performance.now();
    const empty = await api.get(`/api/poll?roomId=${viewer.roomId}&wait=1`, viewer.token);
    const took = performance.now() - started;
    expect(empty.status).toBe(204);
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(5000);
  });

  test("a poll whose response is lost is repeated with the same cursor and returns the same messages", async () => {
    const host = await createRoom(api);
    const viewer = await joinRoom(api, host.roomId);
    for (let n = 0; n < 3; n++) await api.post("/api/candidate", { roomId: host.roomId, to: viewer.peerId, candidates: [cand(`c${n}`)] }, host.token);
    const first = await api.get(`/api/poll?roomId=${viewer.roomId}`, viewer.token);
    const lost = await api.get(`/api/poll?roomId=${viewer.roomId}&after=${first.body.messages[0].id}`, viewer.token);
    // The client never saw `lost`; it asks again with the same cursor.
    const again = await api.get(`/api/poll?roomId=${viewer.roomId}&after=${first.body.messages[0].id}`, viewer.token);
    expect(again.body).toEqual(lost.body);
    expect(again.body.messages.map((m: any) => m.candidates[0].candidate)).toEqual([cand("c1").candidate, cand("c2").candidate]);
    expect(again.body.cursor).toBe(again.body.messages[1].id);
  });

  test("nothing is lost across 1000 messages read by a client that drops every third response", async () => {
    const host = await createRoom(api);
    const viewer = await joinRoom(api, host.roomId);
    const total = 1000;
    const sending = (async () => {
      for (let n = 0; n < total; n += 10) {
        const batch = Array.from({ length: 10 }, (_, k) => n + k);
        await Promise.all(batch.map((i) => api.post("/api/candidate", { roomId: host.roomId, to: viewer.peerId, candidates: [cand(`m${i}`)] }, host.token)));
      }
    })();
    const received: string[] = [];
    let cursor: string | undefined;
    let responses = 0;
    let dropped = 0;
    while (received.length < total) {
      const res = await api.get(`/api/poll?roomId=${viewer.roomId}&wait=5${cursor ? `&after=${cursor}` : ""}`, viewer.token);
      if (res.status === 204) continue;
      expect(res.status).toBe(200);
      if (++responses % 3 === 0) {
        dropped++;
        continue; // lost on the wire: neither the messages nor the cursor reach the client
      }
      received.push(...res.body.messages.map((m: any) => m.candidates[0].candidate.split(" ")[0]));
      cursor = res.body.cursor;
    }
    await sending;
    expect(dropped).toBeGreaterThan(0);
    // Concurrent sends may interleave within a batch of 10; across the whole run each arrives once.
    expect(received).toHaveLength(total);
    expect(new Set(received).size).toBe(total);
    expect([...received].sort()).toEqual(Array.from({ length: total }, (_, i) => `candidate:m${i}`).sort());
    expect((await api.get(`/api/poll?roomId=${viewer.roomId}&after=${cursor}`, viewer.token)).status).toBe(204);
    // Reads return at most 100 at once: with 150 pending, a read returns exactly the first 100.
    for (let i = 0; i < 150; i++) await api.post("/api/candidate", { roomId: host.roomId, to: viewer.peerId, candidates: [cand(`late${i}`)] }, host.token);
    const batch = await api.get(`/api/poll?roomId=${viewer.roomId}&after=${cursor}`, viewer.token);
    expect(batch.body.messages.map((m: any) => m.candidates[0])).toEqual(Array.from({ length: 100 }, (_, i) => cand(`late${i}`)));
  });

  test("20 concurrent takes of one offer: exactly one gets it", async () => {
    const host = await createRoom(api);
    const viewer = await joinRoom(api, host.roomId);
    await api.post("/api/offer", { roomId: host.roomId, to: viewer.peerId, description: offer("once") }, host.token);
    const results = await Promise.all(Array.from({ length: 20 }, () => api.get(`/api/offer?roomId=${viewer.roomId}`, viewer.token)));
    const winners = results.filter((r) => r.status === 200);
    expect(winners).toHaveLength(1);
    expect(winners[0].body.messages).toHaveLength(1);
    expect(results.filter((r) => r.status === 204)).toHaveLength(19);
  });

  test("500 candidates pushed concurrently with concurrent takes: each taken exactly once", async () => {
    const host = await createRoom(api);
    const viewer = await joinRoom(api, host.roomId);
    const total = 500;
    let sent = 0;
    const pushers = Array.from({ length: 10 }, async (_, w) => {
      for (let i = w; i < total; i += 10) {
        expect((await api.post("/api/candidate", { roomId: host.roomId, to: viewer.peerId, candidates: [cand(`k${i}`)] }, host.token)).status).toBe(201);
        sent++;
      }
    });
    const taken: string[] = [];
    const takers = Array.from({ length: 5 }, async () => {
      while (sent < total || taken.length < total) {
        const res = await api.get(`/api/candidate?roomId=${viewer.roomId}`, viewer.token);
        if (res.status === 200) for (const m of res.body.messages) taken.push(...m.candidates.map((c: any) => c.candidate.split(" ")[0]));
        else if (sent >= total && res.status === 204) break;
      }
    });
    await Promise.all([...pushers, ...takers]);
    expect(taken).toHaveLength(total);
    expect(new Set(taken).size).toBe(total);
  });
});
