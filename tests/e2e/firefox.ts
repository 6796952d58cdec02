/**
 * Headless Firefox (Debian's firefox-esr, never a downloaded build) driven over WebDriver BiDi
 * by puppeteer-core: fake camera and microphone, their permission granted, and the background
 * services that would reach for the internet switched off.
 */
import { existsSync } from "node:fs";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import type { Tab } from "./browser.js";
import { childEnv } from "../support/processes.js";

export const FIREFOX = process.env.FIREFOX_PATH ?? "/usr/bin/firefox-esr";
export const hasFirefox = existsSync(FIREFOX);

if (!hasFirefox) {
  if (process.env.CI === "true") throw new Error(`Firefox not found at ${FIREFOX}: the Firefox suites must run in CI`);
  console.warn(`\n*** Firefox not found at ${FIREFOX}: Firefox suites SKIPPED (apt-get install firefox-esr) ***\n`);
}

export function launchFirefox(): Promise<Browser> {
  return puppeteer.launch({
    browser: "firefox",
    protocol: "webDriverBiDi",
    executablePath: FIREFOX,
    headless: true,
    env: childEnv(),
    extraPrefsFirefox: {
      "media.navigator.streams.fake": true,
      "media.navigator.permission.disabled": true,
      "network.captive-portal-service.enabled": false,
      "network.connectivity-service.enabled": false,
      "browser.safebrowsing.update.enabled": false,
      "services.settings.server": "http://127.0.0.1:9/",
      "network.dns.disableIPv6": false,
    },
  });
}

/** A Firefox page seen through the interface the shared helpers take (see browser.ts). */
export function asTab(page: Page): Tab & { goto(url: string): Promise<unknown> } {
  return {
    evaluate: <R, A>(fn: (arg: A) => R | Promise<R>, arg?: A) => page.evaluate(fn as (arg: unknown) => R, arg) as Promise<R>,
    goto: (url) => page.goto(url),
  };
}
