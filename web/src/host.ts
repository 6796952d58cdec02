/** The host page: share a screen into a new room; one peer connection per viewer. */
import { renderSVG } from "uqr";
import { PeerLink, type LinkState } from "../../lib/client/peer-link.js";
import { SignalingClient, type PeerInfo } from "../../lib/client/signaling-client.js";
import { mountChat } from "./chat-panel.js";
import { mountKnocks } from "./knocks.js";
import { $, clientOptions, rtcConfig, showState } from "./common.js";

const state = $("state");
const error = $("error");
const links = new Map<string, PeerLink>();
let client: SignalingClient | null = null;
let stream: MediaStream | null = null;
let unmountKnocks = () => {};

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
  unmountKnocks();
  await ending.closeRoom().catch(() => {});
  console.info(reason);
}

/**
 * The viewer link. A private room's key rides in the fragment (#k=…), which browsers never send
 * to a server or in a Referer: only people given the link have it.
 */
function showLink(c: SignalingClient) {
  const url = `${location.origin}/view.html?room=${c.roomId}${c.session.joinKey ? `#k=${c.session.joinKey}` : ""}`;
  const link = $("link") as HTMLAnchorElement;
  link.href = link.textContent = url;
  $("qr").innerHTML = renderSVG(url, { border: 0 });
}

function showLock(locked: boolean) {
  $("lock").setAttribute("aria-pressed", String(locked));
  $("lock").textContent = locked ? "Unlock room" : "Lock room";
  $("lockState").textContent = locked ? "Locked: no one new can join. Viewers already here keep watching." : "";
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
  const chosen = document.querySelector<HTMLInputElement>('input[name="access"]:checked')?.value;
  const access = chosen === "key" || chosen === "lobby" ? chosen : "open";
  try {
    client = await SignalingClient.createRoom({ access }, clientOptions());
  } catch (e) {
    stream.getTracks().forEach((t) => t.stop());
    showState(state, "failed");
    error.textContent = `Could not create a room: ${(e as Error).message}`;
    return;
  }
  $("roomId").textContent = client.roomId;
  showLink(client);
  $("rotate").hidden = access !== "key";
  showLock(false);
  ($("preview") as HTMLVideoElement).srcObject = stream;
  $("start").hidden = true;
  $("live").hidden = false;
  $("stop").removeAttribute("disabled");
  $("viewers").replaceChildren();
  showState(state, "connected", "sharing");

  // The browser's own "Stop sharing" ends the room too.
  stream.getVideoTracks()[0].addEventListener("ended", () => void stop("Stopped from the browser"));
  unmountKnocks = mountKnocks($("knocks"), client, (text) => (error.textContent = text));
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
$("lock").addEventListener("click", async () => {
  if (!client) return;
  const locked = !client.session.room.locked;
  try {
    await client.setLocked(locked);
    showLock(locked);
  } catch (e) {
    error.textContent = `Could not ${locked ? "lock" : "unlock"} the room: ${(e as Error).message}`;
  }
});
$("rotate").addEventListener("click", async () => {
  if (!client) return;
  try {
    await client.rotateJoinKey();
    showLink(client);
    $("lockState").textContent = "New link made: the old one no longer lets anyone in. Viewers already here keep watching.";
  } catch (e) {
    error.textContent = `Could not make a new link: ${(e as Error).message}`;
  }
});
addEventListener("pagehide", () => void client?.closeRoom());

// A handle for debugging in the console (and for the end-to-end tests).
Object.assign(window, { signalbox: { links, get client() { return client; } } });
