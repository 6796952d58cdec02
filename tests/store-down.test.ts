/** With Redis unreachable, routes answer 503 store_unavailable promptly: never a 500, never a hang. */
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "../lib/server.js";
import { apiClient, TEST_ENV, type Api } from "./support/harness.js";

/** A port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Both transports, pointed at a port nothing listens on. */
const TRANSPORTS = {
  rest: (port: number) => ({ UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${port}`, UPSTASH_REDIS_REST_TOKEN: "t" }),
  tcp: (port: number) => ({ REDIS_URL: `redis://127.0.0.1:${port}` }),
};

describe.each(Object.entries(TRANSPORTS))("store unavailable over %s", (_, storeEnv) => {
  let server: RunningServer;
  let api: Api;
  // Error lines go to stderr.
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  beforeAll(async () => {
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => (lines.push(String(chunk)), write(chunk, ...(rest as [])))) as typeof process.stderr.write;
    const port = await closedPort();
    server = await startServer({
      env: { ...TEST_ENV, ...storeEnv(port) },
      port: 0,
    });
    api = apiClient(server.url);
  });
  afterAll(async () => {
    process.stderr.write = write;
    lines.length = 0;
    await server?.close();
  });

  it("diagnostics says the store is unreachable with 503", async () => {
    const res = await api.get("/api/diagnostics");
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ code: "store_unavailable", store: { kind: "redis", reachable: false } });
    expect(res.headers.get("retry-after")).toBe("2");
  });

  it("every kind of route answers 503 within seconds, long-polls included", async () => {
    const token = `${"a".repeat(10)}.${"b".repeat(32)}`;
    const started = performance.now();
    const results = await Promise.all([
      api.post("/api/rooms", {}),
      api.post("/api/peers", { roomId: "abcdefghjk" }),
      api.post("/api/offer", { roomId: "abcdefghjk", to: "abcdefghjm", description: { type: "offer", sdp: "v=0" } }, token),
      api.get("/api/poll?roomId=abcdefghjk&wait=20", token),
      api.get("/api/candidate?roomId=abcdefghjk&wait=20", token),
    ]);
    for (const res of results) {
      expect(res.status, JSON.stringify(res.body)).toBe(503);
      expect(res.body.code).toBe("store_unavailable");
      expect(JSON.stringify(res.body)).not.toContain("127.0.0.1");
    }
    expect(performance.now() - started).toBeLessThan(10_000);
    // The limiter could not count them either: no RateLimit headers that would be made up.
    for (const res of results) expect(res.headers.get("ratelimit-remaining")).toBeNull();
    // Each is logged as what went wrong, in words, without the command (which holds token hashes and SDP).
    const logged = lines.join("").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    for (const res of results) {
      const line = logged.find((l) => l.requestId === res.headers.get("x-request-id") && l.level === "error");
      expect(line, "an error line for each").toMatchObject({ error: "store_unavailable", cause: expect.stringMatching(/\S/) });
      expect(line.cause).not.toContain("command was");
    }
  });
});
