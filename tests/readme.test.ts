/** The README's curl walkthrough, run verbatim against the local server on both stores. */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { describe, expect } from "vitest";
import { STORES, useHarness, type Harness } from "./support/harness.js";

const run = promisify(execFile);

async function walkthrough(): Promise<string> {
  const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
  const block = /<!-- walkthrough:start -->\s*```sh\n([\s\S]*?)```\s*<!-- walkthrough:end -->/.exec(readme);
  if (!block) throw new Error("README has no walkthrough block");
  return block[1];
}

describe.each(STORES)("README walkthrough [%s]", (kind) => {
  let h: Harness;
  const test = useHarness(kind, (started) => (h = started));

  test("runs verbatim and completes a host/viewer exchange", async () => {
    const { stdout } = await run("bash", ["-euo", "pipefail", "-c", await walkthrough()], { env: { ...process.env, BASE: h.url }, timeout: 60_000 });
    const lines = stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^room [a-z2-9]{10}, host [a-z2-9]{10}$/);
    expect(JSON.parse(lines[1])).toMatchObject({ peers: 1, topology: "star", hostPresent: true });
    expect(JSON.parse(lines[2])).toMatchObject({ type: "peer-joined" });
    expect(stdout).toContain('"type":"offer"');
    expect(stdout).toContain("o=- 1 2 IN IP4 127.0.0.1");
    expect(stdout).toContain("typ host");
    expect(stdout).toMatch(/\{"type":"answer","from":"[a-z2-9]{10}"\}\n\{"type":"candidate","from":"[a-z2-9]{10}"\}/);
    expect(lines.at(-2)).toBe("close: 204");
    expect(lines.at(-1)).toBe("room_not_found");
  });
});
