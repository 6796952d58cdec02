/**
 * Simulation: a real WebRTC peer in this process stands in for OpenAI (werift, pure
 * TypeScript), so a browser's connection really becomes `connected`, its `oai-events` data
 * channel opens and receives Realtime-shaped events: `session.created`, then one transcript
 * line per second of audio actually received (and, for a voice agent, a reply's transcript). For `npm start` and tests only: a serverless
 * function cannot keep a peer alive past its response.
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
import type { Preset } from "./presets.js";
import type { RealtimeUpstream } from "./upstream.js";

interface Call {
  pc: RTCPeerConnection;
  timers: NodeJS.Timeout[];
}

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
    const callId = `rtc_sim_${nanoid(20)}`;
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

  async hangup(callId: string) {
    const call = this.calls.get(callId);
    if (!call) return;
    this.calls.delete(callId);
    call.timers.forEach(clearInterval);
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
    const send = (event: Record<string, unknown>) => {
      if (channel.readyState === "open") channel.send(JSON.stringify({ event_id: `event_${nanoid(12)}`, ...event }));
    };
    const start = () => {
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
      let line = 0;
      let last = { packets: 0, bytes: 0 };
      // One transcript line per second of audio that arrived: deltas, then the completed line.
      call.timers.push(
        setInterval(() => {
          const packets = heard.packets - last.packets;
          const bytes = heard.bytes - last.bytes;
          last = { ...heard };
          if (packets === 0) return;
          const itemId = `item_sim_${++line}`;
          const words = `Simulated line ${line}: heard ${packets} audio packets (${(bytes / 1024).toFixed(1)} KiB) in the last second.`.split(" ");
          send({ type: "input_audio_buffer.committed", item_id: itemId });
          words.forEach((word, i) => send({ type: "conversation.item.input_audio_transcription.delta", item_id: itemId, content_index: 0, delta: (i ? " " : "") + word }));
          send({ type: "conversation.item.input_audio_transcription.completed", item_id: itemId, content_index: 0, transcript: words.join(" "), usage: { type: "duration", seconds: 1 } });
          if (preset.type === "realtime") this.reply(send, line);
        }, 1000),
      );
    };
    if (channel.readyState === "open") start();
    else channel.stateChanged.watch((state) => state === "open").then(start);
  }
}
