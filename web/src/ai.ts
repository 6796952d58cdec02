/**
 * The AI page: microphone → an OpenAI session through this server → live transcript. A Realtime
 * preset, or a GPT-Live one (`?preset=live` picks it): the page shows either API's transcript
 * events. By default the offer goes through the SDP proxy (POST /api/session); `?via=peer` adds
 * the AI to a room as a peer instead, connected by the same PeerLink that connects viewers.
 */
import { PeerLink, whyNotConnected } from "../../lib/client/peer-link.js";
import { SignalingClient } from "../../lib/client/signaling-client.js";
import { $, clientOptions, showState } from "./common.js";

const state = $("state");
const error = $("error");
const transcript = $("transcript");
const params = new URLSearchParams(location.search);
const via = params.get("via") === "peer" ? "peer" : "proxy";
let client: SignalingClient | null = null;
let pc: RTCPeerConnection | null = null;
let link: PeerLink | null = null;
let sessionId: string | null = null;
let mic: MediaStream | null = null;
let channel: RTCDataChannel | null = null;

/** One list item per conversation item: deltas grow it, the completed text replaces it. */
function line(itemId: string, kind: "you" | "ai") {
  let li = transcript.querySelector<HTMLLIElement>(`li[data-item="${CSS.escape(itemId)}"]`);
  if (!li) {
    li = document.createElement("li");
    li.dataset.item = itemId;
    li.className = `partial ${kind}`;
    transcript.append(li);
  }
  return li;
}

/**
 * GPT-Live's transcript comes as deltas, with no items and no "done": a line grows while the same
 * side speaks, and the other side's first delta ends it.
 */
let liveLine: { li: HTMLLIElement; kind: "you" | "ai" } | null = null;
let liveLines = 0;
function liveDelta(kind: "you" | "ai", delta: string) {
  if (liveLine?.kind !== kind) {
    liveLine?.li.classList.remove("partial");
    liveLine = { li: line(`live-${++liveLines}`, kind), kind };
  }
  liveLine.li.textContent += delta;
}

function onEvent(raw: string) {
  const event = JSON.parse(raw) as { type: string; item_id?: string; response_id?: string; delta?: string; transcript?: string; reason?: string; error?: { message?: string } };
  switch (event.type) {
    case "session.created":
    case "session.started":
      $("upstream").textContent = "Session open. Speak: lines appear as they are transcribed.";
      break;
    case "session.input_transcript.delta":
      liveDelta("you", event.delta ?? "");
      break;
    case "session.output_transcript.delta":
      liveDelta("ai", event.delta ?? "");
      break;
    case "session.closed":
      $("upstream").textContent = `The session ended (${event.reason ?? "closed"}).`;
      break;
    case "conversation.item.input_audio_transcription.delta":
      line(event.item_id!, "you").textContent += event.delta ?? "";
      break;
    case "conversation.item.input_audio_transcription.completed": {
      const li = line(event.item_id!, "you");
      li.textContent = event.transcript ?? li.textContent;
      li.classList.remove("partial");
      break;
    }
    case "conversation.item.input_audio_transcription.failed":
      error.textContent = `A line could not be transcribed: ${event.error?.message ?? "unknown error"}`;
      break;
    case "response.output_audio_transcript.delta":
      line(`response-${event.response_id ?? event.item_id}`, "ai").textContent += event.delta ?? "";
      break;
    case "response.output_audio_transcript.done": {
      const li = line(`response-${event.response_id ?? event.item_id}`, "ai");
      li.textContent = event.transcript ?? li.textContent;
      li.classList.remove("partial");
      break;
    }
    case "error":
      error.textContent = `OpenAI: ${event.error?.message ?? "error"}`;
      break;
  }
}

/** Never an endless "connecting": how long the AI's connection may take to come up. */
const CONNECT_DEADLINE_S = 20;

function wire(connection: RTCPeerConnection) {
  setTimeout(() => {
    if (connection.connectionState === "connected" || connection.connectionState === "closed") return; // closed: stopped
    error.textContent = whyNotConnected(connection, "the AI", CONNECT_DEADLINE_S);
    showState(state, "failed");
  }, CONNECT_DEADLINE_S * 1000);
  channel = connection.createDataChannel("oai-events");
  channel.onmessage = ({ data }) => onEvent(String(data));
  connection.ontrack = ({ streams }) => (($("voice") as HTMLAudioElement).srcObject = streams[0]);
  connection.addEventListener("connectionstatechange", () => {
    const s = connection.connectionState;
    if (s === "connected" || s === "failed") showState(state, s);
    else if (s === "disconnected") showState(state, "reconnecting");
  });
}

/** OpenAI takes no trickled candidates: wait until gathering completes (briefly). */
function gathered(connection: RTCPeerConnection, capMs = 2000) {
  if (connection.iceGatheringState === "complete") return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => connection.iceGatheringState === "complete" && resolve();
    connection.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, capMs);
  });
}

async function viaProxy(room: SignalingClient, preset: string) {
  pc = new RTCPeerConnection({ iceServers: room.session.iceServers as RTCIceServer[] });
  mic!.getTracks().forEach((track) => pc!.addTrack(track, mic!));
  wire(pc);
  await pc.setLocalDescription();
  await gathered(pc);
  const started = await room.startAiSession({ sdp: pc.localDescription!.sdp, preset });
  sessionId = started.sessionId;
  await pc.setRemoteDescription({ type: "answer", sdp: started.sdp });
  return started.upstream;
}

async function viaPeer(room: SignalingClient, preset: string) {
  room.onMessage((m) => {
    if (m.type === "peer-joined" && m.peer.role === "agent" && !link) {
      link = new PeerLink({ client: room, remoteId: m.peer.peerId, polite: false, iceServers: room.session.iceServers, stream: mic!, remoteLabel: "AI" });
      wire(link.pc);
    } else {
      void link?.handle(m);
    }
  });
  room.start();
  const started = await room.addAiPeer({ preset });
  sessionId = started.sessionId;
  return started.upstream;
}

async function start() {
  error.textContent = "";
  transcript.replaceChildren();
  liveLine = null;
  $("start").setAttribute("disabled", "");
  try {
    mic = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (e) {
    $("start").removeAttribute("disabled");
    error.textContent = (e as Error).name === "NotAllowedError" ? "Microphone access was not allowed." : `No microphone: ${(e as Error).message}`;
    return;
  }
  showState(state, "connecting");
  try {
    client = await SignalingClient.createRoom({ name: "AI page" }, clientOptions());
    const preset = ($("preset") as HTMLSelectElement).value;
    const upstream = via === "peer" ? await viaPeer(client, preset) : await viaProxy(client, preset);
    $("upstream").textContent = upstream === "simulated" ? "Simulated AI (no OpenAI key on this server): lines describe the audio it receives." : "Connected to OpenAI.";
    $("stop").removeAttribute("disabled");
  } catch (e) {
    error.textContent = `Could not start: ${(e as Error).message}`;
    showState(state, "failed");
    await stop(false);
  }
}

async function stop(ended = true) {
  const room = client;
  client = null;
  if (room && sessionId) await room.endAiSession(sessionId).catch(() => {});
  sessionId = null;
  link?.close();
  link = null;
  pc?.close();
  pc = null;
  mic?.getTracks().forEach((t) => t.stop());
  await room?.closeRoom().catch(() => {});
  if (ended) showState(state, "ended");
  $("stop").setAttribute("disabled", "");
  $("start").removeAttribute("disabled");
}

fetch("/api/diagnostics")
  .then((r) => r.json())
  .then((health) => {
    for (const name of health.modes?.presets ?? ["transcribe"]) $("preset").append(new Option(name, name, false, name === params.get("preset")));
    if (health.modes?.openai === "simulated") $("upstream").textContent = "This server simulates the AI (no OpenAI key): it connects for real and describes the audio it receives.";
  })
  .catch(() => (error.textContent = "The service cannot be reached."));
$("start").addEventListener("click", () => void start());
$("stop").addEventListener("click", () => void stop());
addEventListener("pagehide", () => void stop());

// A handle for debugging in the console (and for the end-to-end tests).
Object.assign(window, { signalbox: { get pc() { return link?.pc ?? pc; }, get sessionId() { return sessionId; }, get channel() { return channel; } } });
