/** The viewer page: join a room by ID and watch the host's screen. */
import { PeerLink } from "../../lib/client/peer-link.js";
import { SessionEndedError, SignalingClient } from "../../lib/client/signaling-client.js";
import { mountChat } from "./chat-panel.js";
import { normalizeRoomId } from "../../lib/id-format.js";
import { $, clientOptions, linkKey, readRoomId, refusal, rtcConfig, showState } from "./common.js";
import { watchStats } from "./stats.js";

const state = $("state");
const message = $("message");
const error = $("error");
const video = $("video") as HTMLVideoElement;
let client: SignalingClient | null = null;
let link: PeerLink | null = null;
let stopStats = () => {};

/**
 * Ends the page's session. Only a session that ran shows "ended"; a join that failed shows
 * "not joined". What the session showed (video, stats) goes: it would be stale.
 */
function end(text: string, how: "ended" | "left" | "not joined" | "failed" = "ended") {
  const normal = how === "ended" || how === "left"; // a status, not an error
  showState(state, how === "ended" ? "ended" : how === "left" ? "idle" : "failed", how);
  (normal ? message : error).textContent = text;
  (normal ? error : message).textContent = "";
  $("cancel").hidden = true;
  link?.close();
  stopStats();
  client?.stop();
  video.srcObject = null;
  $("watch").hidden = true;
  document.querySelectorAll<HTMLElement>("[data-stat]").forEach((cell) => (cell.textContent = "–"));
  $("pick").hidden = false;
}

/**
 * The picture stayed frozen through an ICE restart: only a fresh connection helps, and the
 * host must build one too, so this viewer leaves and joins again as a new peer.
 */
async function rejoin(roomId: string) {
  const stale = client;
  client = null;
  link?.close();
  link = null;
  stopStats();
  await stale?.leave();
  await watch(roomId);
}

/** Ends a wait in the lobby (leaving it) when the viewer leaves or closes the page. */
let waiting: AbortController | null = null;

async function watch(typed: string) {
  const read = readRoomId(typed);
  if ("problem" in read) return end(read.problem, "not joined");
  const { roomId } = read;
  $("pick").hidden = true;
  error.textContent = "";
  showState(state, "connecting", "checking");
  message.textContent = "Looking for the room…";
  try {
    // Joining fails fast on a wrong or expired ID (404), rather than after a 60 s wait; a star
    // room always has its host (the host leaving closes it).
    waiting = new AbortController();
    const onWaiting = () => {
      showState(state, "waiting", "waiting");
      message.textContent = "Waiting for the host to let you in…";
      $("cancel").hidden = false;
    };
    client = await SignalingClient.joinRoom(roomId, { joinKey: linkKey(), onWaiting, signal: waiting.signal }, clientOptions());
  } catch (e) {
    if (waiting?.signal.aborted) return end("You stopped waiting.", "left");
    if (e instanceof SessionEndedError) return end("Room not found. Check the ID, or ask for a new link: the session may have ended.", "not joined");
    const refused = refusal(e);
    if (refused) return end(refused, "not joined");
    return end(`Could not join: ${(e as Error).message}`, "not joined");
  }
  $("cancel").hidden = true;
  const hostId = client.session.room.hostId;
  showState(state, "waiting", "waiting for host");
  message.textContent = "Joined. Waiting for the host's screen…";
  link = new PeerLink({
    client,
    remoteId: hostId,
    polite: true,
    iceServers: client.session.iceServers,
    rtcConfig: rtcConfig(),
    expectOfferFrom: hostId,
    remoteLabel: "the host",
    onTrack: ({ streams }) => {
      video.srcObject = streams[0];
      $("watch").hidden = false;
    },
    onState: (s) => {
      if (s === "closed") return;
      showState(state, s);
      message.textContent = s === "connected" ? "" : s === "reconnecting" ? "Connection interrupted; reconnecting…" : message.textContent;
      if (s === "failed") error.textContent ||= "Could not connect to the host.";
    },
    onError: (e) => {
      if (link?.state === "failed") error.textContent = e.message;
      else console.warn(e.message);
    },
    onFrozen: () => void rejoin(roomId),
  });
  stopStats = watchStats(link.pc, (name, value) => {
    const cell = document.querySelector<HTMLElement>(`[data-stat="${name}"]`);
    if (cell) cell.textContent = value;
  });
  client.onMessage((m) => void link?.handle(m));
  mountChat($("chat"), client);
  client.onEnd((e) => (e.status === 401 ? end("You are no longer in this room: the host removed you, or the session expired.", "failed") : end(e.code === "room_closed" ? "The host ended the session." : "The room has ended.")));
  client.start();
}

$("form").addEventListener("submit", (event) => {
  event.preventDefault();
  const typed = ($("room") as HTMLInputElement).value;
  history.replaceState(null, "", `?${new URLSearchParams({ ...Object.fromEntries(new URLSearchParams(location.search)), room: normalizeRoomId(typed) })}`);
  void watch(typed);
});
$("unmute").addEventListener("click", () => {
  video.muted = !video.muted;
  $("unmute").textContent = video.muted ? "Unmute" : "Mute";
});
$("fullscreen").addEventListener("click", () => void video.requestFullscreen?.());
$("cancel").addEventListener("click", () => waiting?.abort());
$("leave").addEventListener("click", () => {
  void client?.leave();
  end("You left the session.", "left");
});
addEventListener("pagehide", () => (waiting?.abort(), void client?.leave()));

const requested = new URLSearchParams(location.search).get("room");
if (requested) {
  ($("room") as HTMLInputElement).value = requested;
  void watch(requested);
}

// A handle for debugging in the console (and for the end-to-end tests).
Object.assign(window, { signalbox: { get link() { return link; }, get client() { return client; } } });
