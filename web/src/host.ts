/** The host page: share a screen into a new room; one peer connection per viewer. */
import { renderSVG } from "uqr";
import { PeerLink, type LinkState } from "../../lib/client/peer-link.js";
import { SignalingClient, type PeerInfo } from "../../lib/client/signaling-client.js";
import { mountChat } from "./chat-panel.js";
import { $, clientOptions, rtcConfig, showState } from "./common.js";

const state = $("state");
const error = $("error");
const links = new Map<string, PeerLink>();
let client: SignalingClient | null = null;
let stream: MediaStream | null = null;

function viewerRow(peer: PeerInfo, linkState: LinkState) {
  let row = document.querySelector<HTMLLIElement>(`li[data-peer="${peer.peerId}"]`);
  if (!row) {
    row = document.createElement("li");
    row.dataset.peer = peer.peerId;
    row.innerHTML = `<span class="name"></span><span class="state"></span>`;
    row.querySelector(".name")!.textContent = peer.name ?? `Viewer ${peer.peerId.slice(0, 4)}`;
    $("viewers").append(row);
  }
  const badge = row.querySelector<HTMLElement>(".state")!;
  badge.dataset.state = linkState;
  badge.textContent = linkState;
  $("count").textContent = String(links.size);
}

function addViewer(peer: PeerInfo) {
  if (!client || !stream || links.has(peer.peerId)) return;
  const link = new PeerLink({
    client,
    remoteId: peer.peerId,
    polite: false,
    iceServers: client.session.iceServers,
    rtcConfig: rtcConfig(),
    stream,
    remoteLabel: "viewer",
    onState: (s) => viewerRow(peer, s),
    onError: (e) => console.warn(`viewer ${peer.peerId}: ${e.message}`),
  });
  links.set(peer.peerId, link);
  viewerRow(peer, link.state);
}

function removeViewer(peerId: string) {
  links.get(peerId)?.close();
  links.delete(peerId);
  document.querySelector(`li[data-peer="${peerId}"]`)?.remove();
  $("count").textContent = String(links.size);
}

async function stop(reason = "Sharing stopped") {
  if (!client) return;
  const ending = client;
  client = null;
  links.forEach((link) => link.close());
  links.clear();
  stream?.getTracks().forEach((t) => t.stop());
  showState(state, "ended", "ended");
  $("stop").setAttribute("disabled", "");
  error.textContent = "";
  $("start").hidden = false;
  $("share").textContent = "Share again";
  ($("preview") as HTMLVideoElement).srcObject = null;
  await ending.closeRoom().catch(() => {});
  console.info(reason);
}

async function share() {
  error.textContent = "";
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: true });
  } catch (e) {
    error.textContent = (e as Error).name === "NotAllowedError" ? "Screen sharing was not allowed." : `Could not share the screen: ${(e as Error).message}`;
    return;
  }
  showState(state, "connecting", "starting");
  try {
    client = await SignalingClient.createRoom({}, clientOptions());
  } catch (e) {
    stream.getTracks().forEach((t) => t.stop());
    showState(state, "failed");
    error.textContent = `Could not create a room: ${(e as Error).message}`;
    return;
  }
  const url = `${location.origin}/view.html?room=${client.roomId}`;
  $("roomId").textContent = client.roomId;
  const link = $("link") as HTMLAnchorElement;
  link.href = link.textContent = url;
  $("qr").innerHTML = renderSVG(url, { border: 0 });
  ($("preview") as HTMLVideoElement).srcObject = stream;
  $("start").hidden = true;
  $("live").hidden = false;
  $("stop").removeAttribute("disabled");
  $("viewers").replaceChildren();
  showState(state, "connected", "sharing");

  // The browser's own "Stop sharing" ends the room too.
  stream.getVideoTracks()[0].addEventListener("ended", () => void stop("Stopped from the browser"));
  client.onMessage((message) => {
    if (message.type === "peer-joined") addViewer(message.peer);
    else if (message.type === "peer-left") removeViewer(message.peerId);
    else links.get(message.from)?.handle(message);
  });
  client.onEnd((e) => {
    showState(state, "ended");
    error.textContent = e.message;
  });
  mountChat($("chat"), client);
  client.start();
}

$("share").addEventListener("click", () => void share());
$("stop").addEventListener("click", () => void stop());
$("copy").addEventListener("click", async () => {
  await navigator.clipboard.writeText($("link").textContent!).catch(() => getSelection()?.selectAllChildren($("link")));
  $("copy").textContent = "Copied";
  setTimeout(() => ($("copy").textContent = "Copy link"), 1500);
});
addEventListener("pagehide", () => void client?.closeRoom());

// A handle for debugging in the console (and for the end-to-end tests).
Object.assign(window, { signalbox: { links, get client() { return client; } } });
