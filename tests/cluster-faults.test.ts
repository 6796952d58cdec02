/**
 * A Redis Cluster losing a master mid-session, with no replica to fail over to: the rooms on
 * that master's slots answer 503 (store_unavailable), every other room carries on. The
 * cluster runs with `cluster-require-full-coverage no`, as an operator who wants that must set
 * (by default a cluster missing a slot refuses every command, and every room would answer 503).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "redis";
import { apiClient, available, createRoom, joinRoom, startHarness, type Api, type Harness, type Peer } from "./support/harness.js";
import { startCluster, type RunningCluster } from "./support/redis-cluster.js";

/** The port of the master that holds `key`'s slot. */
async function ownerOf(cluster: RunningCluster, key: string): Promise<number> {
  const client = createClient({ url: cluster.url });
  await client.connect();
  try {
    const slot = Number(await client.sendCommand(["CLUSTER", "KEYSLOT", key]));
    const ranges = (await client.sendCommand(["CLUSTER", "SLOTS"])) as [number, number, [string, number]][];
    const range = ranges.find(([from, to]) => slot >= from && slot <= to)!;
    return Number(range[2][1]);
  } finally {
    await client.quit();
  }
}

describe.skipIf(!available("redis-cluster"))("a cluster master lost mid-session [redis-cluster]", () => {
  let cluster: RunningCluster;
  let h: Harness;
  let api: Api;
  beforeAll(async () => {
    cluster = (await startCluster(3, ["--cluster-require-full-coverage", "no", "--cluster-node-timeout", "1000"]))!;
    h = await startHarness("redis-cluster", { REDIS_URL: cluster.url, REDIS_TIMEOUT_MS: "1000" });
    api = apiClient(h.url);
  }, 30_000);
  afterAll(async () => {
    await h?.close();
    cluster?.stop();
  });

  it("rooms on the lost master's slots answer 503; rooms on the others carry on", { timeout: 60_000 }, async () => {
    const rooms: { host: Peer; viewer: Peer; port: number }[] = [];
    while (new Set(rooms.map((r) => r.port)).size < 3 || rooms.length < 9) {
      const host = await createRoom(api, { topology: "mesh" });
      rooms.push({ host, viewer: await joinRoom(api, host.roomId), port: await ownerOf(cluster, `sb:{${host.roomId}}`) });
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
