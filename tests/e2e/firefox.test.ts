/**
 * Firefox beside Chromium, as users mix them: a Chromium host with a Firefox viewer, a Firefox
 * host with a Chromium viewer, and a meeting with one Firefox participant. Firefox is Debian's
 * firefox-esr, headless, over WebDriver BiDi.
 *
 * Headless Firefox cannot capture a screen, so in the Firefox host test (only there) the page's
 * getDisplayMedia returns Firefox's fake camera instead: what is shared differs, everything
 * after capture (the page, the client library, the API, the connection) is what users run.
 */
import type { Browser as Firefox } from "puppeteer-core";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { STORES, type Harness } from "../support/harness.js";
import { framesDecoded, meshStats, until, type Tab } from "./browser.js";
import { asTab, hasFirefox, launchFirefox } from "./firefox.js";
import { useBrowser } from "./use-browser.js";

/** Text of the first element matching `selector`, in either driver's page. */
const text = (page: Tab, selector: string) => page.evaluate((s) => document.querySelector(s)?.textContent ?? null, selector);

/** Resolves once the page's link is connected and keeps decoding frames; returns the count. */
async function playing(page: Tab, pcExpression?: string) {
  // (The page makes its link once it has joined: until then there is nothing to ask.)
  const frames = () => framesDecoded(page, pcExpression).catch(() => 0);
  await until("a connected link decoding frames", async () => (await frames()) > 0, 45_000, () => text(page, "#state"));
  const before = await frames();
  await until("more frames", async () => (await frames()) > before, 10_000);
  return frames();
}

async function firefoxPage(firefox: Firefox, url: string, { fakeScreen = false } = {}) {
  const page = await firefox.newPage();
  const errors: string[] = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));
  if (fakeScreen) {
    await page.evaluateOnNewDocument(() => {
      navigator.mediaDevices.getDisplayMedia = () => navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    });
  }
  await page.goto(url);
  return { page, tab: asTab(page), errors };
}

describe.each(STORES)("Firefox with Chromium [%s]", (kind) => {
  let h: Harness;
  let chromium: Browser;
  let firefox: Firefox;
  const test = useBrowser(kind, (started, b) => ((h = started), (chromium = b)));
  beforeAll(async () => {
    if (hasFirefox) firefox = await launchFirefox();
  });
  afterAll(async () => firefox?.close());
  const both = hasFirefox ? test : test.skip;

  both("a Chromium host shares a screen with a Firefox viewer it lets in from the lobby", async () => {
    const context = await chromium.newContext();
    const host = await context.newPage();
    await host.goto(`${h.url}/host.html`);
    await host.check('input[name="access"][value="lobby"]');
    await host.click("#share");
    await host.waitForSelector("#roomId:not(:empty)", { timeout: 15_000 });
    const roomId = (await host.textContent("#roomId"))!;

    const { page: viewer, tab, errors } = await firefoxPage(firefox, `${h.url}/view.html?room=${roomId}`);
    await until("the Firefox viewer waiting", async () => (await text(tab, "#message")) === "Waiting for the host to let you in…", 15_000);
    await host.click("li[data-knock] .admit");
    expect(await playing(tab)).toBeGreaterThan(0);
    expect(await text(tab, "#state")).toBe("connected");
    expect(await tab.evaluate(() => (document.getElementById("video") as HTMLVideoElement).videoWidth)).toBeGreaterThan(0);
    expect(await tab.evaluate(() => (window as any).signalbox.client.pollMode)).toBe("stream");
    await host.waitForFunction(() => document.querySelectorAll('#viewers li .state[data-state="connected"]').length === 1);

    // The host restarts ICE: Firefox may keep "connected" with its video frozen; the page's
    // media watchdog must notice, and the picture must move again (whichever way it recovers).
    const frames = () => framesDecoded(tab).catch(() => 0);
    await host.evaluate(() => [...(window as any).signalbox.links.values()][0].restartIce());
    await new Promise((r) => setTimeout(r, 3000));
    const after = await frames();
    // (More frames on the same connection, or a fresh one, counting from 0, well under way.)
    await until("the Firefox viewer decoding again after the host's ICE restart", async () => {
      const now = await frames();
      return now > after + 10 || (now > 10 && now < after);
    }, 40_000);
    await until("the Firefox viewer connected", async () => (await text(tab, "#state")) === "connected", 20_000);
    expect(errors).toEqual([]);
    await viewer.close();
    await context.close();
  });

  // This pair runs on long-poll (the others on the event stream): Firefox's fetch both ways.
  both("a Firefox host shares with a Chromium viewer", async () => {
    const { page: host, tab, errors } = await firefoxPage(firefox, `${h.url}/host.html?poll=long-poll`, { fakeScreen: true });
    await host.click("#share");
    await host.waitForSelector("#roomId:not(:empty)", { timeout: 15_000 });
    const roomId = (await text(tab, "#roomId"))!;

    const context = await chromium.newContext();
    const viewer: Page = await context.newPage();
    await viewer.goto(`${h.url}/view.html?room=${roomId}&poll=long-poll`);
    expect(await playing(viewer)).toBeGreaterThan(0);
    expect(await viewer.textContent("#state")).toBe("connected");
    await until("the host lists its viewer as connected", async () => (await text(tab, '#viewers li .state[data-state="connected"]')) !== null, 10_000);
    expect(await tab.evaluate(() => (window as any).signalbox.client.pollMode)).toBe("long-poll");
    expect(errors).toEqual([]);
    await context.close();
    await host.close();
  });

  both("a meeting of two Chromium participants and one Firefox participant: everyone connects with media", async () => {
    const context = await chromium.newContext();
    const join = async (page: Tab & { goto(url: string): Promise<unknown> }, name: string, roomId = "") => {
      await page.goto(`${h.url}/meet.html${roomId ? `?room=${roomId}` : ""}`);
      await page.evaluate((n) => {
        (document.getElementById("name") as HTMLInputElement).value = n;
        document.querySelector<HTMLButtonElement>('#join button[type="submit"]')!.click();
      }, name);
      await until(`${name} in the meeting`, async () => ((await text(page, "#roomId")) ? true : false), 15_000);
      return (await text(page, "#roomId"))!;
    };
    const ada: Page = await context.newPage();
    const roomId = await join(ada, "Ada");
    const fayPage = await firefox.newPage();
    const fay = asTab(fayPage);
    await join(fay, "Fay", roomId);
    const ben: Page = await context.newPage();
    await join(ben, "Ben", roomId);

    const pages: [string, Tab][] = [["Ada", ada], ["Fay", fay], ["Ben", ben]];
    for (const [name, page] of pages) {
      await until(`${name} connected to both others with video and audio`, async () => {
        const links = Object.values(await meshStats(page));
        return links.length === 2 && links.every((l) => l.state === "connected" && l.frames > 0 && l.audio > 0);
      }, 60_000, () => meshStats(page));
    }
    expect(await text(fay, "#count")).toBe("3");
    await fayPage.close();
    await context.close();
  });
});
