/**
 * A Redis Cluster losing a master mid-session. With no replica to fail over to, the rooms on
 * that master's slots answer 503 (store_unavailable) and every other room carries on (the
 * cluster runs with `cluster-require-full-coverage no`, as an operator who wants that must set:
 * by default a cluster missing a slot refuses every command, and every room would answer 503).
 * With a replica, it takes over: that master's rooms answer 503 for the seconds the failover
 * takes, then carry on with their peers and mail, and clients resume by themselves.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "redis";
import { SignalingClient, type Message } from "../lib/client/signaling-client.js";
import { apiClient, available, createRoom, joinRoom, startHarness, until, type Api, type Harness, type Peer } from "./support/harness.js";
import { ownerOf, startCluster, type RunningCluster } from "./support/redis-cluster.js";

/**
 * For one suite: a cluster of 3 masters with `replicas` each, quick to notice a node down
 * (`cluster-node-timeout 1000`), that serves the slots it still has; and a server on it.
 */
function clusterWithServer(replicas: number) {
  const s = {} as { cluster: RunningCluster; h: Harness; api: Api };
  beforeAll(async () => {
    s.cluster = (await startCluster(3, ["--cluster-require-full-coverage", "no", "--cluster-node-timeout", "1000"], replicas))!;
    s.h = await startHarness("redis-cluster", { REDIS_URL: s.cluster.url, REDIS_TIMEOUT_MS: "1000" });
    s.api = apiClient(s.h.url);
  }, 60_000);
  afterAll(async () => {
    await s.h?.close();
    s.cluster?.stop();
  });
  return s;
}

describe.skipIf(!available("redis-cluster"))("a cluster master lost mid-session [redis-cluster]", () => {
  const s = clusterWithServer(0);

  it("waiting reads one after another reuse each master's subscription connection (no connection per wait)", async () => {
    const { cluster, api } = s;
    const host = await createRoom(api);
    const port = await ownerOf(cluster.url, `sb:{${host.roomId}}`);
    const accepted = async () => {
      const client = createClient({ url: `redis://127.0.0.1:${port}` });
      await client.connect();
      try {
        return Number(/total_connections_received:(\d+)/.exec(await client.info("stats"))![1]);
      } finally {
        await client.quit();
      }
    };
    await api.get(`/api/poll?roomId=${host.roomId}&wait=1`, host.token); // whatever a first wait sets up
    const before = await accepted();
    for (let i = 0; i < 5; i++) expect((await api.get(`/api/poll?roomId=${host.roomId}&wait=1`, host.token)).status).toBe(204);
    // Our own inspecting connection is the one new connection.
    expect((await accepted()) - before).toBe(1);
  });

  it("rooms on the lost master's slots answer 503; rooms on the others carry on", { timeout: 60_000 }, async () => {
    const { cluster, api } = s;
    const rooms: { host: Peer; viewer: Peer; port: number }[] = [];
    while (new Set(rooms.map((r) => r.port)).size < 3 || rooms.length < 9) {
      const host = await createRoom(api, { topology: "mesh" });
      rooms.push({ host, viewer: await joinRoom(api, host.roomId), port: await ownerOf(cluster.url, `sb:{${host.roomId}}`) });
    }
    const lost = rooms[0].port;
    cluster.kill(lost);
    await new Promise((r) => setTimeout(r, 500));
    for (const { host, viewer, port } of rooms) {
      const chat = await api.post("/api/chat", { roomId: host.roomId, text: "still here?" }, viewer.token);
      const peers = await api.get(`/api/peers?roomId=${host.roomId}`, host.token);
      if (port === lost) {
        expect([chat.status, chat.body.code], `a room on the lost master`).toEqual([503, "store_unavailable"]);
        expect(peers.status).toBe(503);
      } else {
        expect(chat.status, `a room on a live master: ${JSON.stringify(chat.body)}`).toBe(201);
        expect(peers.body.peers).toHaveLength(2);
      }
    }
    expect(rooms.filter((r) => r.port === lost).length).toBeGreaterThan(0);
    expect(rooms.filter((r) => r.port !== lost).length).toBeGreaterThan(0);
  });
});

/** Blocks until `port`'s master has handed every write so far to a replica (replication is asynchronous). */
async function replicated(port: number, roomId: string) {
  const client = createClient({ url: `redis://127.0.0.1:${port}` });
  await client.connect();
  try {
    // WAIT counts from this connection's own last write: make one in the room's slot.
    const probe = `test:{${roomId}}:replicated`;
    await client.set(probe, "1", { PX: 1000 });
    expect(Number(await client.sendCommand(["WAIT", "1", "5000"]))).toBe(1);
  } finally {
    await client.quit();
  }
}

describe.skipIf(!available("redis-cluster"))("a cluster master failing over to its replica [redis-cluster]", () => {
  const s = clusterWithServer(1);

  it("its rooms answer 503 while the replica takes over, then carry on with their peers and mail; the client resumes by itself", { timeout: 90_000 }, async () => {
    const { cluster, h, api } = s;
    const rooms: { host: Peer; viewer: Peer; port: number }[] = [];
    while (new Set(rooms.map((r) => r.port)).size < 2) {
      const host = await createRoom(api);
      rooms.push({ host, viewer: await joinRoom(api, host.roomId), port: await ownerOf(cluster.url, `sb:{${host.roomId}}`) });
    }
    const { host, port: lost } = rooms[0];
    const others = rooms.filter((r) => r.port !== lost);
    const client = await SignalingClient.joinRoom(host.roomId, {}, { baseUrl: h.url, waitSeconds: 5 });
    const received: Message[] = [];
    client.onMessage((m) => received.push(m));
    client.start();
    const offer = (sdp: string) => api.post("/api/offer", { roomId: host.roomId, to: client.peerId, description: { type: "offer", sdp } }, host.token);
    expect((await offer("v=0 before")).status).toBe(201);
    const sdps = () => received.filter((m) => m.type === "offer").map((m) => (m as { description: { sdp: string } }).description.sdp);
    await until("the first offer", async () => sdps().length === 1);
    await replicated(lost, host.roomId);

    cluster.kill(lost);
    let outage = 0;
    for (const started = Date.now(); ; ) {
      const peers = await api.get(`/api/peers?roomId=${host.roomId}`, host.token);
      if (peers.status === 200) {
        // The replica had it all: the room and its three peers.
        expect(peers.body.peers).toHaveLength(3);
        break;
      }
      expect([peers.status, peers.body.code]).toEqual([503, "store_unavailable"]);
      outage++;
      // Meanwhile the other masters' rooms carry on.
      for (const other of others) expect((await api.get(`/api/peers?roomId=${other.host.roomId}`, other.host.token)).status).toBe(200);
      expect(Date.now() - started, "the failover to end").toBeLessThan(30_000);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(outage, "requests refused while the replica took over").toBeGreaterThan(0);
    expect((await offer("v=0 after")).status).toBe(201);
    await until("the offer sent after the failover", async () => sdps().length === 2, 30_000);
    expect(sdps()).toEqual(["v=0 before", "v=0 after"]);
    client.stop();
  });
});
