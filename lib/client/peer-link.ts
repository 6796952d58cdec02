/**
 * One RTCPeerConnection to one remote peer, wired to the signaling client: the "perfect
 * negotiation" pattern (either side may (re)negotiate; the polite side yields on glare),
 * trickle ICE batched per request, candidates that arrive before the remote description
 * buffered, timeouts on the offer/answer phases, and an ICE restart through the same
 * endpoints when the connection drops.
 */
import type { CandidateInit, IceServer, Message, SignalingClient } from "./signaling-client.js";

export type LinkState = "connecting" | "connected" | "reconnecting" | "failed" | "closed";

export interface PeerLinkOptions {
  client: SignalingClient;
  remoteId: string;
  /** The polite side rolls back its own offer when offers cross. */
  polite: boolean;
  iceServers: IceServer[];
  /** Tracks to send; the link offers as soon as they are added. */
  stream?: MediaStream;
  /**
   * Set when the other side makes the first offer: this side waits for it (with a timeout worded
   * "No offer received from <remoteLabel>") and never offers before it.
   */
  expectOfferFrom?: string;
  /** The remote side's role, for error wording. */
  remoteLabel?: string;
  phaseTimeoutMs?: number;
  /** How long `disconnected` may last before an ICE restart. */
  reconnectGraceMs?: number;
  /** How long a link may take to connect before it re-sends its offer or negotiates afresh. */
  stallMs?: number;
  rtcConfig?: Partial<RTCConfiguration>;
  /** How long inbound video may arrive without a frame decoded before the link acts (see watchMedia). */
  freezeMs?: number;
  /**
   * Called when inbound video stays frozen through an ICE restart: the connection itself is
   * stuck and only a fresh one helps (e.g. the page rejoins). Without it, the link restarts ICE again.
   */
  onFrozen?: () => void;
  onTrack?: (event: RTCTrackEvent) => void;
  onState?: (state: LinkState) => void;
  onError?: (error: Error) => void;
}

const CANDIDATE_BATCH_MS = 25;
/** Re-sends or fresh negotiations before a link that never connected gives up. */
const STALL_RETRIES = 3;

/** What to tell a user whose connection did not come up in `seconds`, and what to try. */
export function whyNotConnected(pc: RTCPeerConnection, who: string, seconds: number) {
  const reached = pc.iceConnectionState === "connected" || pc.iceConnectionState === "completed";
  return reached
    ? `Reached ${who}, but the secure connection did not complete in ${seconds} s. Reload to try again.`
    : `No network path to ${who} came up in ${seconds} s. A firewall or VPN may block WebRTC; try another network, or a TURN relay (?relay=1) if this service has one.`;
}

export class PeerLink {
  readonly pc: RTCPeerConnection;
  state: LinkState = "connecting";
  private makingOffer = false;
  private ignoreOffer = false;
  private pendingRemote: CandidateInit[] = [];
  private outgoing: CandidateInit[] = [];
  /**
   * What this link sends goes out one request at a time, in the order it was made: an answer
   * still in flight when a new offer is made must reach the other side first, or that side,
   * still waiting for the answer, takes the offer for a collision (and, impolite, ignores it).
   */
  private sending: Promise<unknown> = Promise.resolve();
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private phaseTimer: ReturnType<typeof setTimeout> | null = null;
  private graceTimer: ReturnType<typeof setTimeout> | null = null;
  private everConnected = false;
  private stallTimer: ReturnType<typeof setTimeout> | null = null;
  private stallRetries = 0;
  private mediaTimer: ReturnType<typeof setInterval> | null = null;
  /** Messages are applied one at a time, in order: descriptions must not interleave. */
  private inbox: Promise<void> = Promise.resolve();

  constructor(private readonly o: PeerLinkOptions) {
    this.pc = new RTCPeerConnection({ ...o.rtcConfig, iceServers: o.iceServers as RTCIceServer[] });
    this.pc.onicecandidate = ({ candidate }) => this.queueCandidate(candidate ? ({ ...candidate.toJSON(), candidate: candidate.candidate }) : null);
    this.pc.onnegotiationneeded = () => {
      // A side told to wait for the other's offer does not offer first: crossing first offers
      // make the polite side roll back its offer while gathering, and Chromium then may never
      // gather for that connection again (seen as a mesh pair stuck in `new` for good).
      if (o.expectOfferFrom && !this.pc.remoteDescription) return;
      void this.negotiate();
    };
    this.pc.ontrack = (event) => o.onTrack?.(event);
    this.pc.onconnectionstatechange = () => this.onConnectionState();
    if (o.expectOfferFrom) this.armPhase(`No offer received from ${o.remoteLabel ?? "the other peer"}`);
    o.stream?.getTracks().forEach((track) => this.pc.addTrack(track, o.stream!));
    this.armStall();
    this.watchMedia();
  }

  /**
   * Media liveness. A connection can stay "connected" while its video no longer decodes (seen
   * in Firefox after an ICE restart the other side began). Video that keeps arriving (packets
   * in, or the sender's reports say it sends) with no frame decoded for `freezeMs` is frozen:
   * the link says "reconnecting" and restarts ICE; frozen still after that, it calls onFrozen.
   */
  private watchMedia() {
    const freezeMs = this.o.freezeMs ?? 4000;
    let last = { frames: 0, packets: 0, sent: 0 };
    let frozenSince: number | null = null;
    let acted: "nothing" | "restarted" | "reported" = "nothing";
    this.mediaTimer = setInterval(async () => {
      if (this.pc.connectionState !== "connected" && this.state !== "reconnecting") return;
      const report = await this.pc.getStats().catch(() => null); // closed meanwhile
      if (!report) return;
      const now = { frames: 0, packets: 0, sent: 0, video: false };
      report.forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video") Object.assign(now, { video: true, frames: now.frames + (s.framesDecoded ?? 0), packets: now.packets + (s.packetsReceived ?? 0) });
        if (s.type === "remote-outbound-rtp" && s.kind === "video") now.sent += s.packetsSent ?? 0;
      });
      const decoding = now.frames > last.frames;
      const arriving = now.packets > last.packets || now.sent > last.sent;
      last = now;
      if (!now.video || decoding || !arriving) {
        if (decoding && this.state === "reconnecting" && this.pc.connectionState === "connected") this.setState("connected");
        frozenSince = null;
        acted = "nothing";
        return;
      }
      frozenSince ??= Date.now();
      // Frozen for freezeMs: restart ICE; frozen for twice as long after that: report it.
      if (acted === "reported" || Date.now() - frozenSince < (acted === "nothing" ? freezeMs : 2 * freezeMs)) return;
      frozenSince = Date.now();
      if (acted === "nothing" || !this.o.onFrozen) {
        acted = "restarted";
        this.setState("reconnecting");
        this.restartIce();
      } else {
        acted = "reported";
        this.o.onFrozen();
      }
    }, 1000);
  }

  /**
   * A watchdog for exchanges that went nowhere (an offer lost on the way, or ignored in a glare
   * whose winner never arrived): re-send a pending offer, or negotiate afresh; a few times.
   */
  private armStall() {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = setTimeout(() => {
      this.stallTimer = null;
      if (this.state === "closed" || this.pc.connectionState === "connected") return;
      if (this.stallRetries >= STALL_RETRIES) return this.giveUp();
      this.stallRetries++;
      const local = this.pc.localDescription;
      if (this.pc.signalingState === "have-local-offer" && local) {
        void this.inOrder(() => this.o.client.sendDescription(this.o.remoteId, { type: "offer", sdp: local.sdp })).catch((e) => this.o.onError?.(e));
      } else if (this.pc.signalingState === "stable" && !this.o.expectOfferFrom) {
        this.pc.restartIce();
      }
      this.armStall();
    }, this.o.stallMs ?? 10_000);
  }

  /**
   * Never an endless "connecting": after the retries, the link says it failed and why (it keeps
   * listening, so a late success still turns it connected).
   */
  private giveUp() {
    const seconds = Math.round(((this.o.stallMs ?? 10_000) * (STALL_RETRIES + 1)) / 1000);
    this.setState("failed");
    this.o.onError?.(new Error(whyNotConnected(this.pc, this.o.remoteLabel ?? "the other peer", seconds)));
  }

  /** Feeds a message from the poll loop; ignores those from other peers. */
  handle(message: Message): Promise<void> {
    if (message.from !== this.o.remoteId) return Promise.resolve();
    this.inbox = this.inbox.then(() => this.apply(message));
    return this.inbox;
  }

  private async apply(message: Message) {
    if (this.state === "closed") return;
    try {
      if (message.type === "offer" || message.type === "answer") await this.onDescription(message.description);
      else if (message.type === "candidate") await this.onCandidates(message.candidates);
    } catch (error) {
      this.o.onError?.(error as Error);
    }
  }

  /** Renegotiates with fresh ICE credentials (also what a dropped connection triggers). */
  restartIce() {
    if (this.state === "closed") return;
    if (this.pc.signalingState === "stable") return this.pc.restartIce();
    // Asked mid-negotiation (an offer of the other side's being answered): the answer may carry
    // fresh credentials itself and leave nothing to negotiate, so no offer of ours would follow.
    // Restart once the negotiation under way is over.
    const whenStable = () => {
      if (this.pc.signalingState !== "stable") return;
      this.pc.removeEventListener("signalingstatechange", whenStable);
      if (this.state !== "closed") this.pc.restartIce();
    };
    this.pc.addEventListener("signalingstatechange", whenStable);
  }

  close() {
    if (this.state === "closed") return;
    this.clearTimers();
    this.pc.close();
    this.setState("closed");
  }

  private setState(state: LinkState) {
    if (this.state === state) return;
    this.state = state;
    this.o.onState?.(state);
  }

  private armPhase(message: string) {
    if (this.phaseTimer) clearTimeout(this.phaseTimer);
    this.phaseTimer = setTimeout(() => {
      this.setState("failed");
      this.o.onError?.(new Error(message));
    }, this.o.phaseTimeoutMs ?? 60_000);
  }

  private settlePhase() {
    if (this.phaseTimer) clearTimeout(this.phaseTimer);
    this.phaseTimer = null;
  }

  private clearTimers() {
    this.settlePhase();
    if (this.stallTimer) clearTimeout(this.stallTimer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.mediaTimer) clearInterval(this.mediaTimer);
  }

  private async negotiate() {
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      const local = this.pc.localDescription!;
      await this.inOrder(() => this.o.client.sendDescription(this.o.remoteId, { type: local.type as "offer", sdp: local.sdp }));
      this.armPhase(`No answer received from ${this.o.remoteLabel ?? "the other peer"}`);
    } catch (error) {
      this.o.onError?.(error as Error);
    } finally {
      this.makingOffer = false;
    }
  }

  private async onDescription(description: { type: "offer" | "answer"; sdp: string }) {
    const collision = description.type === "offer" && (this.makingOffer || this.pc.signalingState !== "stable");
    this.ignoreOffer = !this.o.polite && collision;
    if (this.ignoreOffer) return;
    this.settlePhase();
    await this.pc.setRemoteDescription(description); // rolls back our own offer if we are polite
    const buffered = this.pendingRemote;
    this.pendingRemote = [];
    await this.onCandidates(buffered);
    if (description.type === "offer") {
      await this.pc.setLocalDescription();
      const local = this.pc.localDescription!;
      await this.inOrder(() => this.o.client.sendDescription(this.o.remoteId, { type: "answer", sdp: local.sdp }));
    }
  }

  private async onCandidates(candidates: CandidateInit[]) {
    if (!this.pc.remoteDescription) {
      this.pendingRemote.push(...candidates);
      return;
    }
    // One failure must not drop the rest of a batch: after a glare, the buffer still holds the
    // ignored offer's candidates (stale credentials, rejected) ahead of the valid ones.
    for (const candidate of candidates) {
      try {
        // null ends the remote side's gathering; an empty candidate with its sdpMid (Firefox
        // sends one per media section) ends only that section, so it goes in as it came.
        await this.pc.addIceCandidate(candidate ?? undefined);
      } catch {
        // a candidate of a superseded negotiation: nothing to do
      }
    }
  }

  /** Runs `send` once everything sent before it has been (or failed). */
  private inOrder<T>(send: () => Promise<T>): Promise<T> {
    const sent = this.sending.then(send, send);
    this.sending = sent.catch(() => {});
    return sent;
  }

  private queueCandidate(candidate: CandidateInit) {
    this.outgoing.push(candidate);
    // Send what gathered within a few ms as one request; the end marker goes at once.
    if (candidate === null) return void this.flush();
    this.flushTimer ??= setTimeout(() => void this.flush(), CANDIDATE_BATCH_MS);
  }

  private async flush() {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const batch = this.outgoing;
    this.outgoing = [];
    if (batch.length === 0 || this.state === "closed") return;
    try {
      await this.inOrder(() => this.o.client.sendCandidates(this.o.remoteId, batch));
    } catch (error) {
      this.o.onError?.(error as Error);
    }
  }

  private onConnectionState() {
    const s = this.pc.connectionState;
    if (this.graceTimer && s !== "disconnected") {
      clearTimeout(this.graceTimer);
      this.graceTimer = null;
    }
    if (s === "connected") {
      this.everConnected = true;
      this.settlePhase();
      this.setState("connected");
    } else if (s === "disconnected") {
      // Only the impolite side restarts ICE; the polite one waits for its offer (no glare).
      this.setState("reconnecting");
      if (!this.o.polite) this.graceTimer = setTimeout(() => this.restartIce(), this.o.reconnectGraceMs ?? 3000);
    } else if (s === "failed") {
      this.setState(this.everConnected ? "reconnecting" : "failed");
      if (!this.o.polite) this.restartIce();
    } else if (s === "closed") {
      this.setState("closed");
    }
  }
}
