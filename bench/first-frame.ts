/**
 * Benchmark 4 — time to first frame in headless Chromium: from a viewer page starting to load to
 * its first decoded video frame, with the pages on the event stream (their default), forced onto
 * long-poll, and on the seed's interval polling; against the floor of handing the SDP over directly between two pages of the same
 * browser (no signaling server at all). Each run is a fresh room; the host shares first.
 */
import type { Browser, BrowserContext } from "playwright-core";
import { firstFrameAt, launchBrowser } from "../tests/e2e/browser.js";
import { printTable, saveResult, SMOKE, startServer, startStore, STORES, summarize } from "./support.js";

const RUNS = Number(process.env.RUNS ?? (SMOKE ? 1 : 10));

async function throughSignalbox(browser: Browser, base: string, query: string): Promise<number> {
  const context = await browser.newContext();
  try {
    const host = await context.newPage();
    await host.goto(`${base}/host.html${query}`);
    await host.click("#share");
    await host.waitForSelector("#roomId:not(:empty)", { timeout: 15_000 });
    const roomId = await host.textContent("#roomId");
    const viewer = await context.newPage();
    const started = Date.now();
    await viewer.goto(`${base}/view.html?room=${roomId}${query.replace("?", "&")}`);
    return (await firstFrameAt(viewer)) - started;
  } finally {
    await context.close();
  }
}

/** The floor: the same two browsers' work, with descriptions and candidates handed over directly. */
async function directHandover(browser: Browser, base: string): Promise<number> {
  const context: BrowserContext = await browser.newContext();
  try {
    const [a, b] = [await context.newPage(), await context.newPage()];
    await a.goto(`${base}/`);
    await b.goto(`${base}/`);
    await a.evaluate(async () => {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: true });
      const pc = new RTCPeerConnection();
      stream.getTracks().forEach((t) => pc.addTrack(t, stream));
      Object.assign(window, { pc, out: [] as unknown[] });
      pc.onicecandidate = ({ candidate }) => candidate && (window as any).out.push(candidate.toJSON());
    });
    await b.evaluate(() => {
      const pc = new RTCPeerConnection();
      Object.assign(window, { pc, out: [] as unknown[] });
      pc.onicecandidate = ({ candidate }) => candidate && (window as any).out.push(candidate.toJSON());
    });
    const started = Date.now();
    const offer = await a.evaluate(async () => {
      await (window as any).pc.setLocalDescription();
      return (window as any).pc.localDescription.toJSON();
    });
    const answer = await b.evaluate(async (o) => {
      await (window as any).pc.setRemoteDescription(o);
      await (window as any).pc.setLocalDescription();
      return (window as any).pc.localDescription.toJSON();
    }, offer);
    await a.evaluate((o) => (window as any).pc.setRemoteDescription(o), answer);
    // Trickle both ways until the viewer side decodes.
    for (;;) {
      const fromA = await a.evaluate(() => (window as any).out.splice(0));
      const fromB = await b.evaluate(() => (window as any).out.splice(0));
      await b.evaluate(async (list) => { for (const c of list) await (window as any).pc.addIceCandidate(c); }, fromA);
      await a.evaluate(async (list) => { for (const c of list) await (window as any).pc.addIceCandidate(c); }, fromB);
      const frames = await b.evaluate(async () => {
        let f = 0;
        ((await (window as any).pc.getStats()) as RTCStatsReport).forEach((s) => s.type === "inbound-rtp" && s.kind === "video" && (f = s.framesDecoded ?? 0));
        return f;
      });
      if (frames > 0) return Date.now() - started;
      if (Date.now() - started > 30_000) throw new Error("direct handover: no frame");
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    await context.close();
  }
}

export async function firstFrameBenchmark() {
  const browser = await launchBrowser();
  const rows: (string | number)[][] = [];
  const results: Record<string, number[]> = {};
  try {
    for (const kind of STORES) {
      const store = await startStore(kind);
      const server = await startServer(store.env);
      try {
        const modes = { "event stream": "", "long-poll": "?poll=long-poll", interval: "?poll=interval" };
        const runs: Record<string, number[]> = { "event stream": [], "long-poll": [], interval: [] };
        const floor: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          // Interleaved, so drift on a shared machine hits all alike.
          for (const [mode, query] of Object.entries(modes)) runs[mode].push(await throughSignalbox(browser, server.url, query));
          floor.push(await directHandover(browser, server.url));
        }
        const f = summarize(floor);
        for (const [mode, times] of Object.entries(runs)) {
          const s = summarize(times);
          results[`${kind}/${mode}`] = times;
          rows.push([kind, mode, RUNS, s.median, s.p95, `+${Math.round(s.median - f.median)}`, `${Math.round((s.median / f.median) * 100) / 100}×`]);
        }
        results[`${kind}/direct`] = floor;
        rows.push([kind, "direct handover (floor)", RUNS, f.median, f.p95, "", "1×"]);
      } finally {
        await server.stop();
        await store.stop();
      }
    }
  } finally {
    await browser.close();
  }
  printTable("Time to first frame: viewer page load → first decoded frame (ms; the floor is measured from the host's offer)", ["store", "signaling", "runs", "median", "p95", "median over the floor", "÷ floor"], rows);
  await saveResult("first-frame", { results });
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) await firstFrameBenchmark();
