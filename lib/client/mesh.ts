/**
 * A full mesh: one PeerLink to every other peer of a room, present or joining later; a peer
 * leaving tears down exactly its link. In each pair the later joiner makes the first offer and
 * the earlier one waits for it (politely): first offers never cross. Later renegotiations use
 * perfect negotiation like any PeerLink.
 */
import { PeerLink, type LinkState } from "./peer-link.js";
import type { Message, PeerInfo, SignalingClient } from "./signaling-client.js";

export interface MeshOptions {
  client: SignalingClient;
  stream: MediaStream;
  onPeer?: (peer: PeerInfo, link: PeerLink) => void;
  onTrack?: (peer: PeerInfo, event: RTCTrackEvent) => void;
  onState?: (peer: PeerInfo, state: LinkState) => void;
  onLeave?: (peerId: string) => void;
  onError?: (peer: PeerInfo, error: Error) => void;
}

export class Mesh {
  readonly links = new Map<string, PeerLink>();
  readonly peers = new Map<string, PeerInfo>();

  constructor(private readonly o: MeshOptions) {
    o.client.onMessage((m) => this.route(m));
    for (const peer of o.client.session.peers) if (peer.peerId !== o.client.peerId) this.connect(peer, false);
  }

  /** `joinedAfterUs`: the peer came later, so it offers and we wait. */
  private connect(peer: PeerInfo, joinedAfterUs: boolean) {
    if (this.links.has(peer.peerId)) return;
    this.peers.set(peer.peerId, peer);
    const link = new PeerLink({
      client: this.o.client,
      remoteId: peer.peerId,
      polite: joinedAfterUs,
      expectOfferFrom: joinedAfterUs ? peer.peerId : undefined,
      iceServers: this.o.client.session.iceServers,
      stream: this.o.stream,
      remoteLabel: peer.name ?? "peer",
      onTrack: (event) => this.o.onTrack?.(peer, event),
      onState: (state) => this.o.onState?.(peer, state),
      onError: (error) => this.o.onError?.(peer, error),
    });
    this.links.set(peer.peerId, link);
    this.o.onPeer?.(peer, link);
  }

  private drop(peerId: string) {
    this.links.get(peerId)?.close();
    this.links.delete(peerId);
    this.peers.delete(peerId);
    this.o.onLeave?.(peerId);
  }

  private route(message: Message) {
    if (message.type === "peer-joined") this.connect(message.peer, true);
    else if (message.type === "peer-left") this.drop(message.peerId);
    else if (message.type === "chat") return; // for the page's own chat listener
    else void this.links.get(message.from)?.handle(message);
  }

  close() {
    for (const peerId of [...this.links.keys()]) this.drop(peerId);
  }
}
