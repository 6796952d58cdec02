/**
 * Checks what `vercel build` wrote to .vercel/output (CI runs it offline, then this):
 * one function per file in api/, each given more time than the longest long-poll, the pages
 * as static files with their security headers, and the built functions actually answering.
 *
 *   npx vercel@60 build --yes && npx tsx scripts/check-vercel-build.ts
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { LIMITS } from "../lib/schemas.js";

const root = new URL("../", import.meta.url).pathname;
const output = join(root, ".vercel/output");
const failures: string[] = [];
const check = (ok: boolean, what: string) => (ok ? console.log(`ok   ${what}`) : failures.push(what));

async function files(dir: string, suffix: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).filter((f) => f.endsWith(suffix)).map((f) => f.slice(0, -suffix.length)).sort();
}

/** Serves one built function on a free port and makes one request to it. */
async function callBuilt(name: string, method: string, body?: unknown) {
  const config = JSON.parse(await readFile(join(output, "functions/api", `${name}.func/.vc-config.json`), "utf8"));
  const module = await import(pathToFileURL(join(output, "functions/api", `${name}.func`, config.handler)).href);
  const handler = (module.default?.default ?? module.default) as (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  const server = createServer((req, res) => void handler(req, res));
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  try {
    const { port } = server.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${port}/api/${name}`, {
      method,
      headers: body ? { "content-type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: await res.json() };
  } finally {
    server.close();
  }
}

const routes = await files(join(root, "api"), ".ts");
const functions = await files(join(output, "functions/api"), ".func/.vc-config.json");
check(JSON.stringify(functions) === JSON.stringify(routes), `one function per route file: ${functions.join(", ")}`);

for (const name of functions) {
  const config = JSON.parse(await readFile(join(output, "functions/api", `${name}.func/.vc-config.json`), "utf8"));
  check(config.maxDuration > LIMITS.maxWaitSeconds, `api/${name}: maxDuration ${config.maxDuration} s outlasts a ${LIMITS.maxWaitSeconds} s long-poll (${config.runtime})`);
}

for (const page of ["index.html", "host.html", "view.html", "meet.html", "ai.html"]) {
  check(Boolean(await stat(join(output, "static", page)).catch(() => null)), `static page ${page}`);
}
const config = JSON.parse(await readFile(join(output, "config.json"), "utf8"));
const pageHeaders = config.routes.find((r: { headers?: Record<string, string> }) => r.headers?.["content-security-policy"])?.headers ?? {};
check(/frame-ancestors 'none'/.test(pageHeaders["content-security-policy"] ?? "") && pageHeaders["x-content-type-options"] === "nosniff", "pages carry the CSP and nosniff headers");

// The bundles run: health, and a room created, with no configuration (memory store).
const health = await callBuilt("diagnostics", "GET");
check(health.status === 200 && health.body.status === "ok", `built api/diagnostics answers: ${health.status} ${health.body.status}`);
const room = await callBuilt("rooms", "POST", { topology: "mesh" });
check(room.status === 201 && /^[a-z0-9]{10}$/.test(room.body.roomId), `built api/rooms creates a room: ${room.status}`);

if (failures.length) {
  for (const f of failures) console.error(`FAIL ${f}`);
  process.exit(1);
}
