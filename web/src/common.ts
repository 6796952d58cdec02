import { SignalingError, type ClientOptions } from "../../lib/client/signaling-client.js";
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

/** A private link's join key, from its fragment (#k=…), which never reaches a server. */
export function linkKey(): string | undefined {
  return new URLSearchParams(location.hash.slice(1)).get("k") ?? undefined;
}

/** Why a join was refused, in words. */
const REFUSALS: Record<string, string> = {
  join_key_required: "This room is private: open the exact link its host shared with you (the room ID alone is not enough).",
  join_key_invalid: "This link no longer lets anyone in: the host has made a new one. Ask the host for the current link.",
  room_locked: "The host has locked this room: no one new can join right now.",
  join_key_damaged: "This link is incomplete or damaged: ask the host for the link again, or copy all of it.",
  join_denied: "The host did not let you in.",
  join_expired: "The host did not answer in time. Try again, or ask the host to let you in.",
  lobby_full: "Too many people are waiting for the host right now: try again in a minute.",
};

/** What to tell the person a join was refused for, when it is one of REFUSALS. */
export function refusal(e: unknown): string | undefined {
  if (!(e instanceof SignalingError)) return undefined;
  // A key the API calls malformed came from a link cut short.
  return REFUSALS[e.code === "invalid_request" && linkKey() ? "join_key_damaged" : e.code];
}
