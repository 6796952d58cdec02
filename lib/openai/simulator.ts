/**
 * Simulation: a real WebRTC peer in this process stands in for OpenAI (werift, pure
 * TypeScript), so a browser's connection really becomes `connected`, its `oai-events` data
 * channel opens and receives what OpenAI's API of the preset would send: Realtime-shaped events
 * (`session.created`, then one transcript line per second of audio actually received, and for a
 * voice agent a reply's transcript), or GPT-Live's (`session.started`, then input and output
 * transcript deltas, only those the preset's data channel allows, and an `error` for a client
 * event it does not). For `npm start` and tests only: a serverless function cannot keep a peer
 * alive past its response.
 *
 * It never sends a packet off this machine's chosen interfaces: ICE-lite (host candidates
 * only, so werift's public STUN default is never asked).
 *
 * Loopback is a candidate only on a machine that has nothing else. Beside another address it
 * breaks the call: a browser checks every pair and, facing an ICE-lite peer, nominates each
 * one; werift keeps the first it hears, and when that pairs the browser's LAN address with
 * 127.0.0.1 the browser discards what comes back from loopback, so DTLS never completes
 * (ICE "connected", the connection stuck at "connecting").
 */
import { networkInterfaces } from "node:os";
import { nanoid } from "nanoid";
import { Problem } from "../problem.js";
import { RTCPeerConnection, type RTCDataChannel } from "werift";
import type { LivePreset, Preset, RealtimePreset } from "./presets.js";
import type { AiApi, RealtimeUpstream } from "./upstream.js";

interface Call {
  pc: RTCPeerConnection;
  timers: NodeJS.Timeout[];
  /** A GPT-Live session tells its browser it closed (the sideband's `session.close` asks it to). */
  closing?: (reason: "close_requested" | "expired") => void;
}

type Send = (event: Record<string, unknown>) => void;

const GATHERING_CAP_MS = 2000;

/** Whether werift will find a host address of its own (it skips loopback and link-local). */
function hasNonLoopbackIPv4() {
  return Object.values(networkInterfaces())
    .flat()
    .some((a) => a && a.family === "IPv4" && !a.internal && !a.address.startsWith("169.254."));
}

export class SimulatedUpstream implements RealtimeUpstream {
  readonly kind = "simulated" as const;
  private readonly calls = new Map<string, Call>();

  async connect(offerSdp: string, preset: Preset) {
    const pc = new RTCPeerConnection({
      iceServers: [],
      iceLite: true,
      iceAdditionalHostAddresses: hasNonLoopbackIPv4() ? [] : ["127.0.0.1"],
      iceUseIpv6: false,
    });
    const callId = preset.type === "live" ? `live_sim_${nanoid(20)}` : `rtc_sim_${nanoid(20)}`;
    const call: Call = { pc, timers: [] };
    this.calls.set(callId, call);
    const heard = { packets: 0, bytes: 0 };
    pc.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) => {
        heard.packets++;
        heard.bytes += rtp.payload.length;
      });
    });
    pc.onDataChannel.subscribe((channel) => {
      if (channel.label === "oai-events") this.narrate(call, channel, preset, callId, heard);
    });
    pc.connectionStateChange.subscribe((state) => {
      if (state === "failed" || state === "closed") void this.hangup(callId);
    });
    try {
      await pc.setRemoteDescription({ type: "offer", sdp: offerSdp });
      await pc.setLocalDescription(await pc.createAnswer());
    } catch (error) {
      // OpenAI answers an offer it cannot take with 400; so does its stand-in.
      await this.hangup(callId);
      throw new Problem(400, "upstream_rejected", "OpenAI rejected the session", `The simulated OpenAI rejected the offer: ${(error as Error).message}`);
    }
    // No trickle ICE upstream: the answer carries every candidate.
    if (pc.iceGatheringState !== "complete") {
      await new Promise<void>((resolve) => {
        const cap = setTimeout(resolve, GATHERING_CAP_MS);
        pc.iceGatheringStateChange.watch((state) => state === "complete").then(() => (clearTimeout(cap), resolve()));
      });
    }
    return { answerSdp: pc.localDescription!.sdp, callId };
  }

  async mintSecret(_preset: Preset, ttlSeconds: number) {
    return { value: `ek_sim_${nanoid(24)}`, expiresAt: Date.now() + ttlSeconds * 1000 };
  }

  async hangup(callId: string, _api?: AiApi) {
    const call = this.calls.get(callId);
    if (!call) return;
    this.calls.delete(callId);
    call.timers.forEach(clearInterval);
    call.closing?.("close_requested");
    await call.pc.close().catch(() => {});
  }

  /** Live calls, for diagnostics. */
  get activeCalls() {
    return this.calls.size;
  }

  /** A voice agent's answer to line `n`, as its transcript arrives: deltas, then done. */
  private reply(send: (event: Record<string, unknown>) => void, n: number) {
    const ids = { response_id: `resp_sim_${n}`, item_id: `item_sim_reply_${n}`, output_index: 0, content_index: 0 };
    const words = `Simulated reply to line ${n}.`.split(" ");
    words.forEach((word, i) => send({ type: "response.output_audio_transcript.delta", ...ids, delta: (i ? " " : "") + word }));
    send({ type: "response.output_audio_transcript.done", ...ids, transcript: words.join(" ") });
  }

  private narrate(call: Call, channel: RTCDataChannel, preset: Preset, callId: string, heard: { packets: number; bytes: number }) {
    const send: Send = (event) => {
      if (channel.readyState === "open") channel.send(JSON.stringify({ event_id: `event_${nanoid(12)}`, ...event }));
    };
    const start = () => (preset.type === "live" ? this.narrateLive(call, channel, preset, callId, heard, send) : this.narrateRealtime(call, preset, callId, heard, send));
    if (channel.readyState === "open") start();
    else channel.stateChanged.watch((state) => state === "open").then(start);
  }

  /** What the preset's data channel lets through: GPT-Live drops the rest (and refuses a client event it does not allow). */
  private narrateLive(call: Call, channel: RTCDataChannel, preset: LivePreset, callId: string, heard: { packets: number; bytes: number }, send: Send) {
    const allowed = new Set<string>(preset.dataChannel.allowedServerEvents);
    const tell: Send = (event) => allowed.has(String(event.type)) && send(event);
    const opened = Date.now();
    const at = () => Date.now() - opened;
    tell({ type: "session.started", session: { id: callId, model: preset.model, status: "active", simulated: true } });
    channel.onMessage.subscribe((data) => {
      let type = "";
      try {
        type = String(JSON.parse(String(data)).type);
      } catch {
        // not JSON: refused below, as any event of no known type
      }
      if (type === "session.close" && preset.dataChannel.allowedClientEvents.includes("session.close")) return void this.hangup(callId);
      if (!(preset.dataChannel.allowedClientEvents as string[]).includes(type)) {
        tell({ type: "error", error: { type: "invalid_request_error", code: "client_event_not_allowed", message: `The client may not send '${type}' in this session`, param: null } });
      }
    });
    call.closing = (reason) => tell({ type: "session.closed", reason, session: { id: callId, model: preset.model, status: "active" }, usage: { seconds: Math.round(at() / 1000) } });
    const deltas = (type: string, text: string) => {
      const end = at();
      text.split(" ").forEach((word, i) => tell({ type, delta: (i ? " " : "") + word, start_ms: end - 1000, end_ms: end }));
    };
    everySecondOfAudio(call, heard, (line, heardLine) => {
      deltas("session.input_transcript.delta", heardLine);
      deltas("session.output_transcript.delta", `Simulated reply to line ${line}.`);
    });
  }

  private narrateRealtime(call: Call, preset: RealtimePreset, callId: string, heard: { packets: number; bytes: number }, send: Send) {
    send({
      type: "session.created",
      session: {
        id: callId,
        object: preset.type === "transcription" ? "realtime.transcription_session" : "realtime.session",
        type: preset.type,
        model: preset.model ?? preset.transcription?.model,
        simulated: true,
      },
    });
    // Deltas, then the completed line.
    everySecondOfAudio(call, heard, (line, heardLine) => {
      const itemId = `item_sim_${line}`;
      const words = heardLine.split(" ");
      send({ type: "input_audio_buffer.committed", item_id: itemId });
      words.forEach((word, i) => send({ type: "conversation.item.input_audio_transcription.delta", item_id: itemId, content_index: 0, delta: (i ? " " : "") + word }));
      send({ type: "conversation.item.input_audio_transcription.completed", item_id: itemId, content_index: 0, transcript: heardLine, usage: { type: "duration", seconds: 1 } });
      if (preset.type === "realtime") this.reply(send, line);
    });
  }
}

/** One transcript line per second in which audio arrived: its number, and what was heard. */
function everySecondOfAudio(call: Call, heard: { packets: number; bytes: number }, say: (line: number, text: string) => void) {
  let line = 0;
  let last = { ...heard };
  call.timers.push(
    setInterval(() => {
      const packets = heard.packets - last.packets;
      const bytes = heard.bytes - last.bytes;
      last = { ...heard };
      if (packets > 0) say(++line, `Simulated line ${line}: heard ${packets} audio packets (${(bytes / 1024).toFixed(1)} KiB) in the last second.`);
    }, 1000),
  );
}
