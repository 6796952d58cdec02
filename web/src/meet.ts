/** The meeting page: everyone sees and hears everyone (a full mesh), with chat beside it. */
import { Mesh } from "../../lib/client/mesh.js";
import { SignalingClient, SignalingError, type PeerInfo } from "../../lib/client/signaling-client.js";
import { mountChat } from "./chat-panel.js";
import { $, clientOptions, linkKey, readRoomId, refusal, showState } from "./common.js";
import { mountKnocks } from "./knocks.js";

const state = $("state");
const error = $("error");
const message = $("message");
let client: SignalingClient | null = null;
let mesh: Mesh | null = null;
let local: MediaStream | null = null;
let stopLevels = () => {};
let unmountKnocks = () => {};
/** Ends a wait in the lobby (leaving it). */
let waiting: AbortController | null = null;

function mediaError(e: Error): string {
  if (e.name === "NotAllowedError") return "Camera and microphone access was not allowed. Allow it in the browser's address bar and try again.";
  if (e.name === "NotFoundError") return "No camera or microphone was found.";
  if (e.name === "NotReadableError") return "The camera or microphone is in use by another application.";
  return `Could not use the camera or microphone: ${e.message}`;
}

async function openDevices(): Promise<MediaStream> {
  const video = { width: 320, height: 240, frameRate: 15 };
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true, video });
  } catch (e) {
    if ((e as Error).name !== "NotFoundError") throw e;
    return navigator.mediaDevices.getUserMedia({ audio: true }); // no camera: join with audio only
  }
}

function tile(peerId: string, name: string) {
  let el = document.querySelector<HTMLElement>(`.tile[data-peer="${peerId}"]`);
  if (!el) {
    el = document.createElement("div");
    el.className = "tile";
    el.dataset.peer = peerId;
    el.innerHTML = `<video autoplay playsinline></video><div class="label"><span class="name"></span><span class="state"></span></div>`;
    el.querySelector(".name")!.textContent = name;
    $("tiles").append(el);
  }
  return el;
}

function person(peer: PeerInfo, self = false) {
  const li = document.createElement("li");
  li.dataset.peer = peer.peerId;
  li.textContent = `${peer.name ?? peer.peerId}${self ? " (you)" : ""}`;
  $("people").append(li);
  $("count").textContent = String($("people").children.length);
}

function forget(peerId: string) {
  document.querySelectorAll(`[data-peer="${peerId}"]`).forEach((el) => el.remove());
  $("count").textContent = String($("people").children.length);
}

/** Marks who is speaking, from the audio level of each peer's incoming audio. */
function watchLevels(): () => void {
  const timer = setInterval(async () => {
    for (const [peerId, link] of mesh?.links ?? []) {
      let level = 0;
      (await link.pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "audio") level = s.audioLevel ?? 0;
      });
      document.querySelector(`.tile[data-peer="${peerId}"]`)?.classList.toggle("speaking", level > 0.02);
    }
  }, 300);
  return () => clearInterval(timer);
}

async function join(name: string, typed: string) {
  const read = typed.trim() ? readRoomId(typed) : { roomId: "" };
  if ("problem" in read) {
    showState(state, "failed", "not joined");
    error.textContent = read.problem;
    return;
  }
  const { roomId } = read;
  error.textContent = "";
  message.textContent = "";
  try {
    local = await openDevices();
  } catch (e) {
    error.textContent = mediaError(e as Error);
    return;
  }
  showState(state, "connecting", "joining");
  const chosen = document.querySelector<HTMLInputElement>('input[name="access"]:checked')?.value;
  const access = chosen === "key" || chosen === "lobby" ? chosen : "open";
  waiting = new AbortController();
  const onWaiting = () => {
    showState(state, "waiting", "waiting");
    message.textContent = "Waiting for the host to let you in…";
    $("cancel").hidden = false;
  };
  try {
    client = roomId
      ? await SignalingClient.joinRoom(roomId, { name, joinKey: linkKey(), onWaiting, signal: waiting.signal }, clientOptions())
      : await SignalingClient.createRoom({ topology: "mesh", name, access }, clientOptions());
  } catch (e) {
    local.getTracks().forEach((t) => t.stop());
    $("cancel").hidden = true;
    message.textContent = "";
    if (waiting.signal.aborted) return (showState(state, "idle", "not in a meeting"), void (message.textContent = "You stopped waiting."));
    showState(state, "failed", "not joined");
    if (refusal(e)) error.textContent = refusal(e)!;
    else if (e instanceof SignalingError && e.code === "room_full") error.textContent = "This meeting is full (8 people at most).";
    else if (e instanceof SignalingError && e.status === 404) error.textContent = "No meeting with that ID: check it, or start a new one.";
    else error.textContent = `Could not join: ${(e as Error).message}`;
    return;
  }
  $("cancel").hidden = true;
  message.textContent = "";
  // The invite link: a private meeting's key rides in the fragment, as on the host page.
  const key = client.session.joinKey ?? linkKey();
  history.replaceState(null, "", `?room=${client.roomId}${key ? `#k=${key}` : ""}`);
  $("roomId").textContent = client.roomId;
  $("lobby").hidden = true;
  $("meeting").hidden = false;
  showState(state, "connected", "in the meeting");

  const mine = tile(client.peerId, `${name} (you)`);
  const preview = mine.querySelector("video")!;
  preview.muted = true;
  preview.srcObject = local;
  for (const peer of client.session.peers) person(peer, peer.peerId === client.peerId);
  mountChat($("chat"), client);
  unmountKnocks = mountKnocks($("knocks"), client, (text) => (error.textContent = text));

  mesh = new Mesh({
    client,
    stream: local,
    onPeer: (peer) => {
      tile(peer.peerId, peer.name ?? "Guest");
      if (!document.querySelector(`#people [data-peer="${peer.peerId}"]`)) person(peer);
    },
    onTrack: (peer, { streams }) => {
      const video = tile(peer.peerId, peer.name ?? "Guest").querySelector("video")!;
      if (video.srcObject !== streams[0]) video.srcObject = streams[0];
    },
    onState: (peer, s) => {
      const badge = document.querySelector<HTMLElement>(`.tile[data-peer="${peer.peerId}"] .state`);
      if (badge) badge.textContent = s === "connected" ? "" : s;
    },
    onLeave: forget,
    onError: (peer, e) => console.warn(`${peer.name ?? peer.peerId}: ${e.message}`),
  });
  stopLevels = watchLevels();
  client.onEnd(() => leave("The meeting has ended.", "ended"));
  client.start();
}

/** Leaving is no failure: a status line, and a neutral badge unless the meeting itself ended. */
async function leave(text = "You left the meeting.", how: "left" | "ended" = "left") {
  stopLevels();
  unmountKnocks();
  mesh?.close();
  mesh = null;
  local?.getTracks().forEach((t) => t.stop());
  const leaving = client;
  client = null;
  await leaving?.leave();
  $("tiles").replaceChildren();
  $("people").replaceChildren();
  $("meeting").hidden = true;
  $("lobby").hidden = false;
  showState(state, how === "ended" ? "ended" : "idle", how === "ended" ? "ended" : "not in a meeting");
  message.textContent = text;
}

function toggle(kind: "audio" | "video", button: HTMLElement, on: string, off: string) {
  const tracks = kind === "audio" ? local?.getAudioTracks() : local?.getVideoTracks();
  if (!tracks?.length) return;
  const enabled = !tracks[0].enabled;
  tracks.forEach((t) => (t.enabled = enabled));
  button.textContent = enabled ? on : off;
}

$("join").addEventListener("submit", (event) => {
  event.preventDefault();
  void join(($("name") as HTMLInputElement).value.trim(), ($("room") as HTMLInputElement).value);
});
$("mic").addEventListener("click", () => toggle("audio", $("mic"), "Mute", "Unmute"));
$("cam").addEventListener("click", () => toggle("video", $("cam"), "Camera off", "Camera on"));
$("leave").addEventListener("click", () => void leave());
$("cancel").addEventListener("click", () => waiting?.abort());
$("copy").addEventListener("click", () => void navigator.clipboard.writeText(location.href).then(() => ($("copy").textContent = "Copied")));
addEventListener("pagehide", () => (waiting?.abort(), void client?.leave()));

const invited = new URLSearchParams(location.search).get("room");
if (invited) ($("room") as HTMLInputElement).value = invited;

// A handle for debugging in the console (and for the end-to-end tests).
Object.assign(window, { signalbox: { get mesh() { return mesh; }, get client() { return client; } } });
