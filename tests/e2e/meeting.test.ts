/**
 * A four-person mesh meeting in headless Chromium (fake camera and microphone): everyone
 * connects to everyone (12 directed connections, 6 pairs) and receives video and audio from
 * each; chat reaches the others; someone leaving updates everyone else.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { describe, expect } from "vitest";
import { apiClient, joinRoom, STORES, type Harness } from "../support/harness.js";
import { ARTIFACTS, meshStats, until, watchConsole } from "./browser.js";
import { useBrowser } from "./use-browser.js";

/** Opens the meeting page at `address`, gives the name (and, starting one, who may join) and clicks Join. */
async function openMeeting(context: BrowserContext, address: string, name: string, access?: "key" | "lobby") {
  const page = await context.newPage();
  await page.goto(address);
  await page.fill("#name", name);
  if (access) await page.check(`input[name="access"][value="${access}"]`);
  await page.click('#join button[type="submit"]');
  return page;
}

/** Opens the meeting page in `context` and joins (or, without a room ID, starts) a meeting. */
async function joinMeeting(context: BrowserContext, url: string, name: string, roomId = "", query = "", access?: "key" | "lobby") {
  const params = new URLSearchParams(query);
  if (roomId) params.set("room", roomId);
  const page = await openMeeting(context, `${url}/meet.html${params.size ? `?${params}` : ""}`, name, access);
  await page.waitForSelector("#roomId:not(:empty)", { timeout: 15_000 });
  return page;
}

describe.each(STORES)("meeting in Chromium [%s]", (kind) => {
  let h: Harness;
  let browser: Browser;
  const test = useBrowser(kind, (started, b) => ((h = started), (browser = b)));

  test("four people all connect to each other with media, chat, and see one leave", async () => {
    const context = await browser.newContext();
    const names = ["Ada", "Ben", "Cai", "Dee"];
    const pages: Page[] = [];
    const errors: string[][] = [];
    const warnings: string[] = [];
    let roomId = "";
    for (const name of names) {
      const page = await joinMeeting(context, h.url, name, roomId);
      errors.push(watchConsole(page));
      page.on("console", (m) => m.type() === "warning" && warnings.push(`${name}: ${m.text()}`));
      roomId ||= (await page.textContent("#roomId"))!;
      pages.push(page);
    }
    const ids = await Promise.all(pages.map((p) => p.evaluate(() => (window as any).signalbox.client.peerId as string)));

    // Every page: connected to the three others, decoding their video and receiving their audio.
    for (const [i, page] of pages.entries()) {
      const stats = await until(`${names[i]}'s three connections`, async () => {
        const s = await meshStats(page);
        const others = ids.filter((id) => id !== ids[i]);
        return others.every((id) => s[id]?.state === "connected" && s[id].frames > 0 && s[id].audio > 0) ? s : false;
      }, 60_000, async () => ({ me: ids[i], links: await meshStats(page), all: ids, warnings }));
      expect(Object.keys(stats).sort()).toEqual(ids.filter((id) => id !== ids[i]).sort());
      expect(await page.locator(".tile").count()).toBe(4);
      expect(await page.textContent("#count")).toBe("4");
    }
    await pages[0].screenshot({ path: `${ARTIFACTS}meeting-${kind}.png` });

    // Chat from one appears on the other three.
    await pages[1].fill("#chat input", "Hello from Ben");
    await pages[1].click('#chat button[type="submit"]');
    for (const page of [pages[0], pages[2], pages[3]]) {
      await page.waitForFunction(() => document.querySelector("#chat .messages")!.textContent!.includes("Ben: Hello from Ben"), null, { timeout: 10_000 });
    }
    expect(await pages[1].textContent("#chat .messages")).toContain("You: Hello from Ben");

    // Dee leaves: the other three drop exactly that connection and update their lists.
    await pages[3].click("#leave");
    for (const page of pages.slice(0, 3)) {
      await page.waitForFunction((id) => !document.querySelector(`.tile[data-peer="${id}"]`), ids[3], { timeout: 10_000 });
      expect(await page.textContent("#count")).toBe("3");
      const stats = await meshStats(page);
      expect(Object.keys(stats)).toHaveLength(2);
      expect(Object.values(stats).every((s) => s.state === "connected")).toBe(true);
    }
    for (const e of errors) expect(e).toEqual([]);
    await context.close();
  });

  test("the creator's choice: a lobby it lets people in from (everyone admitted connects to everyone), or a private invite link", async () => {
    const context = await browser.newContext();
    const ada = await joinMeeting(context, h.url, "Ada", "", "", "lobby");
    const roomId = (await ada.textContent("#roomId"))!;

    const knock = async (name: string) => {
      const page = await openMeeting(context, `${h.url}/meet.html?room=${roomId}`, name);
      await page.waitForFunction(() => document.getElementById("message")!.textContent === "Waiting for the host to let you in…", null, { timeout: 10_000 });
      await ada.waitForSelector(`#knocks li[data-knock] .name:text("${name}")`, { timeout: 10_000 });
      return page;
    };
    const answer = (name: string, button: "admit" | "deny") => ada.click(`#knocks li[data-knock]:has(.name:text("${name}")) .${button}`);
    const ben = await knock("Ben");
    const cai = await knock("Cai");
    await answer("Ben", "admit");
    await answer("Cai", "admit");
    const dee = await knock("Dee");
    await answer("Dee", "deny");
    await dee.waitForFunction(() => document.getElementById("error")!.textContent !== "", null, { timeout: 10_000 });
    expect(await dee.textContent("#error")).toBe("The host did not let you in.");

    const pages = [ada, ben, cai];
    const ids = await Promise.all(pages.map((p) => p.evaluate(() => (window as any).signalbox.client.peerId as string)));
    for (const [i, page] of pages.entries()) {
      await until(`${i}: connected to both others with media`, async () => {
        const s = await meshStats(page);
        return ids.filter((id) => id !== ids[i]).every((id) => s[id]?.state === "connected" && s[id].frames > 0);
      }, 60_000, () => meshStats(page));
    }
    expect(await ada.textContent("#count")).toBe("3");

    // A private meeting: its invite link carries the key; the room ID alone is refused in words.
    const eve = await joinMeeting(context, h.url, "Eve", "", "", "key");
    const invite = await eve.evaluate(() => location.href);
    const privateRoom = (await eve.textContent("#roomId"))!;
    expect(invite).toMatch(new RegExp(`\\?room=${privateRoom}#k=[A-Za-z0-9_-]{22}$`));
    const stranger = await openMeeting(context, `${h.url}/meet.html?room=${privateRoom}`, "Stranger");
    await stranger.waitForFunction(() => document.getElementById("error")!.textContent !== "", null, { timeout: 10_000 });
    expect(await stranger.textContent("#error")).toMatch(/^This room is private/);
    const friend = await openMeeting(context, invite, "Friend");
    await friend.waitForSelector("#roomId:not(:empty)", { timeout: 15_000 });
    expect(await friend.textContent("#roomId")).toBe(privateRoom);
    await context.close();
  });

  test("a malformed room ID is explained before joining; leaving is no error", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${h.url}/meet.html?room=l0l0l0l0l0`);
    await page.fill("#name", "Ada");
    await page.click('#join button[type="submit"]');
    await page.waitForFunction(() => document.getElementById("error")!.textContent !== "");
    expect(await page.textContent("#error")).toBe("Room IDs are 10 letters and digits (no 0, o, 1, l or i). Check the link, or the ID you typed.");
    expect(await page.textContent("#state")).toBe("not joined");

    await page.fill("#room", "");
    await page.click('#join button[type="submit"]');
    await page.waitForSelector("#roomId:not(:empty)", { timeout: 15_000 });
    await page.click("#leave");
    await page.waitForFunction(() => !document.getElementById("lobby")!.hidden);
    expect([await page.textContent("#message"), await page.textContent("#error")]).toEqual(["You left the meeting.", ""]);
    expect(await page.getAttribute("#state", "data-state")).toBe("idle");
    await context.close();
  });

  test("two tabs long-polling the very same URL each get their own mail at once", async () => {
    // Fan-out messages carry one id into every inbox, so after one, two tabs of a room poll
    // identical URLs; the browser must not hold one behind the other (its HTTP cache lock),
    // or mail for the held tab waits until the other tab's long-poll ends. (On long-poll: the
    // event stream's reconnects go through the same client call, uncached the same way.)
    const context = await browser.newContext();
    const ada = await joinMeeting(context, h.url, "Ada", "", "poll=long-poll");
    const roomId = (await ada.textContent("#roomId"))!;
    const ben = await joinMeeting(context, h.url, "Ben", roomId, "poll=long-poll");
    // Once Ada and Ben are connected, no more mail flows between them.
    for (const page of [ada, ben]) {
      await until("Ada and Ben connected", async () => Object.values(await meshStats(page)).some((l) => l.state === "connected"), 30_000);
    }
    await new Promise((r) => setTimeout(r, 1000));
    const polls: { page: Page; url: string }[] = [];
    for (const page of [ada, ben]) page.on("request", (r) => r.url().includes("/api/poll") && polls.push({ page, url: r.url() }));
    const api = apiClient(h.url);
    const cai = await joinRoom(api, roomId, "Cai");
    const ids = await Promise.all([ada, ben].map((p) => p.evaluate(() => (window as any).signalbox.client.peerId as string)));

    const latest = () => [ada, ben].map((page) => polls.findLast((p) => p.page === page)?.url ?? "");
    let fanOuts = 0;
    /** Sends fan-outs until both tabs wait on the same URL (a fan-out's ids can straddle a millisecond). */
    const align = async () => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const text = `fan-out ${++fanOuts}`;
        const before = [ada, ben].map((page) => polls.filter((p) => p.page === page).length);
        await api.post("/api/chat", { roomId, text }, cai.token);
        for (const page of [ada, ben]) await page.waitForFunction((t) => document.querySelector("#chat .messages")!.textContent!.includes(t), `Cai: ${text}`, { timeout: 5000 });
        await until("both tabs polling again", async () => [ada, ben].every((page, i) => polls.filter((p) => p.page === page).length > before[i]), 5000);
        if (latest()[0] === latest()[1]) return;
      }
      throw new Error(`the tabs never polled the same URL: ${JSON.stringify(latest())}`);
    };

    for (let round = 0; round < 3; round++) {
      // Both tabs now wait on the same URL; the later request is the one a lock would hold.
      await align();
      const held = polls.at(-1)!.page;
      const woken = held.waitForResponse((r) => r.url().includes("/api/poll") && r.status() === 200, { timeout: 5000 });
      await api.post("/api/candidate", { roomId, to: ids[held === ada ? 0 : 1], candidates: [null] }, cai.token);
      await woken; // a long-poll waits 25 s: answering within 5 s means it woke
    }
    await context.close();
  });
});
