/**
 * Screen sharing end to end in real headless Chromium: the host and viewer pages, the client
 * library and the API on both stores. Media flows peer to peer inside the test namespace.
 */
import { writeFile } from "node:fs/promises";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { describe, expect } from "vitest";
import { STORES, type Harness } from "../support/harness.js";
import { ARTIFACTS, firstFrameAt, framesDecoded, watchConsole, withoutNetworkPath } from "./browser.js";
import { useBrowser } from "./use-browser.js";

/** Opens the host page and starts sharing (choosing who can watch, if given); returns the page and its room ID. */
async function startSharing(context: BrowserContext, base: string, query = "", access?: "key" | "lobby") {
  const host = await context.newPage();
  const errors = watchConsole(host);
  await host.goto(`${base}/host.html${query}`);
  if (access) await host.check(`input[name="access"][value="${access}"]`);
  await host.click("#share");
  // getDisplayMedia hangs rather than fails under a wrong flag set: always bound the wait.
  await host.waitForSelector("#roomId:not(:empty)", { timeout: 15_000 });
  const roomId = (await host.textContent("#roomId"))!;
  return { host, roomId, errors };
}

async function openViewer(context: BrowserContext, base: string, roomId: string, query = "") {
  const page = await context.newPage();
  const errors = watchConsole(page);
  const loadedAt = Date.now();
  await page.goto(`${base}/view.html?room=${roomId}${query}`);
  return { page, loadedAt, errors };
}

const linkState = (page: Page) => page.evaluate(() => (window as any).signalbox.link?.state);
/** How a page's client receives its mail now: "stream", or what it was put on or fell back to. */
const transport = (page: Page) => page.evaluate(() => (window as any).signalbox.client.pollMode);

describe.each(STORES)("screen share in Chromium [%s]", (kind) => {
  let h: Harness;
  let browser: Browser;
  const test = useBrowser(kind, (started, b) => ((h = started), (browser = b)));

  test("one host, three viewers: each connects, plays the screen and keeps decoding", async () => {
    const context = await browser.newContext();
    const { host, roomId, errors: hostErrors } = await startSharing(context, h.url);
    // The whole link is shown (and is a link), with a QR code of it for phones.
    expect([await host.textContent("#link"), await host.getAttribute("#link", "href")]).toEqual(Array(2).fill(`${h.url}/view.html?room=${roomId}`));
    expect(await host.locator("#qr svg").count()).toBe(1);
    const viewers = await Promise.all([0, 1, 2].map(() => openViewer(context, h.url, roomId)));
    const firstFrames = await Promise.all(viewers.map(async (v) => (await firstFrameAt(v.page)) - v.loadedAt));
    for (const v of viewers) {
      await v.page.waitForFunction(() => (window as any).signalbox.link.state === "connected");
      expect(await v.page.textContent("#state")).toBe("connected");
      expect(await v.page.evaluate(() => (document.getElementById("video") as HTMLVideoElement).videoWidth)).toBeGreaterThan(0);
      const before = await framesDecoded(v.page);
      await v.page.waitForTimeout(700);
      expect(await framesDecoded(v.page)).toBeGreaterThan(before);
    }
    await host.waitForFunction(() => document.querySelectorAll('#viewers li .state[data-state="connected"]').length === 3);
    expect(await host.textContent("#count")).toBe("3");
    for (const page of [host, ...viewers.map((v) => v.page)]) expect(await transport(page)).toBe("stream");
    // The stats panel reports the path and the picture.
    await viewers[0].page.waitForFunction(() => document.querySelector('[data-stat="resolution"]')!.textContent!.includes("×"));
    expect(await viewers[0].page.textContent('[data-stat="path"]')).toBe("host");

    await host.screenshot({ path: `${ARTIFACTS}host-${kind}.png` });
    await viewers[0].page.screenshot({ path: `${ARTIFACTS}viewer-${kind}.png` });
    await writeFile(`${ARTIFACTS}first-frame-${kind}.json`, JSON.stringify({ kind, viewers: 3, firstFrameMs: firstFrames }, null, 2));
    console.log(`[${kind}] viewer page load → first decoded frame, 3 viewers: ${firstFrames.join(", ")} ms`);
    expect(hostErrors).toEqual([]);
    for (const v of viewers) expect(v.errors).toEqual([]);
    await context.close();
  });

  test("a late viewer connects, a leaving one is dropped, and the host closing ends everyone", async () => {
    const context = await browser.newContext();
    const { host, roomId } = await startSharing(context, h.url);
    const early = await openViewer(context, h.url, roomId);
    await firstFrameAt(early.page);
    await host.waitForTimeout(1000);
    const late = await openViewer(context, h.url, roomId);
    await firstFrameAt(late.page);
    await host.waitForFunction(() => document.querySelectorAll('#viewers li .state[data-state="connected"]').length === 2);

    // The viewers' chat panel reaches the host and the other viewer.
    await late.page.fill("#chat input", "Can you zoom in?");
    await late.page.click('#chat button[type="submit"]');
    for (const page of [host, early.page]) {
      await page.waitForFunction(() => document.querySelector("#chat .messages")!.textContent!.includes("Can you zoom in?"), null, { timeout: 10_000 });
    }

    const earlyId = await early.page.evaluate(() => (window as any).signalbox.client.peerId);
    await early.page.click("#leave");
    // Leaving is no error: a status line, a neutral badge.
    expect(await early.page.textContent("#message")).toBe("You left the session.");
    expect([await early.page.textContent("#error"), await early.page.getAttribute("#state", "data-state")]).toEqual(["", "idle"]);
    await host.waitForFunction((id) => !document.querySelector(`li[data-peer="${id}"]`), earlyId);
    expect(await host.textContent("#count")).toBe("1");
    expect(await host.evaluate((id) => (window as any).signalbox.links.has(id), earlyId)).toBe(false);
    expect(await linkState(late.page)).toBe("connected");

    await host.click("#stop");
    await late.page.waitForFunction(() => document.getElementById("state")!.dataset.state === "ended", null, { timeout: 10_000 });
    expect(await late.page.textContent("#message")).toBe("The host ended the session.");
    // What the session showed goes with it: no frozen picture, no stale stats.
    expect(await late.page.isHidden("#watch")).toBe(true);
    expect(await late.page.$$eval("[data-stat]", (cells) => cells.map((c) => c.textContent))).toEqual(Array(6).fill("–"));
    expect(await host.textContent("#state")).toBe("ended");
    await context.close();
  });

  for (const mode of ["long-poll", "interval"] as const) {
    test(`host and viewer put on ${mode} connect, play, and end as on the stream`, async () => {
      const context = await browser.newContext();
      const { host, roomId, errors } = await startSharing(context, h.url, `?poll=${mode}`);
      const viewer = await openViewer(context, h.url, roomId, `&poll=${mode}`);
      await firstFrameAt(viewer.page);
      await host.waitForFunction(() => document.querySelectorAll('#viewers li .state[data-state="connected"]').length === 1);
      for (const page of [host, viewer.page]) expect(await transport(page)).toBe(mode);
      await host.click("#stop");
      await viewer.page.waitForFunction(() => document.getElementById("state")!.dataset.state === "ended", null, { timeout: 10_000 });
      expect(await viewer.page.textContent("#message")).toBe("The host ended the session.");
      expect([...errors, ...viewer.errors]).toEqual([]);
      await context.close();
    });
  }

  test("a private link: its viewer connects; the room ID alone, a replaced link and a locked room are refused in words", async () => {
    const context = await browser.newContext();
    const { host, roomId } = await startSharing(context, h.url, "", "key");
    const link = (await host.getAttribute("#link", "href"))!;
    expect(link).toMatch(new RegExp(`^${h.url}/view\\.html\\?room=${roomId}#k=[A-Za-z0-9_-]{22}$`));
    expect(await host.isVisible("#rotate")).toBe(true);

    const viewer = await context.newPage();
    await viewer.goto(link);
    await firstFrameAt(viewer);
    expect(await viewer.textContent("#state")).toBe("connected");

    const refusal = async (url: string) => {
      const page = await context.newPage();
      await page.goto(url);
      await page.waitForFunction(() => document.getElementById("error")!.textContent !== "", null, { timeout: 5000 });
      const said = [await page.textContent("#error"), await page.getAttribute("#state", "data-state")];
      await page.close();
      return said;
    };
    expect(await refusal(`${h.url}/view.html?room=${roomId}`)).toEqual([expect.stringMatching(/^This room is private: open the exact link/), "failed"]);
    expect(await refusal(`${link.slice(0, -3)}`)).toEqual([expect.stringMatching(/^This link is incomplete or damaged/), "failed"]);

    await host.click("#rotate");
    await host.waitForFunction((old) => (document.getElementById("link") as HTMLAnchorElement).href !== old, link);
    const newLink = (await host.getAttribute("#link", "href"))!;
    expect(await refusal(link)).toEqual([expect.stringMatching(/^This link no longer lets anyone in/), "failed"]);
    expect(await linkState(viewer)).toBe("connected"); // who is in stays in

    await host.click("#lock");
    await host.waitForFunction(() => document.getElementById("lock")!.getAttribute("aria-pressed") === "true");
    expect(await refusal(newLink)).toEqual([expect.stringMatching(/^The host has locked this room/), "failed"]);
    await host.click("#lock");
    await host.waitForFunction(() => document.getElementById("lock")!.getAttribute("aria-pressed") === "false");
    const late = await context.newPage();
    await late.goto(newLink);
    await firstFrameAt(late);
    await context.close();
  });

  test("a lobby: a viewer waits, the host admits it and it connects; a denied one is told so; one who stops waiting leaves the host's list", async () => {
    const context = await browser.newContext();
    const { host } = await startSharing(context, h.url, "", "lobby");
    const link = (await host.getAttribute("#link", "href"))!;
    expect(link).not.toContain("#");

    const admitted = await context.newPage();
    await admitted.goto(link);
    await admitted.waitForFunction(() => document.getElementById("message")!.textContent === "Waiting for the host to let you in…", null, { timeout: 10_000 });
    expect(await admitted.getAttribute("#state", "data-state")).toBe("waiting");
    await host.waitForSelector("#knocks:not([hidden]) li[data-knock] .admit", { timeout: 10_000 });
    expect(await host.textContent("#count")).toBe("0");
    await host.click("li[data-knock] .admit");
    await firstFrameAt(admitted);
    expect(await admitted.textContent("#state")).toBe("connected");
    expect(await host.isHidden("#knocks")).toBe(true);

    const denied = await context.newPage();
    await denied.goto(link);
    await host.waitForSelector("li[data-knock] .deny", { timeout: 10_000 });
    await host.click("li[data-knock] .deny");
    await denied.waitForFunction(() => document.getElementById("error")!.textContent !== "", null, { timeout: 10_000 });
    expect(await denied.textContent("#error")).toBe("The host did not let you in.");

    const quitter = await context.newPage();
    await quitter.goto(link);
    await host.waitForSelector("li[data-knock]", { timeout: 10_000 });
    await quitter.click("#cancel");
    await host.waitForSelector("li[data-knock]", { state: "detached", timeout: 10_000 });
    expect(await quitter.textContent("#message")).toBe("You stopped waiting.");
    expect(await linkState(admitted)).toBe("connected");
    expect(await host.textContent("#count")).toBe("1");
    await context.close();
  });

  test("a browser's own EventSource opens a peer's stream with a ticket, and gets its mail as events", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${h.url}/`);
    const got = await page.evaluate(async () => {
      const post = async (path: string, body: unknown, token?: string) =>
        (await fetch(path, { method: "POST", headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) })).json();
      const host = await post("/api/rooms", {});
      const viewer = await post("/api/peers", { roomId: host.roomId });
      const { url } = await post("/api/events/ticket", { roomId: host.roomId }, viewer.token);
      const source = new EventSource(url);
      const events: { id: string; type: string }[] = [];
      await new Promise<void>((resolve, reject) => {
        source.onopen = () => resolve();
        source.onerror = () => reject(new Error("the stream did not open"));
      });
      const arrived = new Promise<void>((resolve) => {
        source.onmessage = (e) => {
          events.push({ id: e.lastEventId, type: JSON.parse(e.data).type });
          if (events.length === 2) resolve();
        };
      });
      await post("/api/offer", { roomId: host.roomId, to: viewer.peerId, description: { type: "offer", sdp: "v=0" } }, host.token);
      await post("/api/chat", { roomId: host.roomId, text: "hello" }, host.token);
      await arrived;
      source.close();
      return events;
    });
    expect(got).toEqual([{ id: expect.stringMatching(/^\d+-\d+$/), type: "offer" }, { id: expect.stringMatching(/^\d+-\d+$/), type: "chat" }]);
    await context.close();
  });

  test("a wrong or expired room ID shows an error within 2 s; a malformed one says what IDs look like", async () => {
    const context = await browser.newContext();
    const { page, loadedAt } = await openViewer(context, h.url, "zzzzzzzzzz");
    await page.waitForFunction(() => document.getElementById("error")!.textContent!.startsWith("Room not found"), null, { timeout: 2000 });
    expect(Date.now() - loadedAt).toBeLessThan(2000);
    // A page that never joined has not "ended".
    expect([await page.textContent("#state"), await page.getAttribute("#state", "data-state")]).toEqual(["not joined", "failed"]);

    await page.fill("#room", "NOT-AN-ID!");
    await page.click('#form button[type="submit"]');
    await page.waitForFunction(() => document.getElementById("error")!.textContent!.startsWith("Room IDs are"));
    expect(await page.textContent("#error")).toBe("Room IDs are 10 letters and digits (no 0, o, 1, l or i). Check the link, or the ID you typed.");
    // Typed as people type it (capitals, groups): still the room.
    const room = await (await fetch(`${h.url}/api/rooms`, { method: "POST" })).json();
    await page.fill("#room", `${room.roomId.slice(0, 5).toUpperCase()} ${room.roomId.slice(5)}`);
    await page.click('#form button[type="submit"]');
    await page.waitForFunction(() => document.getElementById("state")!.dataset.state === "waiting");
    expect(await page.textContent("#error")).toBe("");
    await context.close();
  });

  test("a viewer whose host has not offered yet waits, saying so", async () => {
    const room = await (await fetch(`${h.url}/api/rooms`, { method: "POST" })).json();
    const context = await browser.newContext();
    const { page, errors } = await openViewer(context, h.url, room.roomId);
    await page.waitForFunction(() => document.getElementById("state")!.dataset.state === "waiting", null, { timeout: 5000 });
    expect(await page.textContent("#state")).toBe("waiting for host");
    expect(await page.textContent("#message")).toBe("Joined. Waiting for the host's screen…");
    expect(errors).toEqual([]);
    await context.close();
  });

  test("a viewer with no network path to the host says so, and what to try, within a bounded time", async () => {
    const context = await browser.newContext();
    const { roomId } = await startSharing(context, h.url);
    const cut = await browser.newContext();
    await withoutNetworkPath(cut);
    const page = await cut.newPage();
    await page.clock.install();
    await page.goto(`${h.url}/view.html?room=${roomId}`);
    await page.waitForFunction(() => (window as any).signalbox.link?.pc.remoteDescription);
    // Three retries 10 s apart, then the link gives up: 40 s in all, on the page's clock.
    for (let i = 0; i < 4; i++) {
      expect(await page.getAttribute("#state", "data-state")).not.toBe("failed");
      await page.clock.fastForward(10_001);
    }
    await page.waitForFunction(() => document.getElementById("state")!.dataset.state === "failed");
    expect(await page.textContent("#error")).toMatch(/^No network path to the host came up in 40 s\. A firewall or VPN may block WebRTC/);
    await cut.close();
    await context.close();
  });

  test("a picture that freezes while the connection stays connected is noticed: an ICE restart, then a fresh connection", async () => {
    const context = await browser.newContext();
    const { host, roomId } = await startSharing(context, h.url);
    // The freeze: every frame the frozen connection receives is dropped before decoding, while
    // its packets keep arriving and ICE and DTLS stay up (a connection made later is not frozen).
    const viewerContext = await browser.newContext();
    await viewerContext.addInitScript(() => {
      const Native = window.RTCPeerConnection;
      window.RTCPeerConnection = class extends Native {
        constructor(config?: RTCConfiguration) {
          super({ ...config, encodedInsertableStreams: true } as RTCConfiguration);
          this.addEventListener("track", ({ receiver }) => {
            const { readable, writable } = (receiver as any).createEncodedStreams();
            const pass = new TransformStream({ transform: (frame, out) => void ((window as any).frozen === this && receiver.track.kind === "video" ? 0 : out.enqueue(frame)) });
            void readable.pipeThrough(pass).pipeTo(writable);
          });
        }
      };
    });
    const viewer = await openViewer(viewerContext, h.url, roomId);
    await firstFrameAt(viewer.page);
    await viewer.page.waitForFunction(() => (window as any).signalbox.link.state === "connected");
    const ufrag = () => viewer.page.evaluate(() => /a=ice-ufrag:(\S+)/.exec((window as any).frozen.remoteDescription.sdp)![1]);
    await viewer.page.evaluate(() => ((window as any).frozen = (window as any).signalbox.link.pc));
    const before = await ufrag();

    // First the link restarts ICE, saying so...
    await viewer.page.waitForFunction(() => document.getElementById("state")!.textContent === "reconnecting", null, { timeout: 15_000 });
    await viewer.page.waitForFunction((old) => /a=ice-ufrag:(\S+)/.exec((window as any).frozen.remoteDescription.sdp)![1] !== old, before, { timeout: 15_000 });
    expect(await ufrag()).not.toBe(before);
    // ...which does not thaw this freeze, so the page rejoins on a fresh connection, and plays.
    await viewer.page.waitForFunction(() => (window as any).signalbox.link && (window as any).signalbox.link.pc !== (window as any).frozen, null, { timeout: 30_000 });
    await firstFrameAt(viewer.page);
    await viewer.page.waitForFunction(() => document.getElementById("state")!.textContent === "connected", null, { timeout: 15_000 });
    // The host dropped the stale viewer and serves the new one.
    await host.waitForFunction(() => document.querySelectorAll('#viewers li .state[data-state="connected"]').length === 1 && document.getElementById("count")!.textContent === "1");
    await viewerContext.close();
    await context.close();
  });

  test("an ICE restart renegotiates through the API and the viewer keeps playing without a reload", async () => {
    const context = await browser.newContext();
    const { host, roomId } = await startSharing(context, h.url);
    const viewer = await openViewer(context, h.url, roomId);
    await firstFrameAt(viewer.page);
    await viewer.page.waitForFunction(() => (window as any).signalbox.link.state === "connected");
    const ufrag = () => viewer.page.evaluate(() => /a=ice-ufrag:(\S+)/.exec((window as any).signalbox.link.pc.remoteDescription.sdp)![1]);
    const before = await ufrag();

    // The viewer's answers reach the API slowly: its next offer, made while one is in flight,
    // must still arrive after it (the host, waiting for the answer, would take it for a collision).
    await viewer.page.route("**/api/answer", async (route) => {
      await new Promise((r) => setTimeout(r, 1500));
      await route.continue();
    });
    // The viewer will restart too, asked while it is answering the host's restart (as its media
    // watchdog may be): the restart must wait for that answer, then offer.
    await viewer.page.evaluate(() => {
      const link = (window as any).signalbox.link;
      const answer = link.pc.setLocalDescription.bind(link.pc);
      link.pc.setLocalDescription = (...args: unknown[]) => {
        if (link.pc.signalingState === "have-remote-offer" && !(window as any).restartAsked) {
          (window as any).restartAsked = true;
          link.restartIce();
        }
        return answer(...args);
      };
    });
    // The host restarts ICE (what a dropped connection triggers on its side).
    await host.evaluate(() => [...(window as any).signalbox.links.values()][0].restartIce());
    await viewer.page.waitForFunction((old) => /a=ice-ufrag:(\S+)/.exec((window as any).signalbox.link.pc.remoteDescription.sdp)![1] !== old, before, { timeout: 20_000 });
    expect(await viewer.page.evaluate(() => (window as any).restartAsked)).toBe(true);
    // And the viewer restarts (it offers; the roles of the original exchange do not matter).
    const middle = await ufrag();
    await viewer.page.waitForFunction(
      (old) => {
        const pc = (window as any).signalbox.link.pc as RTCPeerConnection;
        return pc.signalingState === "stable" && /a=ice-ufrag:(\S+)/.exec(pc.remoteDescription!.sdp)![1] !== old;
      },
      middle,
      { timeout: 20_000 },
    );
    await viewer.page.waitForFunction(() => (window as any).signalbox.link.pc.connectionState === "connected", null, { timeout: 20_000 });
    const frames = await framesDecoded(viewer.page);
    await viewer.page.waitForTimeout(700);
    expect(await framesDecoded(viewer.page)).toBeGreaterThan(frames);
    expect(viewer.page.url()).toContain(roomId); // same page, never reloaded
    await context.close();
  });
});
