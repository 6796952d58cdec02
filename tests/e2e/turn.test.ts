/**
 * TURN with a real coturn (Debian's `turnserver`, started here on loopback with use-auth-secret;
 * allow-loopback-peers is a development switch this test sets, no shipped config does): a host
 * and a viewer forced to relay connect through it, and a credential past its expiry is refused.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHarness, type Harness } from "../support/harness.js";
import { firstFrameAt, hasChromium, launchBrowser } from "./browser.js";
import { childEnv, removedOnExit } from "../support/processes.js";

const TURNSERVER = "/usr/bin/turnserver";
const hasCoturn = existsSync(TURNSERVER);
if (!hasCoturn) {
  if (process.env.CI === "true") throw new Error("coturn (turnserver) not found: the TURN suite must run in CI");
  console.warn("\n*** coturn not found (apt-get install coturn): TURN suite SKIPPED ***\n");
}
const SECRET = "coturn-test-secret";
const PORT = 34780 + Math.floor(Math.random() * 100);

/** Relay candidates a page gathers with the given TURN credentials (and any error codes). */
function gatherRelay(page: Page, server: { urls: string; username: string; credential: string }) {
  return page.evaluate(async (ice) => {
    const pc = new RTCPeerConnection({ iceServers: [ice], iceTransportPolicy: "relay" });
    const found: string[] = [];
    const errors: number[] = [];
    pc.onicecandidate = ({ candidate }) => candidate && found.push(candidate.candidate);
    pc.onicecandidateerror = (e) => errors.push((e as RTCPeerConnectionIceErrorEvent).errorCode);
    pc.createDataChannel("probe");
    await pc.setLocalDescription();
    await new Promise<void>((done) => {
      pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done();
      setTimeout(done, 5000);
    });
    pc.close();
    return { relay: found.filter((c) => c.includes(" typ relay")), errors };
  }, server);
}

describe.skipIf(!hasChromium || !hasCoturn)("TURN relay through coturn", () => {
  let coturn: ChildProcess;
  let h: Harness;
  let browser: Browser;
  beforeAll(async () => {
    coturn = spawn(TURNSERVER, [
      "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", `--listening-port=${PORT}`,
      "--use-auth-secret", `--static-auth-secret=${SECRET}`, "--realm=signalbox.test",
      "--allow-loopback-peers", "--no-tls", "--no-dtls", "--no-cli", "--fingerprint",
      "--min-port=49160", "--max-port=49300", "--log-file=stdout", "--simple-log",
    ], { stdio: "ignore", env: childEnv() });
    removedOnExit({ child: coturn });
    await new Promise((r) => setTimeout(r, 1000));
    h = await startHarness("memory", { TURN_URLS: `turn:127.0.0.1:${PORT}?transport=udp`, TURN_SECRET: SECRET, TURN_TTL_SECONDS: "600" });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await h?.close();
    coturn?.kill();
  });

  it("a host and a viewer forced to relay connect through coturn", async () => {
    const context = await browser.newContext();
    const host = await context.newPage();
    await host.goto(`${h.url}/host.html?relay=1`);
    await host.click("#share");
    await host.waitForSelector("#roomId:not(:empty)", { timeout: 15_000 });
    const viewer = await context.newPage();
    await viewer.goto(`${h.url}/view.html?room=${await host.textContent("#roomId")}&relay=1`);
    await firstFrameAt(viewer, 30_000);
    const pair = await viewer.evaluate(async () => {
      const pc = (window as any).signalbox.link.pc as RTCPeerConnection;
      const stats = await pc.getStats();
      let selected: any;
      stats.forEach((s) => s.type === "transport" && (selected = stats.get(s.selectedCandidatePairId)));
      return { local: stats.get(selected.localCandidateId).candidateType, remote: stats.get(selected.remoteCandidateId).candidateType, state: pc.connectionState };
    });
    expect(pair).toEqual({ local: "relay", remote: "relay", state: "connected" });
    await viewer.waitForFunction(() => document.querySelector('[data-stat="path"]')!.textContent === "relay (TURN)");
    await context.close();
  });

  it("refuses a credential past its expiry, and accepts a fresh one", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${h.url}/`);
    const credential = (expiresAt: number) => {
      const username = `${expiresAt}:probe`;
      return { urls: `turn:127.0.0.1:${PORT}?transport=udp`, username, credential: createHmac("sha1", SECRET).update(username).digest("base64") };
    };
    const now = Math.floor(Date.now() / 1000);
    const expired = await gatherRelay(page, credential(now - 60));
    expect(expired.relay).toEqual([]);
    expect(expired.errors).toContain(401);
    const fresh = await gatherRelay(page, credential(now + 600));
    expect(fresh.relay.length).toBeGreaterThan(0);
    await context.close();
  });
});
