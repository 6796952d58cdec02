/**
 * One room's full star exchange, as the pages run it but without browsers: two clients of the
 * client library (host and viewer) — join, offer, answer, 8 candidates each way in batches of
 * 4 — recording, for every message, the time from its POST returning to the recipient's read
 * returning it (0 when the read came first).
 */
import { SignalingClient, type ClientOptions, type Message } from "../lib/client/signaling-client.js";

export interface ExchangeOptions {
  hostUrl: string;
  viewerUrl?: string;
  mode: "stream" | "long-poll" | "interval";
  /** Counts every request the clients make, by route. */
  onRequest?: (route: string) => void;
}

const candidate = (tag: string, i: number) => ({ candidate: `candidate:${tag}${i} 1 udp 2122260223 127.0.0.1 ${50000 + i} typ host`, sdpMid: "0", sdpMLineIndex: 0 });

export interface Exchange {
  latencies: number[];
  host: SignalingClient;
  viewer: SignalingClient;
}

/** Runs the exchange; the two clients stay connected (polling) until the caller stops them. */
export async function starExchange(o: ExchangeOptions): Promise<Exchange> {
  const fetcher: typeof fetch = (input, init) => {
    o.onRequest?.(`${init?.method ?? "GET"} ${new URL(String(input)).pathname}`);
    return fetch(input, init);
  };
  const options = (baseUrl: string): ClientOptions => ({ baseUrl, mode: o.mode, fetch: fetcher });
  const latencies: number[] = [];
  const sentAt = new Map<string, number>();
  const receivedAt = new Map<string, number>();
  const settle = (key: string) => {
    if (sentAt.has(key) && receivedAt.has(key)) latencies.push(Math.max(0, receivedAt.get(key)! - sentAt.get(key)!));
  };
  const sent = async (key: string, post: Promise<unknown>) => {
    await post;
    sentAt.set(key, performance.now());
    settle(key);
  };
  const received = (key: string) => {
    receivedAt.set(key, performance.now());
    settle(key);
  };
  const keyOf = (m: Message) =>
    m.type === "offer" || m.type === "answer" ? m.description.sdp : m.type === "candidate" ? String(m.candidates[0]?.candidate) : m.type === "peer-joined" ? `joined ${m.peer.peerId}` : m.type;

  const host = await SignalingClient.createRoom({}, options(o.hostUrl));
  let done: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  let hostGot = 0;
  let viewerGot = 0;
  const check = () => hostGot === 3 && viewerGot === 3 && done();

  host.onMessage((m) => {
    received(keyOf(m));
    if (m.type === "peer-joined") {
      const to = m.peer.peerId;
      void (async () => {
        await sent(`offer ${to}`, host.sendDescription(to, { type: "offer", sdp: `offer ${to}` }));
        for (const batch of [0, 4]) {
          const list = [0, 1, 2, 3].map((i) => candidate(`h${to}-`, batch + i));
          await sent(String(list[0].candidate), host.sendCandidates(to, list));
        }
      })();
    } else if (m.type === "answer" || m.type === "candidate") {
      hostGot++;
      check();
    }
  });
  host.start();

  const viewer = await SignalingClient.joinRoom(host.roomId, {}, options(o.viewerUrl ?? o.hostUrl));
  sentAt.set(`joined ${viewer.peerId}`, performance.now());
  settle(`joined ${viewer.peerId}`);
  viewer.onMessage((m) => {
    received(keyOf(m));
    if (m.type === "offer") {
      void (async () => {
        await sent(`answer ${viewer.peerId}`, viewer.sendDescription(host.peerId, { type: "answer", sdp: `answer ${viewer.peerId}` }));
        for (const batch of [0, 4]) {
          const list = [0, 1, 2, 3].map((i) => candidate(`v${viewer.peerId}-`, batch + i));
          await sent(String(list[0].candidate), viewer.sendCandidates(host.peerId, list));
        }
      })();
      viewerGot++;
    } else if (m.type === "candidate") {
      viewerGot++;
    }
    check();
  });
  viewer.start();
  await finished;
  return { latencies, host, viewer };
}
