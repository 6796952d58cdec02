/** The setup every browser suite shares: a harness on a store, and one Chromium for the block. */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import { useHarness, type Harness, type StoreKind } from "../support/harness.js";
import { hasChromium, launchBrowser } from "./browser.js";

/**
 * Starts a harness and Chromium for the enclosing describe block (handing both to `onStart`)
 * and closes them after; returns the `test` to write with, which skips where either is missing.
 */
export function useBrowser(kind: StoreKind, onStart: (h: Harness, browser: Browser) => void, env: Record<string, string> = {}) {
  let harness: Harness | undefined;
  let browser: Browser | undefined;
  const available = useHarness(kind, (started) => (harness = started), env);
  beforeAll(async () => {
    if (!hasChromium || !harness) return;
    browser = await launchBrowser();
    onStart(harness, browser);
  });
  afterAll(async () => browser?.close());
  return hasChromium ? available : available.skip;
}
