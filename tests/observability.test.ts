/** What operators see and what browsers are told: request logs and security headers. */
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_HEADERS, PAGE_HEADERS } from "../lib/http/security-headers.js";
import { apiClient, createRoom, joinRoom, startHarness, type Harness } from "./support/harness.js";

describe("request logs and security headers", () => {
  let h: Harness;
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  beforeAll(async () => {
    h = await startHarness("memory", { LOG_LEVEL: "info" });
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => (lines.push(String(chunk)), write(chunk, ...(rest as [])))) as typeof process.stdout.write;
  });
  afterAll(async () => {
    process.stdout.write = write;
    await h?.close();
  });

  it("logs one JSON line per request, with no token, SDP or body", async () => {
    const api = apiClient(h.url);
    const host = await createRoom(api);
    const viewer = await joinRoom(api, host.roomId);
    const sdp = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n";
    const res = await api.post("/api/offer", { roomId: host.roomId, to: viewer.peerId, description: { type: "offer", sdp } }, host.token);
    const requestId = res.headers.get("x-request-id")!;
    // The line is written when the response finishes, which the client may see first.
    for (let waited = 0; !lines.join("").includes(requestId); waited += 5) {
      expect(waited, "the request's log line").toBeLessThan(5000);
      await new Promise((r) => setTimeout(r, 5));
    }
    const logged = lines.flatMap((l) => l.split("\n")).filter(Boolean).map((l) => JSON.parse(l));
    const line = logged.find((l) => l.requestId === requestId);
    expect(line).toEqual({ time: expect.any(String), level: "info", requestId, method: "POST", route: "/api/offer", status: 201, durationMs: expect.any(Number), roomId: host.roomId });
    const all = lines.join("");
    for (const secret of [host.token, viewer.token, "4611731400430051336", host.token.split(".")[1]]) expect(all).not.toContain(secret);
  });

  /** The JSON lines logged for a request, once its access line is out. */
  async function linesOf(requestId: string) {
    for (let waited = 0; !lines.join("").includes(`"requestId":"${requestId}","method"`); waited += 5) {
      expect(waited, "the request's log line").toBeLessThan(5000);
      await new Promise((r) => setTimeout(r, 5));
    }
    return lines.flatMap((l) => l.split("\n")).filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.requestId === requestId);
  }

  it("logs how long each request took, in ms to a tenth, a long-poll its whole wait", async () => {
    const api = apiClient(h.url);
    const host = await createRoom(api);
    const quick = await linesOf((await api.get(`/api/peers?roomId=${host.roomId}`, host.token)).headers.get("x-request-id")!);
    expect(quick[0].durationMs).toBeGreaterThanOrEqual(0);
    expect(quick[0].durationMs).toBeLessThan(2000);
    expect(Math.round(quick[0].durationMs * 10)).toBeCloseTo(quick[0].durationMs * 10, 6);
    const waited = await linesOf((await api.get(`/api/poll?roomId=${host.roomId}&wait=1`, host.token)).headers.get("x-request-id")!);
    expect(waited[0].durationMs).toBeGreaterThanOrEqual(900);
    expect(waited[0].durationMs).toBeLessThan(5000);
  });

  it("a refused request is its one access line: problems the client caused are not logged again", async () => {
    const api = apiClient(h.url);
    for (const res of [await api.post("/api/rooms", { topology: "ring" }), await api.get("/api/peers?roomId=zzzzzzzzzz", "x"), await api.post("/api/peers", { roomId: "zzzzzzzzzz" })]) {
      const logged = await linesOf(res.headers.get("x-request-id")!);
      expect(logged, JSON.stringify(logged)).toEqual([expect.objectContaining({ level: "info", status: res.status })]);
    }
  });

  it("sends the API's and the pages' security headers, and vercel.json gives Vercel's pages the same", async () => {
    const api = await fetch(`${h.url}/api/diagnostics`);
    for (const [name, value] of Object.entries(API_HEADERS)) expect(api.headers.get(name), name).toBe(value);
    const page = await fetch(`${h.url}/host.html`);
    expect(page.status).toBe(200);
    for (const [name, value] of Object.entries(PAGE_HEADERS)) expect(page.headers.get(name), name).toBe(value);
    const vercel = JSON.parse(await readFile(new URL("../vercel.json", import.meta.url), "utf8"));
    const pages = vercel.headers.find((rule: { source: string }) => rule.source === "/((?!api/).*)");
    expect(Object.fromEntries(pages.headers.map((h: { key: string; value: string }) => [h.key, h.value]))).toEqual(PAGE_HEADERS);
  });
});
