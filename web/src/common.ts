import type { ClientOptions } from "../../lib/client/signaling-client.js";

export const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/** `?poll=interval` switches a page to interval polling (for comparisons); long-poll otherwise. */
export function clientOptions(): ClientOptions {
  return { mode: new URLSearchParams(location.search).get("poll") === "interval" ? "interval" : "long-poll" };
}

export type PageState = "waiting" | "connecting" | "connected" | "reconnecting" | "failed" | "ended";

export function showState(el: HTMLElement, state: PageState, text: string = state) {
  el.dataset.state = state;
  el.textContent = text;
}

/** `?relay=1` sends all media through TURN: slower, but peers never learn each other's addresses. */
export function rtcConfig(): Partial<RTCConfiguration> {
  return new URLSearchParams(location.search).get("relay") === "1" ? { iceTransportPolicy: "relay" } : {};
}
