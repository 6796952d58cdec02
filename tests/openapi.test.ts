/**
 * The OpenAPI document matches what is served: one path per file in api/, the methods each
 * function answers, and the statuses it really gives — so the document cannot drift from
 * the routes.
 */
import { readdir } from "node:fs/promises";
import { describe, expect } from "vitest";
import { routes } from "../lib/routes/index.js";
import { apiClient, createRoom, useHarness, type Api, type Harness } from "./support/harness.js";

const apiDir = new URL("../api/", import.meta.url);

/** api/session/peer.ts → /api/session/peer, api/events/index.ts → /api/events, as Vercel and lib/server.ts route them. */
async function functionFiles(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const file of await readdir(apiDir, { recursive: true })) {
    if (file.endsWith(".ts")) files.set(`/api/${file.slice(0, -3)}`.replace(/\/index$/, ""), file);
  }
  return files;
}

describe("OpenAPI document", () => {
  let h: Harness;
  let api: Api;
  let doc: any;
  const test = useHarness("memory", async (started) => {
    h = started;
    api = apiClient(h.url);
  });

  test("is served at /api/openapi.json as OpenAPI 3.1", async () => {
    const res = await api.get("/api/openapi.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    doc = res.body;
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  test("has one path per function in api/, each exporting its routes-table entry", async () => {
    const files = await functionFiles();
    expect([...files.keys()].sort()).toEqual(Object.keys(doc.paths).sort());
    for (const [path, file] of files) {
      const module = await import(new URL(file, apiDir).href);
      expect(module.default, path).toBe(routes[path as keyof typeof routes]);
    }
  });

  test("lists exactly the methods each function answers, and each other method gets 405", async () => {
    for (const path of Object.keys(doc.paths)) {
      const documented = Object.keys(doc.paths[path]).map((m) => m.toUpperCase()).sort();
      for (const method of ["GET", "POST", "DELETE", "PUT", "PATCH"]) {
        const res = await api.call(method, path);
        if (documented.includes(method)) expect(res.status, `${method} ${path}`).not.toBe(405);
        else {
          expect(res.status, `${method} ${path}`).toBe(405);
          expect(res.headers.get("allow")!.split(", ").sort()).toEqual(documented);
        }
      }
    }
  });

  test("documents the status of each method's empty request, and of a valid call", async () => {
    const host = await createRoom(api);
    for (const [path, methods] of Object.entries<any>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(methods)) {
        const res = await api.call(method.toUpperCase(), path);
        expect(Object.keys(op.responses), `${method} ${path} answered ${res.status}`).toContain(String(res.status));
      }
    }
    // A few calls that succeed, against their documented success statuses.
    const calls: [string, string, unknown?][] = [
      ["post", "/api/rooms", {}],
      ["get", `/api/peers?roomId=${host.roomId}`],
      ["get", `/api/poll?roomId=${host.roomId}`],
      ["post", "/api/chat", { roomId: host.roomId, text: "hi" }],
      ["get", `/api/ice-servers?roomId=${host.roomId}`],
      ["get", "/api/diagnostics"],
    ];
    for (const [method, url, body] of calls) {
      const res = await api.call(method.toUpperCase(), url, { body, token: host.token });
      const op = doc.paths[url.split("?")[0]][method];
      expect(Object.keys(op.responses), `${method} ${url}`).toContain(String(res.status));
      expect(res.status).toBeLessThan(300);
    }
  });

  test("takes its parameters and bodies from the request schemas", () => {
    const poll = doc.paths["/api/poll"].get;
    expect(poll.parameters.map((p: any) => [p.name, p.required])).toEqual([["roomId", true], ["after", false], ["wait", false]]);
    expect(poll.parameters[2].schema).toMatchObject({ type: "number", minimum: 0, maximum: 25 });
    expect(poll.security).toEqual([{ bearer: [] }]);
    const candidate = doc.paths["/api/candidate"].post.requestBody.content["application/json"].schema;
    expect(candidate.required).toEqual(["roomId", "to", "candidates"]);
    expect(candidate.properties.candidates).toMatchObject({ type: "array", minItems: 1, maxItems: 64 });
    expect(candidate.additionalProperties).toBe(false);
    expect(Object.keys(doc.paths["/api/session"].post.requestBody.content)).toEqual(["application/json", "application/sdp"]);
    expect(doc.paths["/api/rooms"].post.security).toEqual([{}, { bearer: [] }]);
    // The event stream: its content type, the cursor header, and a ticket in the query standing in for the bearer.
    const events = doc.paths["/api/events"].get;
    expect(Object.keys(events.responses["200"].content)).toEqual(["text/event-stream"]);
    expect(events.parameters.map((p: any) => [p.name, p.in])).toEqual([["roomId", "query"], ["after", "query"], ["ticket", "query"], ["Last-Event-ID", "header"]]);
    expect(events.security).toEqual([{ bearer: [] }, {}]);
  });
});
