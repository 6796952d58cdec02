/**
 * Headless Chromium (Debian's package, never a downloaded build) driven by playwright-core,
 * set up as on a user's machine, inside the test namespace (scripts/isolated.sh): fake capture
 * devices with their permission granted, no background networking, no DNS, and no switch that
 * lets WebRTC use loopback, so candidates are the namespace's ordinary interface, as for users.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { childEnv } from "../support/processes.js";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const hasChromium = existsSync(CHROMIUM);

if (!hasChromium) {
  if (process.env.CI === "true") throw new Error(`Chromium not found at ${CHROMIUM}: the browser suites must run in CI`);
  console.warn(`\n*** Chromium not found at ${CHROMIUM}: browser suites SKIPPED (apt-get install chromium) ***\n`);
}

export const ARTIFACTS = new URL("../../test-artifacts/", import.meta.url).pathname;

export async function launchBrowser(): Promise<Browser> {
  await mkdir(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    // No proxy or display settings of the shell's: the browser sees what CI's does.
    env: childEnv(),
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ],
  });
}

/** Collects console errors and failed page loads, to assert a page ran cleanly. */
export function watchConsole(page: Page) {
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  return errors;
}

/** What pages of both drivers (playwright-core's Chromium, puppeteer-core's Firefox) offer alike. */
export interface Tab {
  evaluate<R, A>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R>;
}

/** Frames the page's peer connection(s) decoded so far, from getStats(). */
export function framesDecoded(page: Tab, pcExpression = "window.signalbox.link.pc"): Promise<number> {
  return page.evaluate(async (expr) => {
    const pc = (0, eval)(expr) as RTCPeerConnection;
    const stats = await pc.getStats();
    let frames = 0;
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded ?? 0;
    });
    return frames;
  }, pcExpression);
}

/**
 * Resolves once the page has decoded a first frame; returns when (ms since the epoch).
 * (waitForFunction would not do: it takes an async predicate's Promise itself as truthy.)
 */
export async function firstFrameAt(page: Page, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const hasLink = await page.evaluate(() => Boolean((window as unknown as { signalbox?: { link?: unknown } }).signalbox?.link));
    if (hasLink && (await framesDecoded(page)) > 0) return Date.now();
    await new Promise((r) => setTimeout(r, 15));
  }
  throw new Error(`no decoded frame within ${timeoutMs} ms`);
}

/**
 * Makes every page of `context` live on a network where no WebRTC path comes up: each
 * connection may use only a relay, and is given none.
 */
export function withoutNetworkPath(context: BrowserContext) {
  return context.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    window.RTCPeerConnection = class extends Native {
      constructor(config?: RTCConfiguration) {
        super({ ...config, iceServers: [], iceTransportPolicy: "relay" });
      }
    };
  });
}

/** Links on the page: remote peer → connection state, frames decoded, audio packets received. */
export function meshStats(page: Tab) {
  return page.evaluate(async () => {
    const mesh = (window as any).signalbox.mesh;
    const out: Record<string, { state: string; frames: number; audio: number; signaling: string }> = {};
    for (const [peerId, link] of mesh?.links ?? []) {
      const pc = link.pc as RTCPeerConnection;
      let frames = 0;
      let audio = 0;
      (await pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded ?? 0;
        if (s.type === "inbound-rtp" && s.kind === "audio") audio += s.packetsReceived ?? 0;
      });
      out[peerId] = { state: pc.connectionState, frames, audio, signaling: pc.signalingState };
    }
    return out;
  });
}

export async function until<T>(what: string, probe: () => Promise<T | false>, timeoutMs = 60_000, last?: () => Promise<unknown>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await last?.())}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
