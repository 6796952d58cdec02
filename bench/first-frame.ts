/**
 * Time to first frame: from a viewer page starting to load to its first decoded video frame,
 * in headless Chromium, with the pages long-polling and with the seed's interval polling.
 * Each run is a fresh room, host page and viewer page; the host starts sharing first.
 *
 *   npm run bench:first-frame              # RUNS=10 by default
 */
import { startServer } from "../lib/server.js";
import { firstFrameAt, launchBrowser } from "../tests/e2e/browser.js";

const runs = Number(process.env.RUNS ?? 10);
const server = await startServer({ env: { ICE_SERVERS: "[]", RATE_LIMIT_ROOMS_PER_HOUR: "100000", RATE_LIMIT_CALLS_PER_HOUR: "1000000" }, port: 0 });
const browser = await launchBrowser();

async function once(query: string): Promise<number> {
  const context = await browser.newContext();
  try {
    const host = await context.newPage();
    await host.goto(`${server.url}/host.html${query}`);
    await host.click("#share");
    await host.waitForSelector("#roomId:not(:empty)", { timeout: 15_000 });
    const roomId = await host.textContent("#roomId");
    const viewer = await context.newPage();
    const started = Date.now();
    await viewer.goto(`${server.url}/view.html?room=${roomId}${query.replace("?", "&")}`);
    return (await firstFrameAt(viewer, 60_000)) - started;
  } finally {
    await context.close();
  }
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const results: Record<string, number[]> = { "long-poll": [], interval: [] };
for (let i = 0; i < runs; i++) {
  // Alternate the modes so drift on a shared machine hits both alike.
  results["long-poll"].push(await once(""));
  results.interval.push(await once("?poll=interval"));
}
console.log(`\nViewer page load → first decoded frame, ${runs} runs each (Chromium headless, memory store, ${new Date().toISOString()})\n`);
console.log("| polling | median ms | p95 ms | min | max |");
console.log("|---|---|---|---|---|");
for (const [mode, times] of Object.entries(results)) {
  const sorted = [...times].sort((a, b) => a - b);
  console.log(`| ${mode} | ${quantile(sorted, 0.5)} | ${quantile(sorted, 0.95)} | ${sorted[0]} | ${sorted.at(-1)} |`);
}
const median = (m: string) => quantile([...results[m]].sort((a, b) => a - b), 0.5);
console.log(`\ninterval / long-poll median: ${(median("interval") / median("long-poll")).toFixed(2)}×`);
console.log(JSON.stringify(results));
await browser.close();
await server.close();
