/**
 * A Redis that has forgotten its scripts (restarted, failed over, SCRIPT FLUSH): the store sends
 * each script by its SHA, Redis answers NOSCRIPT, and the script itself goes next — on every
 * transport, the rate limiter's scripts included. Redis's own error count shows the NOSCRIPT path
 * was taken, not skipped because another suite had loaded the scripts again first.
 */
import { createClient } from "redis";
import { describe, expect } from "vitest";
import { apiClient, clusterUrl, createRoom, drain, joinRoom, redisUrl, useHarness, type Api, type StoreKind } from "./support/harness.js";
import { masterPorts } from "./support/redis-cluster.js";

/** What every server `kind` runs its scripts on answers to `command`. */
async function onEveryServer(kind: StoreKind, command: string[]): Promise<string[]> {
  const urls = kind === "redis-cluster" ? (await masterPorts(clusterUrl())).map((port) => `redis://127.0.0.1:${port}`) : [redisUrl()];
  return Promise.all(
    urls.map(async (url) => {
      const client = createClient({ url });
      await client.connect();
      try {
        return String(await client.sendCommand(command));
      } finally {
        await client.quit();
      }
    }),
  );
}

const noscriptErrors = async (kind: StoreKind) =>
  (await onEveryServer(kind, ["INFO", "errorstats"])).reduce((n, info) => n + Number(/errorstat_NOSCRIPT:count=(\d+)/.exec(info)?.[1] ?? 0), 0);

describe.each(["redis", "redis-tcp", "redis-cluster"] satisfies StoreKind[])("a Redis with an empty script cache [%s]", (kind) => {
  let api: Api;
  const test = useHarness(kind, (h) => (api = apiClient(h.url)));

  test("every kind of call still succeeds after SCRIPT FLUSH, each script sent again", async () => {
    const host = await createRoom(api);
    const viewer = await joinRoom(api, host.roomId);
    const before = await noscriptErrors(kind);
    expect(await onEveryServer(kind, ["SCRIPT", "FLUSH"])).toEqual(expect.arrayContaining(["OK"]));

    const late = await joinRoom(api, host.roomId);
    const offer = { roomId: host.roomId, to: viewer.peerId, description: { type: "offer", sdp: "v=0\r\n" } };
    expect((await api.post("/api/offer", offer, host.token)).status).toBe(201);
    expect((await api.post("/api/candidate", { roomId: host.roomId, to: viewer.peerId, candidates: [null] }, host.token)).status).toBe(201);
    expect((await drain(api, viewer)).messages.map((m) => m.type)).toEqual(expect.arrayContaining(["offer", "candidate"]));
    expect((await api.post("/api/answer", { ...offer, to: host.peerId, description: { type: "answer", sdp: "v=0\r\n" } }, viewer.token)).status).toBe(201);
    expect((await api.post("/api/chat", { roomId: host.roomId, text: "still here" }, late.token)).status).toBe(201);
    expect((await api.del(`/api/peers?roomId=${host.roomId}&peerId=${late.peerId}`, late.token)).status).toBe(204);
    expect((await api.del(`/api/rooms?roomId=${host.roomId}`, host.token)).status).toBe(204);

    expect(await noscriptErrors(kind), "Redis answered NOSCRIPT, and the store sent the script").toBeGreaterThan(before);
  });
});
