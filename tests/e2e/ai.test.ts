/**
 * The AI page end to end in Chromium against the simulated upstream (no OpenAI key): the
 * browser's connection really comes up, its oai-events channel opens, transcript lines appear.
 * Both ways in: the SDP proxy, and the AI as a room peer connected by the client library.
 */
import type { Browser } from "playwright-core";
import { describe, expect } from "vitest";
import { STORES, type Harness } from "../support/harness.js";
import { ARTIFACTS, watchConsole, withoutNetworkPath } from "./browser.js";
import { useBrowser } from "./use-browser.js";

describe.each(STORES)("AI page in Chromium, simulated upstream [%s]", (kind) => {
  let h: Harness;
  let browser: Browser;
  const test = useBrowser(kind, (started, b) => ((h = started), (browser = b)));

  for (const via of ["proxy", "peer"] as const) {
    test(`connects through the ${via === "proxy" ? "SDP proxy" : "room, the AI as a peer"} and shows transcript lines`, async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      const errors = watchConsole(page);
      await page.goto(`${h.url}/ai.html${via === "peer" ? "?via=peer" : ""}`);
      await page.waitForFunction(() => document.querySelectorAll("#preset option").length > 0);
      // The proxy test talks to a voice agent, the room test transcribes only.
      if (via === "proxy") await page.selectOption("#preset", "assistant");
      await page.click("#start");
      await page.waitForFunction(() => document.getElementById("state")!.dataset.state === "connected", null, { timeout: 20_000 });
      expect(await page.evaluate(() => (window as any).signalbox.pc.connectionState)).toBe("connected");
      // The answer keeps the offer's m-lines, in order (audio, then the data channel).
      const mLines = await page.evaluate(() => {
        const pc = (window as any).signalbox.pc as RTCPeerConnection;
        const kinds = (sdp: string) => [...sdp.matchAll(/^m=(\w+)/gm)].map((m) => m[1]);
        return [kinds(pc.localDescription!.sdp), kinds(pc.remoteDescription!.sdp)];
      });
      expect(mLines[0]).toEqual(["audio", "application"]);
      expect(mLines[1]).toEqual(mLines[0]);
      await page.waitForFunction(() => document.querySelectorAll("#transcript li:not(.partial)").length >= 2, null, { timeout: 15_000 });
      const lines = await page.$$eval("#transcript li", (items) => items.map((li) => li.textContent));
      expect(lines[0]).toMatch(/^Simulated line 1: heard \d+ audio packets/);
      // A voice agent's reply is finalised by its transcript's done event.
      const replies = await page.$$eval("#transcript li.ai", (items) => items.map((li) => [li.textContent, li.classList.contains("partial")]));
      expect(replies.slice(0, 1)).toEqual(via === "proxy" ? [["Simulated reply to line 1.", false]] : []);
      expect(await page.textContent("#upstream")).toContain("Session open");
      await page.screenshot({ path: `${ARTIFACTS}ai-${via}-${kind}.png` });

      const sessionId = await page.evaluate(() => (window as any).signalbox.sessionId);
      expect(sessionId).toMatch(/^ses_/);
      await page.click("#stop");
      await page.waitForFunction(() => document.getElementById("state")!.dataset.state === "ended");
      expect(errors).toEqual([]);
      await context.close();
    });
  }

  test("GPT-Live (?preset=live): connects, shows both sides' transcript from Live's deltas, and the browser may not rewrite the session", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = watchConsole(page);
    await page.goto(`${h.url}/ai.html?preset=live`);
    await page.waitForFunction(() => document.querySelectorAll("#preset option").length > 0);
    expect(await page.inputValue("#preset")).toBe("live");
    await page.click("#start");
    await page.waitForFunction(() => document.getElementById("state")!.dataset.state === "connected", null, { timeout: 20_000 });
    await page.waitForFunction(() => document.getElementById("upstream")!.textContent!.includes("Session open"), null, { timeout: 10_000 });
    // A line is done once the other side speaks: the first heard line and the agent's reply to it.
    await page.waitForFunction(() => document.querySelectorAll("#transcript li:not(.partial)").length >= 2, null, { timeout: 15_000 });
    const lines = await page.$$eval("#transcript li", (items) => items.map((li) => [li.className.replace("partial", "").trim(), li.textContent]));
    expect(lines[0]).toEqual(["you", expect.stringMatching(/^Simulated line 1: heard \d+ audio packets/)]);
    expect(lines[1]).toEqual(["ai", "Simulated reply to line 1."]);
    // The preset's data channel allows no session.update: GPT-Live (here its stand-in) refuses it.
    await page.evaluate(() => (window as any).signalbox.channel.send(JSON.stringify({ type: "session.update", session: { instructions: "say something else" } })));
    await page.waitForFunction(() => document.getElementById("error")!.textContent!.includes("may not send 'session.update'"));
    expect(await page.evaluate(() => (window as any).signalbox.sessionId)).toMatch(/^ses_/);
    await page.click("#stop");
    await page.waitForFunction(() => document.getElementById("state")!.dataset.state === "ended");
    expect(errors).toEqual([]);
    await context.close();
  });

  test("says what failed, and what to try, when the connection cannot come up", async () => {
    const context = await browser.newContext();
    await withoutNetworkPath(context);
    const page = await context.newPage();
    await page.clock.install();
    await page.goto(`${h.url}/ai.html`);
    await page.waitForFunction(() => document.querySelectorAll("#preset option").length > 0);
    await page.click("#start");
    await page.waitForFunction(() => (window as any).signalbox.pc?.remoteDescription);
    expect(await page.getAttribute("#state", "data-state")).not.toBe("failed");
    await page.clock.fastForward(21_000);
    await page.waitForFunction(() => document.getElementById("state")!.dataset.state === "failed");
    expect(await page.textContent("#error")).toMatch(/^No network path to the AI came up in 20 s\. A firewall or VPN may block WebRTC/);
    await context.close();
  });
});
