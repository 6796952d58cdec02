// npm's `prepare` (after npm install / npm ci): builds the pages into web/dist with vite. A
// production install (npm ci --omit=dev) has no vite: it keeps the pages a build step made
// before it (the README's production start), and says so if there are none.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";

let vite;
try {
  vite = createRequire(import.meta.url).resolve("vite/package.json");
} catch {
  vite = null;
}
if (!vite) {
  console.log(existsSync("web/dist/index.html")
    ? "signalbox: pages already built (web/dist); vite is not installed (a production install)"
    : "signalbox: the pages are not built and vite is not installed: run `npm ci && npm run build` before `npm ci --omit=dev`");
  process.exit(0);
}
const run = spawnSync("npx", ["vite", "build", "web", "--logLevel", "warn"], { stdio: "inherit" });
process.exit(run.status ?? 1);
