/** The README's curl walkthrough, run verbatim against the local server on both stores. */
import { describe, expect } from "vitest";
import { runWalkthrough } from "../scripts/walkthrough.js";
import { STORES, useHarness, type Harness } from "./support/harness.js";

describe.each(STORES)("README walkthrough [%s]", (kind) => {
  let h: Harness;
  const test = useHarness(kind, (started) => (h = started));

  test("runs verbatim and completes a host/viewer exchange", async () => {
    const stdout = await runWalkthrough(h.url);
    const lines = stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^room [a-z2-9]{10}, host [a-z2-9]{10}$/);
    expect(JSON.parse(lines[1])).toMatchObject({ peers: 1, topology: "star", hostPresent: true });
    expect(JSON.parse(lines[2])).toMatchObject({ type: "peer-joined" });
    expect(stdout).toContain('"type":"offer"');
    expect(stdout).toContain("o=- 1 2 IN IP4 127.0.0.1");
    expect(stdout).toContain("typ host");
    // The answer and candidates, once streamed (step 7), once long-polled (step 8).
    expect(stdout.match(/\{"type":"answer","from":"[a-z2-9]{10}"\}\n\{"type":"candidate","from":"[a-z2-9]{10}"\}/g)).toHaveLength(2);
    expect(lines.at(-2)).toBe("close: 204");
    expect(lines.at(-1)).toBe("room_not_found");
  });

  test("runs the private-room walkthrough verbatim: a key, a replaced key, a lock, a lobby", async () => {
    const lines = (await runWalkthrough(h.url, "walkthrough-private")).trim().split("\n");
    expect(lines).toEqual([
      expect.stringMatching(/^room [a-z2-9]{10}, key [A-Za-z0-9_-]{22}$/),
      '{"access":"key","locked":false}',
      "join_key_required",
      expect.stringMatching(/^[a-z2-9]{10}$/),
      "join_key_invalid",
      "room_locked",
      '{"status":"waiting"}',
      "not_admitted",
      '{"type":"knock","name":"Ada"}',
      "admit: 204",
      '{"type":"admitted","peers":["host","viewer"]}',
    ]);
  });
});
