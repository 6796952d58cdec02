/**
 * The README's curl walkthrough, as the README has it: `walkthroughScript()` for the tests;
 * run as a script, it runs the walkthrough against BASE (CI does, against `npm run dev`) and
 * checks that the pages are served at / as well.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";

/** A walkthrough block of the README: "walkthrough" (the exchange) or "walkthrough-private" (a key room, a lobby). */
export async function walkthroughScript(name = "walkthrough"): Promise<string> {
  const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
  const block = new RegExp(`<!-- ${name}:start -->\\s*\`\`\`sh\\n([\\s\\S]*?)\`\`\`\\s*<!-- ${name}:end -->`).exec(readme);
  if (!block) throw new Error(`README has no ${name} block`);
  return block[1];
}

/** Runs a walkthrough with bash (-euo pipefail) against `base`; resolves to its output. */
export async function runWalkthrough(base: string, name?: string): Promise<string> {
  const { stdout } = await promisify(execFile)("bash", ["-euo", "pipefail", "-c", await walkthroughScript(name)], { env: { ...process.env, BASE: base }, timeout: 60_000 });
  return stdout;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const base = process.env.BASE ?? "http://127.0.0.1:3000";
  const landing = await fetch(`${base}/`);
  const page = await landing.text();
  if (!landing.ok || !page.includes("<title>signalbox")) throw new Error(`${base}/ does not serve the landing page (${landing.status})`);
  const out = (await runWalkthrough(base)).trim().split("\n");
  if (out.at(-2) !== "close: 204" || out.at(-1) !== "room_not_found") throw new Error(`the walkthrough did not end as the README says:\n${out.join("\n")}`);
  console.log(`README walkthrough against ${base}: ${out.length} lines, ended as the README says; pages served at /`);
}
