import type { ClientOptions } from "../../lib/client/signaling-client.js";
import { ID_PATTERN, normalizeRoomId } from "../../lib/id-format.js";

export const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/** `?poll=long-poll` or `?poll=interval` puts a page on that transport (for comparisons); the event stream otherwise. */
export function clientOptions(): ClientOptions {
  const poll = new URLSearchParams(location.search).get("poll");
  return { mode: poll === "interval" || poll === "long-poll" ? poll : "stream" };
}

/** "idle": not in a room, and nothing went wrong (before joining, or after leaving). */
export type PageState = "idle" | "waiting" | "connecting" | "connected" | "reconnecting" | "failed" | "ended";

export function showState(el: HTMLElement, state: PageState, text: string = state) {
  el.dataset.state = state;
  el.textContent = text;
}

/** `?relay=1` sends all media through TURN: slower, but peers never learn each other's addresses. */
export function rtcConfig(): Partial<RTCConfiguration> {
  return new URLSearchParams(location.search).get("relay") === "1" ? { iceTransportPolicy: "relay" } : {};
}

/** A typed or linked room ID, normalised; or, if it cannot be one, what to tell the person. */
export function readRoomId(typed: string): { roomId: string } | { problem: string } {
  const roomId = normalizeRoomId(typed);
  return ID_PATTERN.test(roomId) ? { roomId } : { problem: "Room IDs are 10 letters and digits (no 0, o, 1, l or i). Check the link, or the ID you typed." };
}
